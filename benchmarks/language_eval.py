"""Does the policy obey instructions as people say them? Closed loop per family, task and side.

For each task of the checkpoint: every instruction family's held-out part (and the training
templates) in closed loop, ``--episodes`` per family (half per side, the same scenes for every
family); no-side instructions (which side the robot takes); with ``--mixed``, the scenes that
hold every task's objects and the confusion between tasks. For the cup task also the real
robot's Korean instruction: in closed loop per side, and on identical frames the signed mean
lateral velocity for "왼쪽" minus that for "오른쪽" (positive: left goes further left). The
expert on the same scenes is the reference (it always succeeds); the no-side run is the
instruction-blind reference (a policy deaf to the side word scores its side-taking rate).

    MUJOCO_GL=egl python benchmarks/language_eval.py --checkpoint outputs/lang_demo/checkpoint \\
        --tasks cup --episodes 80 --out outputs/lang_demo/language.json

Prints and writes one JSON object; ``scripts/language_results.py`` turns such files into the
tables of docs/results.md.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mobile_vla.eval.closed_loop import evaluate_closed_loop, success_by_family
from mobile_vla.jsonio import write_json
from mobile_vla.policy.backends import load_policy
from mobile_vla.policy.executor import DEFAULT_DECAY, DEFAULT_STRATEGY, STRATEGIES
from mobile_vla.sim.evaluate import expert_eval, summarize
from mobile_vla.sim.rollout import run_episode
from mobile_vla.sim.scene import eval_scene_seed
from mobile_vla.sim.tasks import mixed_preset, resolve
from mobile_vla.sim.world import World
from mobile_vla.vocab.instructions import (
    FAMILIES,
    NO_SIDE,
    SIDES,
    TRAINING,
    format_instruction,
    robot_korean_instruction,
    templates,
)

LATERAL = 1  # linear_y in the policy's (N, 2) output


def identical_frames(policy, episodes: int, seed: int, task: str = "cup") -> list[np.ndarray]:
    """The frames of expert rollouts (both sides) of ``(episodes + 1) // 2`` evaluation scenes."""
    _, spec, _, preset = resolve(task)
    frames: list[np.ndarray] = []
    with World(image_size=int(policy.metadata["image_size"])) as world:
        for i in range((episodes + 1) // 2):
            scene = preset.sample(eval_scene_seed(seed, i))
            for route in SIDES:
                frames += list(run_episode(world, scene, robot_korean_instruction(route), render=True, task=spec).frames)
    return frames


def mean_lateral(policy, frames: list[np.ndarray], instruction: str) -> float:
    """Mean first-action lateral velocity (m/s) of a fresh session per frame under ``instruction``."""
    return float(np.mean([policy.new_session(instruction).step(f, "rgb")[0, LATERAL] for f in frames]))


def lateral_on_identical_frames(policy, episodes: int, seed: int, task: str = "cup") -> dict:
    """Mean first-action lateral velocity (m/s) of the robot's Korean instruction per side, on
    :func:`identical_frames`."""
    frames = identical_frames(policy, episodes, seed, task)
    mean = {s: mean_lateral(policy, frames, robot_korean_instruction(s)) for s in SIDES}
    return {"frames": len(frames), "mean_lateral_left": mean["left"], "mean_lateral_right": mean["right"],
            "left_minus_right": mean["left"] - mean["right"]}


def per_sentence(policy, episodes: int, seed: int, task: str = "cup") -> list[dict]:
    """Every side-naming template (training and held-out part of each family) on identical frames:
    the left sentence's mean lateral velocity minus the right one's (m/s; > 0: obeyed, for every
    family, since the sentence for side ``s`` asks for ``s``), and the words the model read (what
    the processor keeps; a dropped token is marked ``~``)."""
    _, spec, _, _ = resolve(task)
    frames = identical_frames(policy, episodes, seed, task)
    processor = policy.processor
    rows = []
    for family, parts in templates(spec.target).items():
        if family == NO_SIDE:
            continue
        for part in ("train", "heldout"):
            for template in getattr(parts, part):
                left, right = (format_instruction(template, s, spec.target) for s in SIDES)
                known = processor.config.known_tokens
                dropped = processor.config.unseen_tokens == "drop" and known is not None
                words = [("~" if dropped and i not in known else "") + processor.tokenizer.decode([i]).strip()
                         for i in processor.text_ids(left)]
                rows.append({"family": family, "part": part, "sentence": left, "words": " ".join(words),
                             "left_minus_right": mean_lateral(policy, frames, left) - mean_lateral(policy, frames, right)})
    return rows


def robot_sentence_closed_loop(policy, episodes: int, seed: int, strategy: str, decay: float = DEFAULT_DECAY
                               ) -> dict[str, float]:
    """Closed-loop success on the instructed side, per side, under the robot's one Korean sentence
    (the same scenes as the families)."""
    from mobile_vla.policy.controller import PolicyController

    _, spec, _, preset = resolve("cup")
    controller = PolicyController(policy, strategy, decay)
    results: dict[str, list] = {s: [] for s in SIDES}
    with World(image_size=int(policy.metadata["image_size"])) as world:
        for i in range((episodes + 1) // 2):
            scene = preset.sample(eval_scene_seed(seed, i))
            for side in SIDES:
                results[side].append(run_episode(world, scene, robot_korean_instruction(side), controller, beta=0.0,
                                                 render=False, task=spec))
    return {s: summarize(r)["success_on_side_rate"] for s, r in results.items()}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--tasks", default="cup", help="comma-separated simulator tasks to evaluate")
    p.add_argument("--episodes", type=int, default=80, help="per family (half per side)")
    p.add_argument("--seed", type=int, default=100, help="evaluation scene stream (disjoint from collection)")
    p.add_argument("--mixed", action="store_true", help="also the scenes holding every task's objects")
    p.add_argument("--strategy", choices=STRATEGIES, default=DEFAULT_STRATEGY)
    p.add_argument("--ensemble-decay", type=float, default=DEFAULT_DECAY, metavar="D",
                   help="the ensemble's weight decay per step of a chunk's age (eval-sim's flag)")
    p.add_argument("--per-sentence", action="store_true",
                   help="also every template's left-minus-right lateral velocity on identical frames")
    p.add_argument("--out", default=None, help="write the JSON here too")
    args = p.parse_args()

    start = time.perf_counter()
    policy = load_policy(args.checkpoint)
    result: dict = {"checkpoint": args.checkpoint, "episodes_per_family": args.episodes, "seed": args.seed,
                    "strategy": args.strategy, "ensemble_decay": args.ensemble_decay, "tasks": {}}
    decay = args.ensemble_decay
    for task in [t.strip() for t in args.tasks.split(",") if t.strip()]:
        table, reports = success_by_family(policy, args.episodes, args.seed, args.strategy, task=task,
                                           families=(TRAINING, *FAMILIES), decay=decay)
        free = evaluate_closed_loop(policy, args.episodes, args.seed, args.strategy, task=task,
                                    instructions=NO_SIDE, progress=False, decay=decay)
        expert = expert_eval(args.episodes, args.seed, task=task)
        entry = {
            "success_by_family": table,
            "success_any_side_by_family": {f: {s: r[s]["success_rate"] for s in SIDES} for f, r in reports.items()},
            "side_accuracy_by_family": {f: {s: r[s]["side_accuracy"] for s in SIDES} for f, r in reports.items()},
            "no_side": {"success_rate": free["overall"]["success_rate"], "sides_taken": free["sides_taken"],
                        "episodes": free["overall"]["episodes"]},
            "expert": {"success_rate": expert["success_rate"], "episodes": expert["episodes"]},
        }
        if args.mixed:
            scenes = mixed_preset(task)
            mixed = evaluate_closed_loop(policy, args.episodes, args.seed, args.strategy, task=task, scenes=scenes,
                                         progress=False, decay=decay)
            entry["mixed"] = {"scenes": scenes, "success": {s: mixed[s]["success_rate"] for s in SIDES},
                              "confusion": mixed["confusion"], "episodes": mixed["overall"]["episodes"]}
        if task == "cup":
            entry["robot_korean"] = {"success": robot_sentence_closed_loop(policy, args.episodes, args.seed, args.strategy, decay),
                                     **lateral_on_identical_frames(policy, max(2, args.episodes // 8), args.seed)}
        if args.per_sentence:
            entry["per_sentence"] = per_sentence(policy, max(2, args.episodes // 8), args.seed, task)
        result["tasks"][task] = entry
    result["wall_seconds"] = round(time.perf_counter() - start, 1)
    if args.out:
        write_json(args.out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
