"""`mobile-vla eval`: offline metrics of a checkpoint on recorded episodes."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("eval", help="offline metrics (MAE, true RMSE, agreement, grounding) on episodes")
    p.add_argument("--checkpoint", required=True, help="checkpoint directory")
    p.add_argument("--data", required=True, help="episode file or folder")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mobile_vla import Policy
    from mobile_vla.cli import emit
    from mobile_vla.eval.offline import evaluate_offline

    policy = Policy.from_checkpoint(args.checkpoint)
    result = evaluate_offline(policy, args.data, args.batch_size, progress=not args.json)
    result.pop("_paired")
    emit(result, args.json, format_offline(result))
    return 0


def format_offline(result: dict) -> str:
    a = result["actions"]
    lines = [f"windows: {result['windows']}  frames: {a['frames']}",
             f"{'':12}{'MAE x':>9}{'MAE y':>9}{'RMSE x':>9}{'RMSE y':>9}  (m/s)"]
    for scope in ("first", "chunk"):
        s = a[scope]
        lines.append(f"{scope + ' action':12}{s['mae']['linear_x']:9.3f}{s['mae']['linear_y']:9.3f}"
                     f"{s['rmse']['linear_x']:9.3f}{s['rmse']['linear_y']:9.3f}")
    lines.append(f"class agreement {a['class_agreement']:.3f}   direction agreement {a['direction_agreement']:.3f}")
    if result["grounding"]:
        from mobile_vla.commands.diagnose import format_grounding

        lines.append(format_grounding(result["grounding"]))
    return "\n".join(lines)
