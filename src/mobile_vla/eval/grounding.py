"""The instruction-sensitivity diagnostic: does swapping the instruction change the action?

On *paired windows* — the same frames under an instruction and under its mirror (left ↔
right) — compare what the backbone and the policy do with what the two demonstrations do.
The mirrored demonstration is the expert's counterfactual label recorded at the same states
(simulator episodes carry it as ``counterfactual_actions``).

Figures (all means over valid chunk steps):
    context_cosine         cosine similarity of the action-token states under the two instructions
                           (the user's report measured 0.74 on its policy: the context changed ...)
    action_difference      mean |a(instr) - a(mirror)| per action element, m/s (... but the action
                           changed by 0.001: the instruction did not reach the action)
    flip_divergence_ratio  mean ||a(instr) - a(mirror)|| / mean ||demo(instr) - demo(mirror)||:
                           0 = the instruction changes nothing; 1 = it changes the action as much as
                           the demonstrations differ
    side_agreement         where the demonstrations differ laterally (by a side choice: > 0.25 m/s),
                           the fraction of steps whose predicted lateral difference has the same sign
    side_agreement_any     the same over every lateral difference > 0.05 m/s, lane-keeping
                           corrections included

Why 0.25 m/s: in the simulator the demonstrations' lateral differences are bimodal. Where the
sides are chosen (before and beside the cluster) they differ by ≥ 0.5 m/s; the rest are lane-
keeping corrections under 0.2 m/s, e.g. inside one lane, where the mirrored label backs straight
out (no lateral part) and the instructed one nudges back to the lane's centre line. The sign of
such a nudge says nothing about which side the policy chose.
"""

from __future__ import annotations

import numpy as np

#: What the user's report measured on the policy whose instruction never reached the action.
REPORT_BASELINE = {"context_cosine": 0.74, "action_difference": 0.001}
LATERAL = 1  # index of linear_y in the (linear_x, linear_y) action vector
SIDE_DIFFERENCE = 0.25  # m/s: a lateral difference of the demonstrations this large is a side choice
_LATERAL_EPS = 0.05  # m/s: demonstrations closer than this laterally count as "not different"


def require_finite(mask: np.ndarray, **arrays: np.ndarray) -> None:
    """Raise ``ValueError`` naming the first array with a NaN/inf at a valid step.

    ``mask`` ``(M, N)`` marks valid chunk steps; arrays are ``(M, N, ...)``. Padding outside the
    mask may hold anything. A NaN would otherwise turn a mean into NaN or, worse, compare as
    "not equal" and quietly count as a disagreement.
    """
    mask = np.asarray(mask, bool)
    for name, array in arrays.items():
        values = np.asarray(array, np.float64)[mask]
        if not np.isfinite(values).all():
            raise ValueError(f"{name}: {int((~np.isfinite(values)).any(axis=-1).sum())} valid steps are not finite")


def grounding_metrics(
    context: np.ndarray | None,
    context_mirror: np.ndarray | None,
    pred: np.ndarray,
    pred_mirror: np.ndarray,
    demo: np.ndarray,
    demo_mirror: np.ndarray,
    mask: np.ndarray,
) -> dict[str, float]:
    """Compute the diagnostic on a set of paired predictions.

    Args:
        context, context_mirror: ``(M, K, H)`` or ``(M, H)`` action-token states per frame, or ``None``.
        pred, pred_mirror: ``(M, N, D)`` predicted chunks in physical units.
        demo, demo_mirror: ``(M, N, D)`` the two demonstrations' chunks in physical units.
        mask: ``(M, N)`` bool, valid chunk steps (both demonstrations defined).
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("no valid paired steps: does the data carry counterfactual_actions?")
    require_finite(mask, pred=pred, pred_mirror=pred_mirror, demo=demo, demo_mirror=demo_mirror)
    dp = (np.asarray(pred) - np.asarray(pred_mirror))[mask]  # (V, D)
    dd = (np.asarray(demo) - np.asarray(demo_mirror))[mask]
    out: dict[str, float] = {}
    if context is not None and context_mirror is not None:
        a = np.asarray(context, np.float64).reshape(len(context), -1)
        b = np.asarray(context_mirror, np.float64).reshape(len(context_mirror), -1)
        cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
        out["context_cosine"] = float(cos.mean())
    out["action_difference"] = float(np.abs(dp).mean())
    demo_gap = float(np.linalg.norm(dd, axis=1).mean())
    out["flip_divergence_ratio"] = float(np.linalg.norm(dp, axis=1).mean() / max(demo_gap, 1e-12))
    agree = np.sign(dp[:, LATERAL]) == np.sign(dd[:, LATERAL])
    for key, threshold in (("side_agreement", SIDE_DIFFERENCE), ("side_agreement_any", _LATERAL_EPS)):
        lateral = np.abs(dd[:, LATERAL]) > threshold
        out[key] = float(agree[lateral].mean()) if lateral.any() else float("nan")
    out["paired_steps"] = int(mask.sum())
    return out
