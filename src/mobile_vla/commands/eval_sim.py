"""`mobile-vla eval-sim`: closed-loop success per instruction side in the simulator."""

from __future__ import annotations

import json

from mobile_vla.commands.sim import add_scene_args


def register(sub) -> None:
    p = sub.add_parser("eval-sim", help="closed-loop evaluation in the simulator, per instruction side")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", help="checkpoint directory, or any path a registered policy backend reads "
                                          "(in-process policy)")
    src.add_argument("--server", help="ws://HOST:PORT of a `mobile-vla serve` policy server")
    p.add_argument("--token", help="API token for --server")
    p.add_argument("--episodes", type=int, default=20, help="episodes in total (scenes x 2 sides)")
    p.add_argument("--seed", type=int, default=0, help="evaluation scene stream (disjoint from collection)")
    p.add_argument("--strategy", choices=("first", "chunk", "ensemble"), default="first",
                   help="how chunks become commands")
    p.add_argument("--heldout-phrasings", action="store_true",
                   help="use paraphrases that no training template contains")
    p.add_argument("--video", metavar="DIR", help="write the first few rollouts as MP4 videos (H.264): camera beside a top-down map")
    p.add_argument("--plot", metavar="FILE.png", help="top-down plot of the rollouts")
    p.add_argument("--records", metavar="FILE.jsonl", help="write per-episode trajectories (for `sim plot`)")
    add_scene_args(p)
    p.add_argument("--json", action="store_true", help="print the report as one JSON object on the last line")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mobile_vla.cli import emit
    from mobile_vla.eval.closed_loop import evaluate_closed_loop
    from mobile_vla.jsonio import json_default

    if args.server:
        from mobile_vla.serve.client import RemotePolicy

        policy = RemotePolicy(args.server, token=args.token)
    else:
        from mobile_vla.policy.backends import load_policy

        policy = load_policy(args.checkpoint)
    try:
        report = evaluate_closed_loop(policy, args.episodes, args.seed, args.strategy,
                                      heldout_phrasings=args.heldout_phrasings, video_dir=args.video,
                                      progress=not args.json, task=args.task, scenes=args.scenes)
    finally:
        if hasattr(policy, "close"):
            policy.close()
    records = report.pop("records")
    if args.records:
        from pathlib import Path

        Path(args.records).write_text("".join(json.dumps(r) + "\n" for r in records))
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
        lines.append(f"{key:9}{r['success_rate']:9.2f}{r['collision_rate']:11.2f}{r['timeout_rate']:9.2f}"
                     f"{r['side_accuracy']:10.2f}{r['mean_steps']:7.1f}")
    return "\n".join(lines)
