"""MobileVLA: Kosmos-2 backbone → per-frame action-token features → grounded window head.

Shapes: B batch, W window, N chunk, D action dims, K action tokens, H LM width, S image size,
L sequence length, E instruction-embedding width, F fused feature width.

Per-frame features ``(B, K', H)`` are the K action-token states, plus (when
``grounding.pool_image_latents``) one extra slot holding the mean image latent, a direct path
from the image to the head. They depend only on one frame and the instruction, so a streaming
session computes each frame once and re-runs only the head over its history.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mobile_vla.errors import MobileVLAError
from mobile_vla.model.backbone import Kosmos2Backbone, Tokens
from mobile_vla.model.config import ModelConfig
from mobile_vla.model.grounding import SENTENCE_DIM, FiLM, SentenceEncoder, contrastive_loss
from mobile_vla.model.heads import ACTION_HEADS, masked_huber
from mobile_vla.vocab import batch as keys
from mobile_vla.vocab.batch import CF_PREFIX, DIRECTION_NONE, TOKEN_KEYS
from mobile_vla.vocab.instructions import mirror_instruction
from mobile_vla.vocab.scene import PHASES, SCENE_LABELS, scene_phase


@dataclasses.dataclass
class VLAOutput:
    actions: torch.Tensor  # (B, W, N, D) normalised, Tanh range
    context: torch.Tensor  # (B, W, K, H) action-token states, before grounding fusion
    fused: torch.Tensor  # (B, W, F) what the head's LSTM consumes
    head_output: torch.Tensor | None = None  # the action head's raw output, e.g. class logits (B, W, N, 9)
    direction_logits: torch.Tensor | None = None  # (B, W, 3)
    # compute_losses: the same frames under the mirrored instruction, when its losses needed them
    mirror: VLAOutput | None = None


def batch_tokens(batch: dict, prefix: str = "") -> Tokens:
    """The four token tensors of ``batch`` (``prefix=CF_PREFIX`` for the mirrored instruction)."""
    return {k: batch[prefix + k] for k in TOKEN_KEYS}


# ``head.step_input``: a frame's step index is fed as ``step / STEP_SCALE`` (the simulator's episode limit).
STEP_SCALE = 40.0
# ``head.odometry_input``: the displacement (m) is fed divided by ODOMETRY_SCALE (the cup lies 3.5–6 m ahead).
ODOMETRY_SCALE = 4.0


class RunningFeatureNorm(nn.BatchNorm1d):
    """Standardise ``(N, F)`` features with running statistics in training as at inference.

    Each training batch updates the running mean and variance (the first sets them) and is then
    standardised with them, so the head's input scale does not depend on how many episodes a
    batch holds. Same parameters and buffers as ``BatchNorm1d``: checkpoints stay interchangeable.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training:
            with torch.no_grad():
                mean, var = x.mean(0), x.var(0, unbiased=False)
                if int(self.num_batches_tracked) == 0:
                    self.running_mean.copy_(mean)
                    self.running_var.copy_(var)
                else:
                    self.running_mean.lerp_(mean, self.momentum)
                    self.running_var.lerp_(var, self.momentum)
                self.num_batches_tracked += 1
        # Clones: the head may run twice a step (an instruction and its mirror) before backward.
        return F.batch_norm(x, self.running_mean.clone(), self.running_var.clone(), self.weight, self.bias,
                            False, 0.0, self.eps)


class MobileVLA(nn.Module):
    """The VLA policy network (see module docstring).

    Args:
        config: model settings.
        vocab_size: the processor's vocabulary size.
        action_dim: D.
        kosmos2_config: a saved Kosmos-2 architecture to rebuild without downloading (checkpoints).
    """

    def __init__(self, config: ModelConfig, vocab_size: int, action_dim: int = 2,
                 kosmos2_config: dict | None = None):
        super().__init__()
        config.validate()
        self.config = config
        h, g = config.head, config.grounding
        self.backbone = Kosmos2Backbone(config.backbone, vocab_size, h.num_action_tokens, config.lora,
                                        config.freeze, architecture=kosmos2_config)
        H, K = self.backbone.hidden_size, h.num_action_tokens
        self.num_slots = K + (1 if g.pool_image_latents else 0)
        context_dim, fused_dim = K * H, self.num_slots * H
        head_dim = fused_dim + (len(SCENE_LABELS) if g.scene_to_head else 0) + (1 if h.step_input else 0)
        head_dim += len(h.odometry_axes) if h.odometry_input else 0
        self.sentence = SentenceEncoder() if g.instruction_encoder == "sentence" else None
        embed_dim = SENTENCE_DIM if self.sentence is not None else H
        self.needs_instruction = g.film or g.contrastive
        # Backbone states share a large common component and differ little between frames; an
        # unnormalised head learns from them very slowly (the "mean action" plateau).
        norm = RunningFeatureNorm if h.feature_norm_stats == "running" else nn.BatchNorm1d
        self.feature_norm = norm(fused_dim) if h.feature_norm else None
        self.film_context = FiLM(embed_dim, context_dim) if g.film else None
        self.film_input = FiLM(embed_dim, fused_dim) if g.film else None
        self.direction_head = nn.Linear(head_dim, 3) if g.direction_aux else None
        # Vision supervision straight from simulator geometry: the image alone says where the cup
        # and the obstacles are, which is what lets training leave the vision-blind plateau.
        self.scene_head = nn.Linear(H, len(SCENE_LABELS)) if g.scene_aux else None
        if g.contrastive:
            self.contrast_features = nn.Linear(head_dim, g.contrastive_dim)
            self.contrast_instruction = nn.Linear(embed_dim, g.contrastive_dim)
        self.action_head = ACTION_HEADS.get(h.type).from_config(head_dim, h, action_dim)

    # ------------------------------------------------------------------ per-frame features
    def _frame_features(self, tokens: Tokens, latents: torch.Tensor) -> torch.Tensor:
        states = self.backbone.action_states(tokens, latents)  # (B, K, H)
        if self.config.grounding.pool_image_latents:
            states = torch.cat([states, latents.mean(1, keepdim=True).to(states.dtype)], 1)
        return states

    def encode_frames(self, pixel_values: torch.Tensor, tokens: Tokens) -> torch.Tensor:
        """``(B, 3, S, S)`` frames, ``(B, L)`` tokens → per-frame features ``(B, K', H)``."""
        return self._frame_features(tokens, self.backbone.image_latents(pixel_values))

    def encode_instruction(self, tokens: Tokens, instructions: list[str] | None = None) -> torch.Tensor | None:
        """Instruction embedding ``(B, E)``, or ``None`` when no grounding module uses it."""
        if not self.needs_instruction:
            return None
        if self.sentence is not None:
            if instructions is None:
                raise MobileVLAError("the sentence instruction encoder needs the instruction strings")
            return self.sentence(list(instructions), tokens["input_ids"].device)
        if self.config.grounding.instruction_encoder == "embeddings":
            words = self.backbone.instruction_mask(tokens).unsqueeze(-1).float()
            emb = self.backbone.token_embeddings(tokens["input_ids"])
            return (emb * words).sum(1) / words.sum(1).clamp_min(1.0)
        return self.backbone.instruction_text_states(tokens)

    # ------------------------------------------------------------------ head
    def head(self, features: torch.Tensor, instr: torch.Tensor | None, frame_mask: torch.Tensor | None = None,
             steps: torch.Tensor | None = None, odometry: torch.Tensor | None = None) -> VLAOutput:
        """Per-frame features ``(B, W, K', H)`` + instruction embedding ``(B, E)`` → :class:`VLAOutput`.

        ``steps`` ``(B, W)``: each frame's control step since the episode began; required when
        ``head.step_input`` is on, ignored otherwise. ``odometry`` ``(B, W, 2)``: each frame's
        displacement (m) since the episode began; required when ``head.odometry_input`` is on.
        """
        if frame_mask is not None:
            features = features * frame_mask[..., None, None].to(features.dtype)
        K = self.config.head.num_action_tokens
        context = features[:, :, :K]
        flat = self._normalize(features.flatten(2), frame_mask)
        ctx, rest = flat[..., : context[0, 0].numel()], flat[..., context[0, 0].numel():]
        if self.film_context is not None:
            ctx = self.film_context(ctx, instr)
        fused = torch.cat([ctx, rest], -1)
        if self.film_input is not None:
            fused = self.film_input(fused, instr)
        if self.config.grounding.scene_to_head:
            # The geometry estimate (cup, obstacles) from the pooled image slot: a low-dimensional
            # description of the scene from which the expert's route is a simple function.
            fused = torch.cat([fused, self.scene_head(features[:, :, -1])], -1)
        if self.config.head.step_input:
            if steps is None:
                raise MobileVLAError("model.head.step_input is on: the head needs each frame's step index")
            fused = torch.cat([fused, (steps.to(fused.dtype) / STEP_SCALE).unsqueeze(-1)], -1)
        if self.config.head.odometry_input:
            if odometry is None:
                raise MobileVLAError("model.head.odometry_input is on: the head needs each frame's odometry")
            odometry = odometry[..., : len(self.config.head.odometry_axes)]  # "x": forward only
            fused = torch.cat([fused, odometry.to(fused.dtype) / ODOMETRY_SCALE], -1)
        direction_logits = self.direction_head(fused) if self.direction_head is not None else None
        raw = self.action_head(fused)
        return VLAOutput(self.action_head.actions(raw), context, fused, raw, direction_logits)

    def _normalize(self, flat: torch.Tensor, frame_mask: torch.Tensor | None) -> torch.Tensor:
        """Batch-standardise ``(B, W, F)`` features over valid frames (padding never enters the stats)."""
        if self.feature_norm is None:
            return flat
        if frame_mask is None or not self.training:
            return self.feature_norm(flat.reshape(-1, flat.shape[-1])).view_as(flat)
        valid = frame_mask.bool()
        out = torch.zeros_like(flat)
        out[valid] = self.feature_norm(flat[valid])
        return out

    def forward(self, pixel_values: torch.Tensor, tokens: Tokens, frame_mask: torch.Tensor | None = None,
                instructions: list[str] | None = None, latents: torch.Tensor | None = None,
                steps: torch.Tensor | None = None, odometry: torch.Tensor | None = None) -> VLAOutput:
        """``pixel_values`` ``(B, W, 3, S, S)``, ``tokens`` ``(B, L)`` each, ``steps`` ``(B, W)``,
        ``odometry`` ``(B, W, 2)`` → :class:`VLAOutput`.

        ``latents`` ``(B*W, Q, H)``: the frames' image latents when already computed (e.g. to
        predict the same frames under two instructions with one vision pass).
        """
        B, W = pixel_values.shape[:2]
        if latents is None:
            latents = self.backbone.image_latents(pixel_values.flatten(0, 1))
        feats = self._frame_features(_repeat_rows(tokens, W), latents)
        return self.head(feats.view(B, W, *feats.shape[1:]), self.encode_instruction(tokens, instructions),
                         frame_mask, steps, odometry)

    # ------------------------------------------------------------------ losses
    def compute_losses(self, batch: dict) -> tuple[dict[str, torch.Tensor], VLAOutput]:
        """Named losses (``loss`` is the weighted total) and the output under the batch's instruction
        (its ``mirror``: under the mirrored instruction, when the counterfactual or contrastive loss is on)."""
        g = self.config.grounding
        pix = batch[keys.PIXEL_VALUES]
        B, W = pix.shape[:2]
        frame_mask = batch.get(keys.FRAME_MASK)
        tokens = batch_tokens(batch)
        paired = g.counterfactual or g.contrastive
        token_sets = [tokens, batch_tokens(batch, CF_PREFIX)] if paired else [tokens]
        feats, latents = self._window_features(pix, token_sets)  # (1 or 2, B, W, K', H), (B, W, Q, H)
        image_summary = latents.mean(2).flatten(0, 1)  # (B*W, H)
        instructions = batch.get(keys.INSTRUCTION)
        instr = self.encode_instruction(tokens, instructions)
        state = batch.get(keys.STEP_INDEX), batch.get(keys.ODOMETRY)  # where the robot is: one per window
        out = self.head(feats[0], instr, frame_mask, *state)

        losses: dict[str, torch.Tensor] = {}
        head_losses = self.action_head.loss(out.head_output, batch)
        losses.update({f"{k}_act": v for k, v in head_losses.items()})  # the head's suffix
        total = sum(losses.values())
        valid = frame_mask.bool() if frame_mask is not None else torch.ones(B, W, dtype=torch.bool, device=pix.device)
        if out.direction_logits is not None:
            target = batch[keys.DIRECTION].long().view(B, 1).expand(B, W)
            losses["loss_direction_aux"] = F.cross_entropy(out.direction_logits[valid], target[valid])
            total = total + g.direction_weight * losses["loss_direction_aux"]
        if self.scene_head is not None and keys.SCENE in batch:
            pred_scene = self.scene_head(image_summary).view(B, W, -1)
            seen = (batch[keys.SCENE_MASK].bool() & valid).to(pred_scene.dtype)  # real robot frames have no label
            per_frame = (pred_scene - batch[keys.SCENE].to(pred_scene.dtype)).pow(2).mean(-1)
            # A masked mean keeps the head in the graph when no frame is labelled (DDP needs every parameter).
            losses["loss_scene_aux"] = (per_frame * seen).sum() / seen.sum().clamp_min(1.0)
            total = total + g.scene_aux_weight * losses["loss_scene_aux"]
        if paired:
            cf_instructions = [mirror_instruction(s) for s in instructions] if instructions is not None else None
            instr_cf = self.encode_instruction(batch_tokens(batch, CF_PREFIX), cf_instructions)
            out_cf = self.head(feats[1], instr_cf, frame_mask, *state)
            if g.counterfactual:
                losses["loss_counterfactual"] = masked_huber(
                    out_cf.actions, batch[keys.CF_ACTIONS], self._counterfactual_mask(batch), self.config.head.huber_delta
                )
                total = total + g.counterfactual_weight * losses["loss_counterfactual"]
            if g.contrastive:
                sided = valid & (batch[keys.DIRECTION].view(B, 1) != DIRECTION_NONE)
                losses["loss_contrastive"] = contrastive_loss(
                    self.contrast_features(out.fused), self.contrast_features(out_cf.fused),
                    self.contrast_instruction(instr), self.contrast_instruction(instr_cf), sided,
                    g.contrastive_temperature,
                )
                total = total + g.contrastive_weight * losses["loss_contrastive"]
        losses["loss"] = total
        if paired:
            out.mirror = out_cf
        return losses, out

    def _counterfactual_mask(self, batch: dict) -> torch.Tensor:
        """``(B, W, N)`` chunk steps the counterfactual labels train: those of frames in one of
        ``grounding.counterfactual_phases`` (frames without scene geometry always count)."""
        mask = batch[keys.CF_ACTION_MASK]
        phases = self.config.grounding.counterfactual_phases
        if phases is None or keys.SCENE not in batch:
            return mask
        phase = scene_phase(batch[keys.SCENE].detach(), batch[keys.SCENE_MASK])  # (B, W), on the batch's device
        keep = (phase < 0) | torch.isin(phase, torch.tensor([PHASES.index(p) for p in phases], device=phase.device))
        return mask & keep[..., None]

    def _window_features(self, pix: torch.Tensor, token_sets: list[Tokens]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, W, 3, S, S)`` frames under P instructions ``(B, L)`` → per-frame features
        ``(P, B, W, K', H)`` and image latents ``(B, W, Q, H)`` (one vision pass shared by the P).

        With ``head.grad_every_frame`` off, only window position ``j`` (drawn per batch, so every
        position of an episode trains the backbone in turn) is encoded with gradients.
        """
        B, W = pix.shape[:2]

        def encode(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            T = frames.shape[1]
            latents = self.backbone.image_latents(frames.flatten(0, 1))  # (B*T, Q, H)
            rows = [_repeat_rows(t, T) for t in token_sets]
            rows = {k: torch.cat([r[k] for r in rows]) for k in rows[0]}
            feats = self._frame_features(rows, latents.repeat(len(token_sets), 1, 1))
            return feats.view(len(token_sets), B, T, *feats.shape[1:]), latents.view(B, T, *latents.shape[1:])

        if self.config.head.grad_every_frame or W == 1:
            return encode(pix)
        j = int(torch.randint(W, ()))
        with torch.no_grad():
            rest_f, rest_l = encode(torch.cat([pix[:, :j], pix[:, j + 1:]], 1))
        now_f, now_l = encode(pix[:, j : j + 1])
        return (torch.cat([rest_f[:, :, :j], now_f, rest_f[:, :, j:]], 2),
                torch.cat([rest_l[:, :j], now_l, rest_l[:, j:]], 1))

    def loss(self, batch: dict) -> dict[str, torch.Tensor]:
        return self.compute_losses(batch)[0]

    def set_class_centroids(self, normalized: np.ndarray) -> None:
        """Discrete heads: the normalised action ``(9, D)`` of each class."""
        self.action_head.set_action_centroids(normalized)


def _repeat_rows(tokens: Tokens, times: int) -> Tokens:
    """``(B, L)`` → ``(B*times, L)``, each row repeated for the frames of its window."""
    return {k: v.repeat_interleave(times, 0) for k, v in tokens.items()}
