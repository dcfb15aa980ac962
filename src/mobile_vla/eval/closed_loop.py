"""Closed-loop evaluation: the policy drives the simulated robot, per instruction side.

The policy is reached through the same streaming API a robot uses (``new_session`` /
``step``), in-process (:class:`mobile_vla.Policy`) or over the network
(:class:`mobile_vla.serve.client.RemotePolicy`); the shared chunk executor turns chunks
into commands as on the robot. Scenes come from the simulator's
evaluation seed stream, disjoint from every collection stream.

The same loop scores the references a policy's figure stands next to (``baseline``): the
image-blind replay of the mean expert action (``blind``) and the expert itself (``expert``);
``blank_frames`` shows the policy one constant image instead of every frame
(:mod:`mobile_vla.sim.baselines`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from mobile_vla.vocab.instructions import SIDES, sample_instruction

log = logging.getLogger(__name__)

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
    baseline: str | None = None,
    blank_frames: bool = False,
) -> dict[str, Any]:
    """Run ``episodes`` closed-loop episodes (scenes paired: each scene once per side).

    ``task``/``scenes``: the simulator task and scene preset (defaults: the cup task, its default preset).
    ``baseline``: ``None`` drives with ``policy``; ``"blind"`` or ``"expert"`` drive with that
    reference instead (``policy`` is then ignored and may be ``None``). ``blank_frames``: the
    policy sees one constant grey image instead of every frame.

    Returns:
        ``{"overall": {...}, "left": {...}, "right": {...}, "records": [...]}`` where each
        summary is :func:`mobile_vla.sim.evaluate.summarize` and ``records`` holds per-episode trajectories for plotting.
    """
    from mobile_vla.policy.controller import PolicyController
    from mobile_vla.sim.baselines import BASELINES, BlankFrames, BlindReplay, mean_expert_actions
    from mobile_vla.sim.evaluate import summarize
    from mobile_vla.sim.rollout import run_episode
    from mobile_vla.sim.scene import eval_scene_seed
    from mobile_vla.sim.tasks import resolve
    from mobile_vla.sim.world import World

    task, spec, scenes, preset = resolve(task, scenes)

    if baseline is None:
        size = image_size or int(policy.metadata["image_size"])
        controller = PolicyController(policy, strategy)  # the same controller the robot client runs
    elif baseline == "blind":
        size = image_size or 112
        controller = BlindReplay(mean_expert_actions(seed=seed, task=task, scenes=scenes))
    elif baseline == "expert":
        size, controller = image_size or 112, None  # run_episode drives with the task's expert
    else:
        raise ValueError(f"baseline must be one of {BASELINES} or None, got {baseline!r}")
    if blank_frames:
        if baseline is not None:
            raise ValueError("blank_frames replaces a policy's frames; the baselines do not look at them")
        controller = BlankFrames(controller)
    rng = np.random.default_rng([seed, 7])  # phrasing choice; independent of the scene stream
    results = []
    records: list[dict[str, Any]] = []
    video_dir = Path(video_dir) if video_dir else None
    num_scenes = (episodes + 1) // 2
    bar = tqdm(total=num_scenes * 2, desc="eval-sim", unit="ep", disable=not progress)
    with World(image_size=size) as world:
        for i in range(num_scenes):
            scene = preset.sample(eval_scene_seed(seed, i))
            for side in SIDES:
                if len(results) >= episodes:
                    break
                instruction = sample_instruction(side, rng, target=spec.target, heldout=heldout_phrasings)
                want_video = video_dir is not None and len(results) < videos
                result = run_episode(world, scene, instruction, controller, beta=0.0, render=want_video,
                                     task=spec)
                results.append(result)
                records.append(result.to_record(scene))
                if want_video:
                    write_gif(result.frames, video_dir / f"rollout_{len(results) - 1:02d}_{side}.gif")
                bar.update(1)
                bar.set_postfix(success=f"{np.mean([r.success for r in results]):.2f}")
    bar.close()
    report: dict[str, Any] = {"overall": summarize(results)}
    for side in SIDES:
        report[side] = summarize(r for r in results if r.side == side)
    report["controller"] = baseline or "policy"
    report["blank_frames"] = bool(blank_frames)
    report["strategy"] = strategy if baseline is None else None
    report["seed"] = seed
    report["task"] = task
    report["scenes"] = scenes
    # The evaluation scenes, in order: two runs compare on the same scenes iff these lists match.
    report["scene_seeds"] = [int(r["scene_seed"]) for r in records[::2]]
    report["records"] = records
    return report


def write_gif(frames: np.ndarray, path: Path, fps: float = 2.5) -> Path:
    """Frames ``(T, H, W, 3)`` RGB uint8 → an animated GIF (upscaled ×2 for viewing)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(f).resize((f.shape[1] * 2, f.shape[0] * 2), Image.NEAREST) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return path
