"""Closed-loop evaluation: the policy drives the simulated robot, per instruction side.

The policy is reached through the same streaming API a robot uses (``new_session`` /
``step``), in-process (:class:`mobile_vla.Policy`) or over the network
(:class:`mobile_vla.serve.client.RemotePolicy`); the shared chunk executor turns chunks
into commands as on the robot. Scenes come from the simulator's
evaluation seed stream, disjoint from every collection stream.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mobile_vla.vocab.instructions import SIDES, other_side, sample_instruction

log = logging.getLogger(__name__)

#: Which instructions each scene is run with, relative to the side the scene suggests (more room):
#: both sides, only the suggested one, or only the opposite one (where scene and instruction disagree).
INSTRUCTION_SIDES = ("both", "suggested", "opposite")


def instruction_sides(scene, instruction_side: str) -> tuple[str, ...]:
    """The instructed sides to run ``scene`` with (see :data:`INSTRUCTION_SIDES`)."""
    from mobile_vla.sim.suggested import suggested_side

    if instruction_side == "both":
        return SIDES
    if instruction_side not in INSTRUCTION_SIDES:
        raise ValueError(f"instruction_side must be one of {INSTRUCTION_SIDES}, got {instruction_side!r}")
    suggested = suggested_side(scene)
    return (suggested,) if instruction_side == "suggested" else (other_side(suggested),)


def evaluate_closed_loop(
    policy,
    episodes: int,
    seed: int = 0,
    strategy: str = "first",
    image_size: int | None = None,
    heldout_phrasings: bool = False,
    video_dir: str | Path | None = None,
    videos: int = 4,
    progress: bool = True,
    task: str | None = None,
    scenes: str | None = None,
    instruction_side: str = "both",
) -> dict[str, Any]:
    """Run ``episodes`` closed-loop episodes (scenes paired: each scene once per side).

    ``task``/``scenes``: the simulator task and scene preset (defaults: the cup task, its default preset).
    ``instruction_side``: ``both`` (each scene under both instructions), ``suggested`` or ``opposite``
    (each scene once, instructed to pass on the side the scene suggests / the other side).

    Returns:
        ``{"overall": {...}, "left": {...}, "right": {...}, "records": [...]}`` where each
        summary is :func:`mobile_vla.sim.evaluate.summarize` and ``records`` holds per-episode trajectories for plotting.
    """
    from mobile_vla.policy.controller import PolicyController
    from mobile_vla.sim.evaluate import summarize
    from mobile_vla.sim.rollout import run_episode
    from mobile_vla.sim.scene import eval_scene_seed
    from mobile_vla.sim.tasks import resolve
    from mobile_vla.sim.world import World

    task, spec, scenes, preset = resolve(task, scenes)

    size = image_size or int(policy.metadata["image_size"])
    controller = PolicyController(policy, strategy)  # the same controller the robot client runs
    rng = np.random.default_rng([seed, 7])  # phrasing choice; independent of the scene stream
    results = []
    records: list[dict[str, Any]] = []
    video_dir = Path(video_dir) if video_dir else None
    per_scene = 2 if instruction_side == "both" else 1
    num_scenes = (episodes + per_scene - 1) // per_scene
    bar = tqdm(total=num_scenes * per_scene, desc="eval-sim", unit="ep", disable=not progress)
    with World(image_size=size) as world:
        for i in range(num_scenes):
            scene = preset.sample(eval_scene_seed(seed, i))
            for side in instruction_sides(scene, instruction_side):
                if len(results) >= episodes:
                    break
                instruction = sample_instruction(side, rng, target=spec.target, heldout=heldout_phrasings)
                want_video = video_dir is not None and len(results) < videos
                result = run_episode(world, scene, instruction, controller, beta=0.0, render=want_video,
                                     task=spec)
                results.append(result)
                records.append({**result.to_record(scene), "instruction_side": instruction_side})
                if want_video:
                    write_gif(result.frames, video_dir / f"rollout_{len(results) - 1:02d}_{side}.gif")
                bar.update(1)
                bar.set_postfix(success=f"{np.mean([r.success for r in results]):.2f}")
    bar.close()
    report: dict[str, Any] = {"overall": summarize(results)}
    for side in SIDES:  # with one instruction per scene, a small run may hold no episode of a side
        report[side] = summarize(r for r in results if r.side == side) if any(r.side == side for r in results) \
            else None
    report["strategy"] = strategy
    report["seed"] = seed
    report["task"] = task
    report["scenes"] = scenes
    report["instruction_side"] = instruction_side
    report["records"] = records
    return report


def write_gif(frames: np.ndarray, path: Path, fps: float = 2.5) -> Path:
    """Frames ``(T, H, W, 3)`` RGB uint8 → an animated GIF (upscaled ×2 for viewing)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f).resize((f.shape[1] * 2, f.shape[0] * 2), Image.NEAREST) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path
