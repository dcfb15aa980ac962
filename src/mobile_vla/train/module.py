"""The LightningModule: named losses, true velocity errors in m/s, AdamW with warm-up + cosine."""

from __future__ import annotations

import math
import random

import lightning as L
import numpy as np
import torch

from mobile_vla.data.sources import parse_sources
from mobile_vla.eval.offline import (
    grounding_from_paired,
    paired_arrays,
    paired_outputs,
    select_frames,
    source_metrics,
)
from mobile_vla.model.vla import MobileVLA, VLAOutput
from mobile_vla.processing.processor import Processor
from mobile_vla.train.config import OptimConfig, TrainConfig
from mobile_vla.vocab import batch as keys


def velocity_errors(out: VLAOutput, batch: dict, processor: Processor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(sum of squared errors, sum of absolute errors, count)`` in physical units over valid steps.

    Predictions and targets ``(B, W, N, D)`` are unnormalised with the processor; the chunk mask
    ``(B, W, N)`` selects the steps that exist.
    """
    pred = processor.unnormalize_actions(out.actions.detach().float())
    target = processor.unnormalize_actions(batch[keys.ACTIONS].float())
    mask = batch[keys.ACTION_MASK].bool().unsqueeze(-1).expand_as(pred)
    diff = (pred - target)[mask]
    return diff.pow(2).sum(), diff.abs().sum(), torch.tensor(float(diff.numel()), device=diff.device)


def warmup_cosine(step: int, warmup: int, total: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up to 1 over ``warmup`` steps, then cosine down to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def parameter_groups(model: MobileVLA, optim: OptimConfig) -> list[dict]:
    """Trainable parameters in two optimiser groups: the head and grounding modules at ``lr``, the
    Kosmos-2 backbone at ``backbone_lr`` (a from-scratch vision tower learns the scene faster at a
    lower rate than the head tolerates; see docs/results.md)."""
    in_backbone = {id(p) for p in model.backbone.parameters()}
    groups = [
        {"params": [p for p in model.parameters() if p.requires_grad and id(p) not in in_backbone], "lr": optim.lr},
        {"params": [p for p in model.backbone.parameters() if p.requires_grad],
         "lr": optim.lr if optim.backbone_lr is None else optim.backbone_lr},
    ]
    return [g for g in groups if g["params"]]


class MobileVLAModule(L.LightningModule):
    def __init__(self, config: TrainConfig, processor: Processor, model: MobileVLA, schedule_steps: int | None = None):
        """``schedule_steps``: the span of the learning-rate schedule (None: the trainer's total)."""
        super().__init__()
        self.config = config
        self.processor = processor
        self.model = model
        self.schedule_steps = schedule_steps
        self._val_sums = torch.zeros(3)
        # With several data sources, validation also reports every metric per source.
        self._per_source = len(parse_sources(config.data.episodes)) > 1

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Lightning restores weights, optimiser, schedule and loop counters but not the global
        # random generators (dropout, augmentation); a resumed run must draw what the original would.
        # Plain tensors and numbers only: the state is read back with weights_only=True.
        name, keys, pos, has_gauss, gauss = np.random.get_state()
        checkpoint["rng_states"] = {"torch": torch.get_rng_state(),
                                    "numpy": [name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss],
                                    "python": random.getstate()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        states = checkpoint.get("rng_states")
        if states:
            torch.set_rng_state(states["torch"])
            name, keys, pos, has_gauss, gauss = states["numpy"]
            np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
            random.setstate(states["python"])

    def _log_losses(self, prefix: str, losses: dict[str, torch.Tensor], batch_size: int, on_step: bool) -> None:
        for name, value in losses.items():
            self.log(f"{prefix}/{name}", value.detach(), on_step=on_step, on_epoch=not on_step,
                     prog_bar=name == "loss", batch_size=batch_size, sync_dist=not on_step)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        losses, out = self.model.compute_losses(batch)
        bs = batch[keys.PIXEL_VALUES].shape[0]
        self._log_losses("train", losses, bs, on_step=True)
        sq, ab, n = velocity_errors(out, batch, self.processor)
        self.log("train/rmse_velocity", (sq / n.clamp_min(1)).sqrt(), on_step=True, batch_size=bs)
        self.log("train/mae_velocity", ab / n.clamp_min(1), on_step=True, batch_size=bs)
        return losses["loss"]

    def on_validation_epoch_start(self) -> None:
        self._val_sums = torch.zeros(3, device=self.device)
        self._val_pairs: list[dict] = []

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        losses, out = self.model.compute_losses(batch)
        self._log_losses("val", losses, batch[keys.PIXEL_VALUES].shape[0], on_step=False)
        self._val_sums += torch.stack(velocity_errors(out, batch, self.processor))
        # The grounding diagnostic needs counterfactual labels; per-source figures need every batch.
        if self._per_source or bool(batch[keys.CF_ACTION_MASK].any()):
            # The losses already predicted the mirrored instruction when a paired loss is on.
            self._val_pairs.append(paired_outputs(self.model, self.processor, batch) if out.mirror is None
                                   else paired_arrays(self.processor, batch, out, out.mirror))

    def on_validation_epoch_end(self) -> None:
        # True RMSE over the whole validation set (summed over processes), not a mean of batch RMSEs.
        sq, ab, n = self.trainer.strategy.reduce(self._val_sums, reduce_op="sum")
        if n > 0:
            self.log("val/rmse_velocity", (sq / n).sqrt(), sync_dist=False, rank_zero_only=True)
            self.log("val/mae_velocity", ab / n, sync_dist=False, rank_zero_only=True)
        if self._val_pairs:  # this process's share of the validation set
            pairs = {k: np.concatenate([p[k] for p in self._val_pairs]) for k in self._val_pairs[0]}
            if pairs["mask_mirror"].any():
                for key, value in _scalars(grounding_from_paired(pairs)).items():
                    self.log(f"val/{key}", value, rank_zero_only=True)
            if self._per_source and "source" in pairs:
                for source in sorted(set(pairs["source"].tolist())):
                    rows = pairs["source"] == source
                    if not pairs["mask"][rows].any():
                        continue
                    for key, value in _scalars(source_metrics(select_frames(pairs, rows))).items():
                        self.log(f"val/{source}/{key}", value, rank_zero_only=True)

    def configure_optimizers(self):
        o = self.config.optim
        optimizer = torch.optim.AdamW(parameter_groups(self.model, o), weight_decay=o.weight_decay,
                                      betas=tuple(o.betas))
        total = int(self.schedule_steps or self.trainer.estimated_stepping_batches)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda step: warmup_cosine(step, o.warmup_steps, total, o.min_lr_ratio)
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


def _scalars(figures: dict) -> dict[str, float]:
    """The finite numbers among grounding figures, ready to log: per-phase side agreement becomes
    ``side_agreement_<phase>``; step counts are left out."""
    out = {}
    for key, value in figures.items():
        if key == "side_agreement_by_phase":
            out.update({f"side_agreement_{phase}": v for phase, v in value.items() if v is not None})
        elif not key.endswith("steps") and not key.endswith("steps_by_phase") and isinstance(value, (int, float)):
            out[key] = value
    return {k: float(v) for k, v in out.items() if np.isfinite(v)}
