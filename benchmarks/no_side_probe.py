"""What does the policy do at the start of an episode when no side is named? One frame per scene.

For ``--scenes`` evaluation scenes: the first camera frame, and the mean lateral velocity of the
first ``--steps`` actions of the chunk the policy predicts for it under a no-side instruction,
under the canonical left and right instructions, and the expert's labels for the no-side route
(``--route``, as ``expert.no_side_route``). A policy that has learnt the route answers with the
expert's sign and size; one unsure of it hedges: the right sign, a smaller size (into the boxes).

    MUJOCO_GL=egl python benchmarks/no_side_probe.py --checkpoint outputs/avg5_s0/checkpoint --seed 1000

Prints one JSON object: per instruction, the mean |lateral| in m/s, and for the no-side
instruction the fraction of scenes whose sign agrees with the expert's route.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from mobile_vla.policy.backends import load_policy
from mobile_vla.sim.expert import NO_SIDE_ROUTES, ExpertConfig
from mobile_vla.sim.rollout import run_episode
from mobile_vla.sim.scene import eval_scene_seed
from mobile_vla.sim.tasks import resolve
from mobile_vla.sim.world import World
from mobile_vla.vocab.instructions import NO_SIDE, canonical_instruction, format_instruction, templates


def probe(checkpoint: str, scenes: int, seed: int, steps: int, route: str, sentence: str | None) -> dict:
    policy = load_policy(checkpoint)
    task, spec, preset_name, preset = resolve(None, None)
    no_side = sentence or format_instruction(templates(spec.target)[NO_SIDE].train[0], None, spec.target)
    asked = {"no side": no_side, "left": canonical_instruction("left", spec.target),
             "right": canonical_instruction("right", spec.target)}
    lateral: dict[str, list[float]] = {k: [] for k in (*asked, "expert")}
    with World(int(policy.metadata["image_size"])) as world:
        for i in range(scenes):
            scene = preset.sample(eval_scene_seed(seed, i))
            expert = run_episode(world, scene, no_side, task=spec, expert=ExpertConfig(no_side_route=route),
                                 max_steps=steps)  # only the first frame and labels are read
            lateral["expert"].append(float(expert.labels[:steps, 1].mean()))
            for name, text in asked.items():
                chunk = policy.new_session(text).step(expert.frames[0], channel_order="rgb")
                lateral[name].append(float(chunk[:steps, 1].mean()))
    ref = np.sign(lateral["expert"])
    return {
        "checkpoint": checkpoint, "scenes": scenes, "seed": seed, "steps": steps, "route": route,
        "instructions": asked, "preset": preset_name,
        "mean_abs_lateral": {k: float(np.abs(v).mean()) for k, v in lateral.items()},
        "no_side_sign_agrees_with_route": float(np.mean(np.sign(lateral["no side"]) == ref)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--scenes", type=int, default=40)
    ap.add_argument("--seed", type=int, default=1000, help="evaluation scene stream")
    ap.add_argument("--steps", type=int, default=4, help="the chunk's first actions averaged")
    ap.add_argument("--route", choices=NO_SIDE_ROUTES, default="view", help="the expert's no-side route")
    ap.add_argument("--sentence", help="the no-side instruction (default: the first training template)")
    args = ap.parse_args(argv)
    print(json.dumps(probe(args.checkpoint, args.scenes, args.seed, args.steps, args.route, args.sentence)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
