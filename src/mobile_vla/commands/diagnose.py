"""`mobile-vla diagnose`: does the instruction change the action? (the report's measurement).

On paired simulator episodes every figure of :mod:`mobile_vla.eval.grounding`; on episodes
recorded once per scene (the robot's own, or `sim collect --unpaired`) the figures that need no
paired labels, and a message naming the ones skipped.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("diagnose", help="instruction-sensitivity diagnostic (paired or one-sided episodes)")
    p.add_argument("--checkpoint", required=True, help="checkpoint directory")
    p.add_argument("--data", required=True, help="episodes: paired (with counterfactual labels) or one-sided")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--plot", help="write a PNG scatter of predicted vs demonstrated lateral difference")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mobile_vla import Policy
    from mobile_vla.cli import emit
    from mobile_vla.eval.grounding import REPORT_BASELINE
    from mobile_vla.eval.offline import evaluate_offline

    policy = Policy.from_checkpoint(args.checkpoint)
    result = evaluate_offline(policy, args.data, args.batch_size, progress=not args.json)
    figures = result["diagnose"]
    if args.plot and not figures["paired_labels"]:
        log.warning("--plot skipped: it plots against the mirrored demonstrations, which %s lacks", args.data)
    elif args.plot:
        from mobile_vla.eval.plots import plot_grounding

        p = result["_paired"]
        m = p["mask_mirror"]
        plot_grounding((p["pred"] - p["pred_mirror"])[m][:, 1], (p["target"] - p["target_mirror"])[m][:, 1],
                       args.plot)
    out = {**figures, "report_baseline": REPORT_BASELINE}
    emit(out, args.json, format_diagnose(figures))
    return 0


def format_diagnose(d: dict) -> str:
    """The text report: the grounding figures (or the label-free ones), lateral velocity, mirror consistency."""
    from mobile_vla.eval.grounding import REPORT_BASELINE as report

    if d["paired_labels"]:
        lines = [format_grounding(d)]
    else:
        lines = ["grounding (instruction vs mirrored instruction, same frames; no paired labels):",
                 f"  context_cosine        {d.get('context_cosine', float('nan')):.3f}   "
                 f"(report: {report['context_cosine']})",
                 f"  action_difference     {d['action_difference']:.3f} m/s (report: {report['action_difference']})"]
    lat, demo = d["lateral_velocity_by_side"], d["demo_lateral_velocity_by_side"]
    lines.append(f"  lateral velocity      left {lat['left']:+.3f}  right {lat['right']:+.3f} m/s   "
                 f"(demonstrations: left {demo['left']:+.3f}  right {demo['right']:+.3f})")
    if "mirror_consistency_error" in d:
        lines.append(f"  mirror_consistency_error {d['mirror_consistency_error']:.3f} m/s "
                     "(flipped frames + mirrored instruction vs mirrored action; 0 = consistent)")
    if d["skipped"]:
        lines.append(f"skipped ({next(iter(d['skipped'].values()))}): {', '.join(d['skipped'])}; "
                     "they compare with the mirrored instruction's demonstration on the same frames "
                     "(record such data with `mobile-vla sim collect`)")
    return "\n".join(lines)


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
