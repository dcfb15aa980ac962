"""Closed-loop evaluation over fresh scenes: the expert's sanity check (``sim expert-eval``)
and the shared summary any controller's rollouts reduce to.

Evaluation scenes come from :func:`eval_scene_seed`, a stream disjoint from collection's.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mobile_vla.jsonio import write_text_atomic
from mobile_vla.sim.expert import ExpertConfig
from mobile_vla.sim.rollout import RolloutResult, run_episode
from mobile_vla.sim.scene import SceneSpec, eval_scene_seed
from mobile_vla.sim.tasks import resolve
from mobile_vla.sim.world import World
from mobile_vla.vocab.instructions import SIDES, canonical_instruction


def summarize(results: Iterable[RolloutResult]) -> dict[str, Any]:
    """``success_rate``, ``side_accuracy`` (passed side == instructed side), ``collision_rate``,
    ``timeout_rate``, ``success_on_side_rate`` (succeeded *and* passed on the instructed side),
    ``wrong_target_rate`` (ended at an object the instruction did not name), ``mean_steps`` and ``success_side_accuracy`` (of the successes, the fraction
    that passed on the instructed side; None without successes) over rollouts."""
    results = list(results)
    if not results:
        raise ValueError("no rollouts to summarize")
    successes = [r for r in results if r.success]
    return {
        "episodes": len(results),
        "success_rate": float(np.mean([r.success for r in results])),
        "side_accuracy": float(np.mean([r.passed_side == r.side for r in results])),
        "collision_rate": float(np.mean([r.collision for r in results])),
        "timeout_rate": float(np.mean([r.timeout for r in results])),
        "wrong_target_rate": float(np.mean([r.wrong_target for r in results])),
        "success_on_side_rate": float(np.mean([r.success and r.passed_side == r.side for r in results])),
        "mean_steps": float(np.mean([r.steps for r in results])),
        "success_side_accuracy": (float(np.mean([r.passed_side == r.side for r in successes]))
                                  if successes else None),
    }


def expert_eval(episodes: int, seed: int = 0, expert: ExpertConfig = ExpertConfig(),
                records_out: str | Path | None = None, task: str | None = None,
                scenes: str | None = None) -> dict[str, Any]:
    """Run the expert on ``episodes`` fresh episodes (scene pairs, left and right) without rendering.

    ``records_out``: also write one JSON line per rollout (for ``sim plot``). ``task``/``scenes``:
    the simulator task and scene preset (defaults: the cup task, its default preset).
    """
    task, spec, scenes, preset = resolve(task, scenes)
    world = World()
    results: list[tuple[SceneSpec, RolloutResult]] = []
    for i in range((int(episodes) + 1) // 2):
        scene = preset.sample(eval_scene_seed(seed, i))
        for side in SIDES:
            results.append((scene, run_episode(world, scene, canonical_instruction(side, spec.target),
                                               expert=expert, render=False, task=spec)))
    world.close()
    summary = summarize(r for _, r in results)
    summary.update({"seed": seed, "style": expert.style, "task": task, "scenes": scenes})
    if records_out is not None:
        path = Path(records_out)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(path, "".join(json.dumps(r.to_record(s)) + "\n" for s, r in results))
        summary["records"] = str(path)
    return summary
