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
) -> dict[str, Any]:
    """Run ``episodes`` closed-loop episodes (scenes paired: each scene once per side).

    ``task``/``scenes``: the simulator task and scene preset (defaults: the cup task, its default preset).

    Returns:
        ``{"overall": {...}, "left": {...}, "right": {...}, "records": [...]}`` where each
        summary is :func:`mobile_vla.sim.evaluate.summarize` and ``records`` holds per-episode trajectories for plotting.
    """
    from mobile_vla.eval.rollout_video import write_rollout_video
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
                    write_rollout_video(result.frames, records[-1], video_dir / f"rollout_{len(results) - 1:02d}_{side}.mp4")
                bar.update(1)
                bar.set_postfix(success=f"{np.mean([r.success for r in results]):.2f}")
    bar.close()
    report: dict[str, Any] = {"overall": summarize(results)}
    for side in SIDES:
        report[side] = summarize(r for r in results if r.side == side)
    report["strategy"] = strategy
    report["seed"] = seed
    report["task"] = task
    report["scenes"] = scenes
    report["records"] = records
    return report

