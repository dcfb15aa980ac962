"""Offline (teacher-forced) evaluation on recorded episodes, in physical units.

Every window is predicted twice — under its instruction and under the mirrored one — so the
same pass yields the action errors and the grounding diagnostic; a third prediction on the
flipped frames under the mirrored instruction gives the mirror consistency. Windows are taken
with stride ``W`` so each frame is scored once. Episodes without counterfactual labels (recorded
once per scene, like the robot's) get the figures that need no labels (:func:`diagnose_figures`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mobile_vla.eval.grounding import (
    LATERAL,
    NEEDS_PAIRED_LABELS,
    grounding_metrics,
    instruction_metrics,
    lateral_velocity_by_side,
    mirror_consistency_error,
    require_finite,
)
from mobile_vla.vocab import batch as keys
from mobile_vla.vocab.actions import POLICY_ACTION_NAMES, action_class
from mobile_vla.vocab.batch import CF_PREFIX, DIRECTION_IDS
from mobile_vla.vocab.instructions import mirror_instruction
from mobile_vla.vocab.scene import scene_phase

_DIRECTION_THRESHOLD = 0.3  # m/s: a lateral label this large has a definite direction


@torch.no_grad()
def paired_outputs(model, processor, batch: dict, flipped: bool = False) -> dict[str, np.ndarray]:
    """Predict ``batch`` under its instruction and its mirror; keep valid frames only.

    Returns arrays over the ``M`` valid frames: ``pred``, ``pred_mirror``, ``target``,
    ``target_mirror`` ``(M, N, D)`` in m/s; ``mask``, ``mask_mirror`` ``(M, N)``;
    ``context``, ``context_mirror`` ``(M, K, H)``; ``phase`` ``(M,)`` the robot's phase relative to
    the obstacle cluster (:data:`mobile_vla.vocab.scene.PHASES` index, -1 without scene geometry);
    ``side`` ``(M,)`` the instruction's side (``left``/``right``/``none``); ``source`` ``(M,)`` the
    data source's name when the batch carries one; with ``flipped``, ``pred_flipped_mirror``
    ``(M, N, D)``: on the horizontally flipped frames under the mirrored instruction.
    """
    from mobile_vla.model.vla import batch_tokens

    model.eval()
    device = next(model.parameters()).device
    pix = batch[keys.PIXEL_VALUES].to(device)
    frame_mask = batch[keys.FRAME_MASK].to(device)
    tokens = {k: v.to(device) for k, v in batch_tokens(batch).items()}
    cf_tokens = {k: v.to(device) for k, v in batch_tokens(batch, CF_PREFIX).items()}
    instructions = list(batch[keys.INSTRUCTION])
    # Where the robot is (step, odometry): the same for the frames under any instruction.
    state = {name: batch[key].to(device) for name, key in (("steps", keys.STEP_INDEX), ("odometry", keys.ODOMETRY))
             if key in batch}
    latents = model.backbone.image_latents(pix.flatten(0, 1))  # one vision pass for both instructions
    out = model(pix, tokens, frame_mask, instructions, latents=latents, **state)
    out_cf = model(pix, cf_tokens, frame_mask, [mirror_instruction(s) for s in instructions], latents=latents,
                   **state)
    extra = {}
    if flipped:  # the mirrored world: flipped frames, mirrored instruction, mirrored odometry
        mirrored = dict(state)
        if "odometry" in state:
            mirrored["odometry"] = state["odometry"] * state["odometry"].new_tensor([1.0, -1.0])
        out_flip = model(pix.flip(-1), cf_tokens, frame_mask, [mirror_instruction(s) for s in instructions],
                         **mirrored)
        extra["pred_flipped_mirror"] = out_flip.actions
    return paired_arrays(processor, batch, out, out_cf, extra)


def paired_arrays(processor, batch: dict, out, out_cf, extra_actions: dict | None = None) -> dict[str, np.ndarray]:
    """:func:`paired_outputs`'s arrays from outputs already computed: ``out`` and ``out_cf``
    (:class:`~mobile_vla.model.vla.VLAOutput`) under the batch's instruction and its mirror
    (e.g. by the validation losses); ``extra_actions``: more normalised actions ``(B, W, N, D)``
    to return in m/s, by name."""
    valid = batch[keys.FRAME_MASK].bool()

    def phys(x: torch.Tensor) -> np.ndarray:
        return processor.unnormalize_actions(x.detach().float().cpu())[valid].numpy()

    names = {i: side for side, i in DIRECTION_IDS.items()}
    side = np.array([names.get(int(d), "none") for d in batch[keys.DIRECTION]])  # (B,)
    per_frame = lambda x: np.repeat(np.asarray(x)[:, None], valid.shape[1], axis=1)[valid.numpy()]  # noqa: E731
    extra = {"side": per_frame(side), **{k: phys(v) for k, v in (extra_actions or {}).items()}}
    if keys.SOURCE in batch:
        extra["source"] = per_frame(batch[keys.SOURCE])
    return {
        **extra,
        "pred": phys(out.actions),
        "pred_mirror": phys(out_cf.actions),
        "target": phys(batch[keys.ACTIONS]),
        "target_mirror": phys(batch[keys.CF_ACTIONS]),
        "mask": batch[keys.ACTION_MASK][valid].bool().numpy(),
        "mask_mirror": (batch[keys.ACTION_MASK] & batch[keys.CF_ACTION_MASK])[valid].bool().numpy(),
        "context": out.context.detach().float().cpu()[valid].numpy(),
        "context_mirror": out_cf.context.detach().float().cpu()[valid].numpy(),
        "phase": _phase(batch)[valid.numpy()],
    }


def _phase(batch: dict) -> np.ndarray:
    """``(B, W)`` phase index per frame from the batch's scene geometry (-1 where it has none)."""
    return scene_phase(batch[keys.SCENE].float().numpy(), batch[keys.SCENE_MASK].numpy())


def collect_paired(model, processor, batches: Iterable[dict], progress: bool = False,
                   flipped: bool = False) -> dict[str, np.ndarray]:
    """:func:`paired_outputs` over many batches, concatenated."""
    parts: dict[str, list[np.ndarray]] = {}
    for batch in tqdm(batches, desc="predict", unit="batch", disable=not progress):
        for key, value in paired_outputs(model, processor, batch, flipped).items():
            parts.setdefault(key, []).append(value)
    if not parts:
        raise ValueError("no windows to evaluate")
    return {k: np.concatenate(v) for k, v in parts.items()}


def grounding_from_paired(p: dict[str, np.ndarray]) -> dict[str, float]:
    return grounding_metrics(p["context"], p["context_mirror"], p["pred"], p["pred_mirror"],
                             p["target"], p["target_mirror"], p["mask_mirror"], p.get("phase"))


def has_paired_labels(p: dict[str, np.ndarray]) -> bool:
    return bool(p["mask_mirror"].any())


def select_frames(p: dict[str, np.ndarray], rows: np.ndarray) -> dict[str, np.ndarray]:
    """The outputs of :func:`paired_outputs` restricted to frames ``rows`` ``(M,)`` bool."""
    return {k: v[rows] for k, v in p.items()}


def source_metrics(p: dict[str, np.ndarray]) -> dict[str, float]:
    """Velocity errors (m/s) and the instruction figures of one data source's frames.

    ``rmse_velocity``, ``mae_velocity`` over valid chunk steps; with paired labels the grounding
    figures (:func:`grounding_metrics`), without them ``context_cosine`` and ``action_difference``.
    """
    err = (p["pred"] - p["target"])[p["mask"]]
    out = {"rmse_velocity": float(np.sqrt((err**2).mean())), "mae_velocity": float(np.abs(err).mean())}
    if has_paired_labels(p):
        out.update(grounding_from_paired(p))
        out.pop("paired_steps")
    else:
        out.update(instruction_metrics(p["context"], p["context_mirror"], p["pred"], p["pred_mirror"], p["mask"]))
    return out


def diagnose_figures(p: dict[str, np.ndarray]) -> dict[str, Any]:
    """The diagnostic on any episodes: the grounding figures where the data carries paired labels,
    the ones that need none otherwise; ``skipped`` names what was left out and why.

    Keys: ``context_cosine``, ``action_difference`` (with paired labels: over the paired steps, as
    :func:`grounding_metrics`; without: over every valid step), ``lateral_velocity_by_side``
    ``{"left", "right"}``, ``demo_lateral_velocity_by_side`` (the recorded demonstrations),
    ``mirror_consistency_error`` (needs ``pred_flipped_mirror``), ``paired_labels`` (bool),
    ``skipped`` ``{metric: reason}``; with paired labels also :func:`grounding_metrics`' other keys.
    """
    paired = has_paired_labels(p)
    if paired:
        out: dict[str, Any] = grounding_from_paired(p)
    else:
        out = instruction_metrics(p["context"], p["context_mirror"], p["pred"], p["pred_mirror"], p["mask"])
        out["steps"] = int(p["mask"].sum())
    out["lateral_velocity_by_side"] = lateral_velocity_by_side(p["pred"], p["pred_mirror"], p["side"], p["mask"])
    demo = {side: float(p["target"][p["side"] == side][..., LATERAL][p["mask"][p["side"] == side]].mean())
            if (p["mask"][p["side"] == side]).any() else float("nan") for side in DIRECTION_IDS}
    out["demo_lateral_velocity_by_side"] = demo
    if "pred_flipped_mirror" in p:
        out["mirror_consistency_error"] = mirror_consistency_error(p["pred"], p["pred_flipped_mirror"], p["mask"])
    out["paired_labels"] = paired
    out["skipped"] = {} if paired else {
        name: "the episodes carry no paired labels (counterfactual_actions)" for name in NEEDS_PAIRED_LABELS}
    return out


def action_metrics(p: dict[str, np.ndarray]) -> dict[str, Any]:
    """MAE and true RMSE per action dimension (whole chunk and first action), direction and
    9-class agreement of the first action."""
    require_finite(p["mask"], pred=p["pred"], target=p["target"])
    if not np.asarray(p["mask"], bool)[:, 0].any():
        raise ValueError("no valid first actions to score")
    out: dict[str, Any] = {}
    err = p["pred"] - p["target"]  # (M, N, D)
    for scope, e, m in (("chunk", err, p["mask"]), ("first", err[:, :1], p["mask"][:, :1])):
        v = e[m]  # (V, D)
        out[scope] = {
            "mae": {n: float(np.abs(v[:, i]).mean()) for i, n in enumerate(POLICY_ACTION_NAMES)},
            "rmse": {n: float(np.sqrt((v[:, i] ** 2).mean())) for i, n in enumerate(POLICY_ACTION_NAMES)},
            "rmse_overall": float(np.sqrt((v**2).mean())),
        }
    first = p["mask"][:, 0]
    pred0, target0 = p["pred"][first, 0], p["target"][first, 0]
    out["class_agreement"] = float((action_class(pred0) == action_class(target0)).mean())
    lateral = np.abs(target0[:, LATERAL]) > _DIRECTION_THRESHOLD
    out["direction_agreement"] = (
        float((np.sign(pred0[lateral, LATERAL]) == np.sign(target0[lateral, LATERAL])).mean())
        if lateral.any() else float("nan")
    )
    out["frames"] = int(len(p["pred"]))
    return out


def evaluate_offline(policy, episodes, batch_size: int = 8, progress: bool = True) -> dict[str, Any]:
    """Offline metrics of ``policy`` (a :class:`mobile_vla.Policy`) on episode files.

    Returns ``{"actions": action_metrics, "grounding": grounding figures or {} when the data
    carries no counterfactual labels, "diagnose": diagnose_figures (any data), "windows": int}``.
    """
    from torch.utils.data import DataLoader

    from mobile_vla.data.dataset import MobileVLAH5Dataset

    dataset = MobileVLAH5Dataset(episodes, policy.processor, window_size=policy.window_size,
                                 fwd_pred_next_n=policy.chunk_size, window_stride=policy.window_size)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=dataset.collater)
    paired = collect_paired(policy.model, policy.processor, loader, progress, flipped=True)
    result: dict[str, Any] = {"windows": len(dataset), "actions": action_metrics(paired)}
    result["grounding"] = grounding_from_paired(paired) if has_paired_labels(paired) else {}
    result["diagnose"] = diagnose_figures(paired)
    result["_paired"] = paired  # for figures; dropped before printing
    return result
