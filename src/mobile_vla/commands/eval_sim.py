"""`mobile-vla eval-sim`: closed-loop success per instruction side in the simulator."""

from __future__ import annotations

import dataclasses
import json
import math

from mobile_vla.commands.sim import add_lane_args, add_scene_args, lane_expert
from mobile_vla.policy.executor import DEFAULT_DECAY, DEFAULT_STRATEGY, STRATEGIES
from mobile_vla.vocab.instructions import FAMILIES, NO_SIDE, TRAINING


def register(sub) -> None:
    p = sub.add_parser("eval-sim", help="closed-loop evaluation in the simulator, per instruction side")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint directory, or any path a registered policy backend reads "
                                          "(in-process policy)")
    src.add_argument("--server", help="ws://HOST:PORT or wss://HOST:PORT of a `mobile-vla serve` policy server")
    src.add_argument("--baseline", choices=("blind", "expert"),
                     help="score a reference instead of a policy: blind = replay of the mean expert action per "
                          "step and side (never looks at a frame), expert = the expert")
    p.add_argument("--token", help="API token for --server")
    p.add_argument("--tls-ca", metavar="FILE", help="CA certificate (PEM) that signed a wss:// --server's "
                   "certificate (default: the system's trusted CAs)")
    p.add_argument("--episodes", type=int, default=20, help="episodes in total (scenes x 2 sides)")
    p.add_argument("--seed", type=int, default=0, help="evaluation scene stream (disjoint from collection)")
    p.add_argument("--strategy", choices=STRATEGIES, default=DEFAULT_STRATEGY,
                   help=f"how chunks become commands (default: {DEFAULT_STRATEGY})")
    p.add_argument("--ensemble-decay", type=float, default=None, metavar="D",
                   help="ensemble strategy: the chunk predicted i steps ago weighs exp(-D * i) "
                        f"(default: {DEFAULT_DECAY}; larger trusts the newest chunk more)")
    p.add_argument("--instructions", default=None, choices=(TRAINING, *FAMILIES, NO_SIDE), metavar="NAME",
                   help="which sentences the robot is given: 'training' (default; every family's training "
                        "templates), a family's held-out part (paraphrase, relational, negated, korean) or "
                        "no-side (no side named; the report says which side the robot took)")
    p.add_argument("--heldout-phrasings", action="store_const", const="paraphrase", dest="instructions",
                   help="alias of --instructions paraphrase")
    p.add_argument("--blank-frames", action="store_true",
                   help="show the policy one constant grey image instead of every frame (a policy that sees "
                        "should fall to about the blind baseline)")
    p.add_argument("--instruction-side", choices=("both", "suggested", "opposite"), default="both",
                   help="instructions relative to the side each scene suggests (more room): both sides per scene, "
                        "or once per scene with the suggested side or the opposite one (scene and instruction disagree)")
    p.add_argument("--video", metavar="DIR", help="write the first few rollouts as MP4 videos (H.264): camera beside a top-down map")
    p.add_argument("--plot", metavar="FILE.png", help="top-down plot of the rollouts")
    p.add_argument("--out", metavar="DIR", help="also write the JSON report to DIR/report.json (what "
                                               "scripts/results_tables.py reads)")
    p.add_argument("--records", metavar="FILE.jsonl", help="write per-episode trajectories (for `sim plot`)")
    add_scene_args(p)
    lane = p.add_argument_group("the baselines' expert (--baseline only)",
                                "the lane the expert drives and the blind replay averages; match the recipe's "
                                "(`mobile-vla demo` trains with 0.75 / 0.6)")
    add_lane_args(lane)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object on the last line")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mobile_vla.cli import emit
    from mobile_vla.errors import MobileVLAError
    from mobile_vla.eval.closed_loop import evaluate_closed_loop
    from mobile_vla.jsonio import json_default
    from mobile_vla.sim.expert import ExpertConfig

    if args.episodes < 1:
        raise MobileVLAError(f"--episodes must be positive, got {args.episodes}")
    if args.ensemble_decay is not None:
        if not math.isfinite(args.ensemble_decay):
            raise MobileVLAError(f"--ensemble-decay must be a finite number, got {args.ensemble_decay}")
        if args.baseline or args.strategy != "ensemble":
            raise MobileVLAError("--ensemble-decay weighs the ensemble strategy's chunks; use it with a policy "
                                 "and --strategy ensemble")
    if args.baseline and args.blank_frames:
        raise MobileVLAError("--blank-frames replaces a policy's frames; use it with --checkpoint or --server")
    expert = lane_expert(args)
    if not args.baseline and dataclasses.replace(expert, no_side_route="view") != ExpertConfig():
        raise MobileVLAError("--clearance / --front-margin / --exit-margin set the baselines' expert; "
                             "use them with --baseline")
    # For a policy, --no-side-route is the deployment's convention for no-side requests (load_policy).
    route = None if expert.no_side_route == "view" else expert.no_side_route
    if args.server and route:
        raise MobileVLAError("--no-side-route with --server: the server applies it (mobile-vla serve --no-side-route)")
    if args.baseline:
        policy = None
    elif args.server:
        from mobile_vla.serve.client import RemotePolicy

        policy = RemotePolicy(args.server, token=args.token, ca_file=args.tls_ca)
    else:
        from mobile_vla.policy.backends import load_policy

        policy = load_policy(args.checkpoint, no_side_route=route)
    try:
        report = evaluate_closed_loop(policy, args.episodes, args.seed, args.strategy,
                                      instructions=args.instructions, video_dir=args.video,
                                      progress=not args.json, task=args.task, scenes=args.scenes,
                                      baseline=args.baseline, expert=expert, blank_frames=args.blank_frames,
                                      instruction_side=args.instruction_side, decay=DEFAULT_DECAY if args.ensemble_decay is None else args.ensemble_decay)
    finally:
        if hasattr(policy, "close"):
            policy.close()
    records = report.pop("records")
    if args.out:
        from pathlib import Path

        from mobile_vla.jsonio import write_json

        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_json(Path(args.out) / "report.json", {**report, "episodes": args.episodes})
    if args.records:
        from mobile_vla.jsonio import write_text_atomic

        write_text_atomic(args.records, "".join(json.dumps(r) + "\n" for r in records))
    if args.plot:
        from mobile_vla.sim.plot import plot_trajectories

        plot_trajectories(records, args.plot)
    if args.json:
        # One line, and the last one: a script takes the report with `tail -n 1`, whatever logged before.
        print(json.dumps(report, default=json_default), flush=True)
    else:
        emit(report, False, format_closed_loop(report))
    return 0


def format_closed_loop(report: dict) -> str:
    lines = [f"{'':9}{'success':>9}{'collision':>11}{'timeout':>9}{'side acc':>10}{'steps':>7}"]
    for key in ("left", "right", "overall"):
        r = report[key]
        if r is None:
            continue
        lines.append(f"{key:9}{r['success_rate']:9.2f}{r['collision_rate']:11.2f}{r['timeout_rate']:9.2f}"
                     f"{r['side_accuracy']:10.2f}{r['mean_steps']:7.1f}")
    lines.append(f"instructions: {report.get('instructions', TRAINING)}")
    if report.get("sides_taken"):
        lines.append("sides taken: " + ", ".join(f"{k} {v:.2f}" for k, v in report["sides_taken"].items()))
    if report.get("confusion") is not None:
        lines.append(f"confusion (reached another task's object): {report['confusion']:.2f}")
    return "\n".join(lines)
