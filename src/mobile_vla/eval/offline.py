"""Offline (teacher-forced) evaluation on recorded episodes, in physical units.

Every window is predicted twice — under its instruction and under the mirrored one — so the
same pass yields the action errors and the grounding diagnostic. Windows are taken with
stride ``W`` so each frame is scored once.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from mobile_vla.eval.grounding import LATERAL, grounding_metrics, require_finite
from mobile_vla.vocab import batch as keys
from mobile_vla.vocab.actions import POLICY_ACTION_NAMES, action_class
from mobile_vla.vocab.batch import CF_PREFIX
from mobile_vla.vocab.instructions import mirror_instruction

_DIRECTION_THRESHOLD = 0.3  # m/s: a lateral label this large has a definite direction


@torch.no_grad()
def paired_outputs(model, processor, batch: dict) -> dict[str, np.ndarray]:
    """Predict ``batch`` under its instruction and its mirror; keep valid frames only.

    Returns arrays over the ``M`` valid frames: ``pred``, ``pred_mirror``, ``target``,
    ``target_mirror`` ``(M, N, D)`` in m/s; ``mask``, ``mask_mirror`` ``(M, N)``;
    ``context``, ``context_mirror`` ``(M, K, H)``.
    """
    from mobile_vla.model.vla import batch_tokens

    model.eval()
    device = next(model.parameters()).device
    pix = batch[keys.PIXEL_VALUES].to(device)
    frame_mask = batch[keys.FRAME_MASK].to(device)
    tokens = {k: v.to(device) for k, v in batch_tokens(batch).items()}
    cf_tokens = {k: v.to(device) for k, v in batch_tokens(batch, CF_PREFIX).items()}
    instructions = list(batch[keys.INSTRUCTION])
    latents = model.backbone.image_latents(pix.flatten(0, 1))  # one vision pass for both instructions
    out = model(pix, tokens, frame_mask, instructions, latents=latents)
    out_cf = model(pix, cf_tokens, frame_mask, [mirror_instruction(s) for s in instructions], latents=latents)
    valid = batch[keys.FRAME_MASK].bool()

    def phys(x: torch.Tensor) -> np.ndarray:
        return processor.unnormalize_actions(x.float().cpu())[valid].numpy()

    return {
        "pred": phys(out.actions),
        "pred_mirror": phys(out_cf.actions),
        "target": phys(batch[keys.ACTIONS]),
        "target_mirror": phys(batch[keys.CF_ACTIONS]),
        "mask": batch[keys.ACTION_MASK][valid].bool().numpy(),
        "mask_mirror": (batch[keys.ACTION_MASK] & batch[keys.CF_ACTION_MASK])[valid].bool().numpy(),
        "context": out.context.float().cpu()[valid].numpy(),
        "context_mirror": out_cf.context.float().cpu()[valid].numpy(),
    }


def collect_paired(model, processor, batches: Iterable[dict], progress: bool = False) -> dict[str, np.ndarray]:
    """:func:`paired_outputs` over many batches, concatenated."""
    parts: dict[str, list[np.ndarray]] = {}
    for batch in tqdm(batches, desc="predict", unit="batch", disable=not progress):
        for key, value in paired_outputs(model, processor, batch).items():
            parts.setdefault(key, []).append(value)
    if not parts:
        raise ValueError("no windows to evaluate")
    return {k: np.concatenate(v) for k, v in parts.items()}


def grounding_from_paired(p: dict[str, np.ndarray]) -> dict[str, float]:
    return grounding_metrics(p["context"], p["context_mirror"], p["pred"], p["pred_mirror"],
                             p["target"], p["target_mirror"], p["mask_mirror"])


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
    carries no counterfactual labels, "windows": int}``.
    """
    from torch.utils.data import DataLoader

    from mobile_vla.data.dataset import MobileVLAH5Dataset

    dataset = MobileVLAH5Dataset(episodes, policy.processor, window_size=policy.window_size,
                                 fwd_pred_next_n=policy.chunk_size, window_stride=policy.window_size)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=dataset.collater)
    paired = collect_paired(policy.model, policy.processor, loader, progress)
    result: dict[str, Any] = {"windows": len(dataset), "actions": action_metrics(paired)}
    result["grounding"] = grounding_from_paired(paired) if paired["mask_mirror"].any() else {}
    result["_paired"] = paired  # for figures; dropped before printing
    return result
