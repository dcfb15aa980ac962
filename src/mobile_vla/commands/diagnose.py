"""`mobile-vla diagnose`: does the instruction change the action? (the report's measurement)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("diagnose", help="instruction-sensitivity diagnostic on paired windows")
    p.add_argument("--checkpoint", required=True, help="checkpoint directory")
    p.add_argument("--data", required=True, help="paired episodes (with counterfactual labels)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--plot", help="write a PNG scatter of predicted vs demonstrated lateral difference")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mobile_vla import Policy
    from mobile_vla.cli import emit
    from mobile_vla.errors import MobileVLAError
    from mobile_vla.eval.grounding import REPORT_BASELINE
    from mobile_vla.eval.offline import evaluate_offline

    policy = Policy.from_checkpoint(args.checkpoint)
    result = evaluate_offline(policy, args.data, args.batch_size, progress=not args.json)
    if not result["grounding"]:
        raise MobileVLAError(
            f"{args.data}: no paired labels (counterfactual_actions); record data with `mobile-vla sim collect`"
        )
    if args.plot:
        from mobile_vla.eval.plots import plot_grounding

        p = result["_paired"]
        m = p["mask_mirror"]
        plot_grounding((p["pred"] - p["pred_mirror"])[m][:, 1], (p["target"] - p["target_mirror"])[m][:, 1],
                       args.plot)
    out = {**result["grounding"], "report_baseline": REPORT_BASELINE}
    emit(out, args.json, format_grounding(result["grounding"]))
    return 0


def format_grounding(g: dict) -> str:
    from mobile_vla.eval.grounding import REPORT_BASELINE as report

    return (
        "grounding (instruction vs mirrored instruction, same frames):\n"
        f"  context_cosine        {g.get('context_cosine', float('nan')):.3f}   (report: {report['context_cosine']})\n"
        f"  action_difference     {g['action_difference']:.3f} m/s (report: {report['action_difference']})\n"
        f"  flip_divergence_ratio {g['flip_divergence_ratio']:.3f}   (0 = ignores the instruction, 1 = as the demos)\n"
        f"  side_agreement        {g['side_agreement']:.3f}   (where the sides are chosen)\n"
        f"  side_agreement_any    {g.get('side_agreement_any', float('nan')):.3f}   (lane-keeping nudges included)"
        + "".join(f"\n  side_agreement {name:<7}{_fmt(value)}   ({g['side_agreement_steps_by_phase'][name]} steps)"
                  for name, value in g.get("side_agreement_by_phase", {}).items())
    )


def _fmt(value) -> str:
    return "  n/a" if value is None else f"{value:.3f}"
