"""`mobile-vla demo`: the whole system on the embedded default (simulated data, tiny offline Kosmos-2)."""

from __future__ import annotations

import contextlib
import sys


def register(sub) -> None:
    p = sub.add_parser("demo", help="collect simulator data, train the tiny model, evaluate, write a report")
    p.add_argument("--out", default=None, help="output folder (default outputs/demo)")
    p.add_argument("--seed", type=int, default=None, help="seed for data, training and evaluation (default 0)")
    p.add_argument("--scenes", default=None, metavar="NAME",
                   help="scene preset every stage draws from: classic, varied, cluttered (default: the task's, varied)")
    p.add_argument("--tasks", default=None, metavar="TASK[,TASK]",
                   help="simulator tasks one policy learns, e.g. cup,basket (default: cup)")
    p.add_argument("--force-restart", action="store_true",
                   help="delete the outputs of an earlier demo with other settings in --out and start over")
    p.add_argument("--json", action="store_true", help="print report.json's headline figures as JSON")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="demo settings, e.g. num_scenes=40 (paired training scenes) scenes=cluttered (scene "
                        "preset: classic, varied, cluttered) train_steps=300 'train_overrides=[optim.lr=0.002]'")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mobile_vla.cli import emit
    from mobile_vla.demo import load_demo_config, run_demo, summary_table

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()] if args.tasks else None
    cfg = load_demo_config(args.overrides, args.out, args.seed, tasks, args.scenes)
    with contextlib.redirect_stdout(sys.stderr):  # stdout carries only the result (Lightning prints tables)
        report = run_demo(cfg, progress=not args.json, force_restart=args.force_restart)
    headline = {k: report[k] for k in ("success_left", "success_right", "blind_success_left", "blind_success_right",
                                       "scenes", "collision_rate", "side_accuracy",
                                       "flip_divergence_ratio", "side_agreement", "success_by_family", "train_windows",
                                       "wall_minutes", "checkpoint")}
    text = f"\nMobile VLA demo — results in {cfg.out}/report.md\n{summary_table(report)}"
    emit(headline, args.json, text)
    return 0
