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
    side_agreement_by_phase  ``{approach, beside, after}``: split by where the robot is relative to
                           the obstacle cluster when it predicts (before its near face, level with
                           it, past its far face); over the steps where the two demonstrations
                           differ (‖Δdemo‖ > 0.25 m/s), the fraction whose predicted difference
                           points the same way (positive dot product with Δdemo). Approaching, that
                           is the sideways move; beside, it is "keep going in the instructed lane"
                           against "back out of the wrong one". ``None`` where a phase has no such
                           steps (past the cluster both demonstrations drive to the cup, so
                           ``after`` is usually empty on expert data; closed-loop side accuracy
                           is the measure there).

``flip_divergence_ratio`` is unsigned: a policy that swaps left and right, or moves the wrong
way when the instruction flips, scores as high as one that obeys. Read it next to the signed
``side_agreement`` figures, which say whether the change points to the instructed side.

Figures that need no paired labels (episodes recorded once per scene, like the robot's own):
    context_cosine, action_difference  as above, over every valid chunk step of the recorded
                           episodes (the mirrored instruction's action is predicted, not demonstrated)
    lateral_velocity_by_side  mean predicted linear_y, m/s, under left and under right instructions
                           (both instructions on every frame): an obeying policy gives left > 0 > right
    mirror_consistency_error  mean |mirror(a(flip(frames), mirror(instr))) - a(frames, instr)| per
                           action element, m/s: the policy on horizontally flipped frames with the
                           mirrored instruction should output the mirrored action (linear_y negated)
Without paired labels ``flip_divergence_ratio``, ``side_agreement`` and ``side_agreement_any`` are
skipped (:data:`NEEDS_PAIRED_LABELS`): each compares with what the *other* instruction's
demonstration did on the same frames.

Why 0.25 m/s: in the simulator the demonstrations' lateral differences are bimodal. Where the
sides are chosen (before and beside the cluster) they differ by ≥ 0.5 m/s; the rest are lane-
keeping corrections under 0.2 m/s, e.g. inside one lane, where the mirrored label backs straight
out (no lateral part) and the instructed one nudges back to the lane's centre line. The sign of
such a nudge says nothing about which side the policy chose.
"""

from __future__ import annotations

import numpy as np

from mobile_vla.data.augment import MIRROR_SIGNS
from mobile_vla.vocab.scene import PHASES

#: What the user's report measured on the policy whose instruction never reached the action.
REPORT_BASELINE = {"context_cosine": 0.74, "action_difference": 0.001}
LATERAL = 1  # index of linear_y in the (linear_x, linear_y) action vector
SIDE_DIFFERENCE = 0.25  # m/s: a lateral difference of the demonstrations this large is a side choice
_LATERAL_EPS = 0.05  # m/s: demonstrations closer than this laterally count as "not different"
#: The figures that compare with the mirrored instruction's demonstration, so need paired labels.
NEEDS_PAIRED_LABELS = ("flip_divergence_ratio", "side_agreement", "side_agreement_any")


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
    phase: np.ndarray | None = None,
) -> dict[str, float]:
    """Compute the diagnostic on a set of paired predictions.

    Args:
        context, context_mirror: ``(M, K, H)`` or ``(M, H)`` action-token states per frame, or ``None``.
        pred, pred_mirror: ``(M, N, D)`` predicted chunks in physical units.
        demo, demo_mirror: ``(M, N, D)`` the two demonstrations' chunks in physical units.
        mask: ``(M, N)`` bool, valid chunk steps (both demonstrations defined).
        phase: ``(M,)`` int, index into :data:`PHASES` per frame, -1 where unknown (no scene
            geometry); ``None`` leaves ``side_agreement_by_phase`` out.
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("no valid paired steps: does the data carry counterfactual_actions?")
    require_finite(mask, pred=pred, pred_mirror=pred_mirror, demo=demo, demo_mirror=demo_mirror)
    dp = (np.asarray(pred) - np.asarray(pred_mirror))[mask]  # (V, D)
    dd = (np.asarray(demo) - np.asarray(demo_mirror))[mask]
    out = instruction_metrics(context, context_mirror, pred, pred_mirror, mask)
    demo_gap = float(np.linalg.norm(dd, axis=1).mean())
    out["flip_divergence_ratio"] = float(np.linalg.norm(dp, axis=1).mean() / max(demo_gap, 1e-12))
    agree = np.sign(dp[:, LATERAL]) == np.sign(dd[:, LATERAL])
    for key, threshold in (("side_agreement", SIDE_DIFFERENCE), ("side_agreement_any", _LATERAL_EPS)):
        lateral = np.abs(dd[:, LATERAL]) > threshold
        out[key] = float(agree[lateral].mean()) if lateral.any() else float("nan")
    if phase is not None:
        step_phase = np.broadcast_to(np.asarray(phase)[:, None], mask.shape)[mask]  # (V,)
        differ = np.linalg.norm(dd, axis=1) > SIDE_DIFFERENCE
        same_way = (dp * dd).sum(1) > 0
        by_phase, steps = {}, {}
        for index, name in enumerate(PHASES):
            sel = differ & (step_phase == index)
            by_phase[name] = float(same_way[sel].mean()) if sel.any() else None
            steps[name] = int(sel.sum())
        out["side_agreement_by_phase"] = by_phase
        out["side_agreement_steps_by_phase"] = steps
    out["paired_steps"] = int(mask.sum())
    return out


def instruction_metrics(
    context: np.ndarray | None,
    context_mirror: np.ndarray | None,
    pred: np.ndarray,
    pred_mirror: np.ndarray,
    mask: np.ndarray,
) -> dict[str, float]:
    """The report's two figures, which need no demonstration of the mirrored instruction.

    Args: as :func:`grounding_metrics`; ``mask`` ``(M, N)`` selects the chunk steps compared.
    Returns ``context_cosine`` (when contexts are given) and ``action_difference``.
    """
    mask = np.asarray(mask, bool)
    if not mask.any():
        raise ValueError("no valid chunk steps to compare")
    out: dict[str, float] = {}
    if context is not None and context_mirror is not None:
        a = np.asarray(context, np.float64).reshape(len(context), -1)
        b = np.asarray(context_mirror, np.float64).reshape(len(context_mirror), -1)
        cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-12)
        out["context_cosine"] = float(cos.mean())
    out["action_difference"] = float(np.abs((np.asarray(pred) - np.asarray(pred_mirror))[mask]).mean())
    return out


def lateral_velocity_by_side(
    pred: np.ndarray, pred_mirror: np.ndarray, sides: np.ndarray, mask: np.ndarray
) -> dict[str, float]:
    """Mean predicted ``linear_y`` (m/s) under left and under right instructions.

    Args:
        pred, pred_mirror: ``(M, N, D)`` under each frame's instruction and under its mirror.
        sides: ``(M,)`` the instruction's side per frame: ``"left"``, ``"right"`` or anything else
            (no side: left out).
        mask: ``(M, N)`` valid chunk steps.
    """
    sides = np.asarray(sides)
    mask = np.asarray(mask, bool)
    sums = {"left": [0.0, 0], "right": [0.0, 0]}
    for own, other in (("left", "right"), ("right", "left")):
        rows = sides == own
        for side, p in ((own, pred), (other, pred_mirror)):
            lateral = np.asarray(p)[rows][..., LATERAL][mask[rows]]
            sums[side][0] += float(lateral.sum())
            sums[side][1] += int(lateral.size)
    return {side: (total / n if n else float("nan")) for side, (total, n) in sums.items()}


def mirror_consistency_error(pred: np.ndarray, pred_flipped_mirror: np.ndarray, mask: np.ndarray) -> float:
    """Mean |mirror(a(flip(frames), mirror(instr))) - a(frames, instr)| per action element, m/s.

    Args:
        pred: ``(M, N, D)`` on the frames under their instruction.
        pred_flipped_mirror: ``(M, N, D)`` on the horizontally flipped frames under the mirrored instruction.
        mask: ``(M, N)`` valid chunk steps.
    """
    signs = MIRROR_SIGNS[: np.shape(pred)[-1]].astype(np.float64)
    diff = np.asarray(pred_flipped_mirror, np.float64) * signs - np.asarray(pred, np.float64)
    return float(np.abs(diff[np.asarray(mask, bool)]).mean())
