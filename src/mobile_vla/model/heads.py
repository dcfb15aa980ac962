"""Action heads: the window of fused per-frame features ``(B, W, F)`` → a chunk of N actions per frame.

A head is registered in :data:`ACTION_HEADS` under the name ``model.head.type`` selects, and
follows :class:`ActionHead`'s contract: ``forward`` gives its raw output, ``actions`` turns that
into normalised actions ``(B, W, N, D)`` (what inference executes), ``loss`` reads its targets
from the batch. The built-in heads share the trunk (:class:`_WindowTrunk`, an LSTM over the
window, then an MLP) and differ only in the output layer and loss:

- ``lstm`` (:class:`MobileVLALSTMDecoder`) regresses normalised velocities (Tanh range), Huber loss;
- ``classification`` (:class:`MobileVLAClassificationDecoder`) predicts the 9 discrete move
  classes, weighted cross-entropy.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from mobile_vla.model.config import HeadConfig
from mobile_vla.registry import Registry
from mobile_vla.vocab import batch as keys
from mobile_vla.vocab.actions import CLASS_DIRECTIONS, IGNORE_INDEX, NUM_CLASSES

ACTION_HEADS: Registry[type[ActionHead]] = Registry("action head")


def masked_huber(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, delta: float) -> torch.Tensor:
    """Mean Huber loss over the valid chunk steps.

    Args:
        pred, target: ``(B, W, N, D)``.
        mask: ``(B, W, N)`` bool; all-False gives a zero that still carries a graph.
    """
    per = F.huber_loss(pred, target.to(pred.dtype), reduction="none", delta=delta).mean(-1)
    m = mask.to(per.dtype)
    return (per * m).sum() / m.sum().clamp_min(1.0)


class ActionHead(nn.Module):
    """The contract of an action head (subclass it and register the subclass)."""

    #: The dataset adds ``class_labels`` (the 9 teleop move classes) to every item.
    needs_class_labels: ClassVar[bool] = False

    @classmethod
    def from_config(cls, in_features: int, config: HeadConfig, action_dim: int) -> ActionHead:
        """Build the head for ``in_features`` = F from ``model.head``."""
        raise NotImplementedError

    def actions(self, output: torch.Tensor) -> torch.Tensor:
        """The raw output of ``forward`` → normalised actions ``(B, W, N, D)`` in (-1, 1)."""
        raise NotImplementedError

    def loss(self, output: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        """Named scalar losses of the raw output against the batch's targets."""
        raise NotImplementedError

    def set_action_centroids(self, normalized: np.ndarray) -> None:
        """Discrete heads: the normalised action ``(classes, D)`` of each class (others ignore it)."""


class _WindowTrunk(ActionHead):
    """``(B, W, F)`` (or ``(B, W, K, H)``, flattened) → LSTM → MLP → ``(B, W, N, out)``."""

    def __init__(self, in_features: int, chunk: int, out: int, hidden: int, layers: int, mlp_hidden: int,
                 dropout: float):
        super().__init__()
        self.chunk, self.out = chunk, out
        self.lstm = nn.LSTM(in_features, hidden, num_layers=layers, batch_first=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.mlp = nn.Sequential(
            nn.Linear(hidden, mlp_hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(mlp_hidden, chunk * out)
        )

    def trunk(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() == 4:  # (B, W, K, H) -> (B, W, K*H)
            features = features.flatten(2)
        h, _ = self.lstm(features)
        B, W = h.shape[:2]
        return self.mlp(h).view(B, W, self.chunk, self.out)


def _trunk_kwargs(config: HeadConfig) -> dict:
    return dict(chunk=config.fwd_pred_next_n, hidden=config.lstm_hidden, layers=config.lstm_layers,
                mlp_hidden=config.mlp_hidden, dropout=config.dropout)


@ACTION_HEADS.register("lstm")
class MobileVLALSTMDecoder(_WindowTrunk):
    """Velocity head: ``(B, W, F)`` → ``(B, W, N, D)`` normalised actions in (-1, 1)."""

    def __init__(self, in_features: int, chunk: int, action_dim: int = 2, hidden: int = 128, layers: int = 1,
                 mlp_hidden: int = 128, dropout: float = 0.0, huber_delta: float = 0.1):
        super().__init__(in_features, chunk, action_dim, hidden, layers, mlp_hidden, dropout)
        self.huber_delta = huber_delta

    @classmethod
    def from_config(cls, in_features: int, config: HeadConfig, action_dim: int) -> MobileVLALSTMDecoder:
        return cls(in_features, action_dim=action_dim, huber_delta=config.huber_delta, **_trunk_kwargs(config))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.trunk(features))

    def actions(self, output: torch.Tensor) -> torch.Tensor:
        return output

    def loss(self, output: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        """``output`` ``(B, W, N, D)`` against ``actions`` under ``action_mask`` → ``{"loss_velocity": ()}``."""
        return {"loss_velocity": masked_huber(output, batch[keys.ACTIONS], batch[keys.ACTION_MASK], self.huber_delta)}


@ACTION_HEADS.register("classification")
class MobileVLAClassificationDecoder(_WindowTrunk):
    """Discrete head: ``(B, W, F)`` → class logits ``(B, W, N, 9)``.

    ``centroids`` ``(9, D)`` are the normalised actions of the classes, so :meth:`actions`
    turns logits into the same normalised action space as the velocity head.
    """

    needs_class_labels = True

    def __init__(self, in_features: int, chunk: int, action_dim: int = 2, hidden: int = 128, layers: int = 1,
                 mlp_hidden: int = 128, dropout: float = 0.0, class_weights: list[float] | None = None):
        super().__init__(in_features, chunk, NUM_CLASSES, hidden, layers, mlp_hidden, dropout)
        weights = torch.ones(NUM_CLASSES) if class_weights is None else torch.tensor(class_weights)
        self.register_buffer("class_weights", weights.float())
        # Until the action statistics are known: unit directions just inside the Tanh range.
        self.register_buffer("centroids", torch.from_numpy(CLASS_DIRECTIONS[:, :action_dim] / 1.1).float())

    @classmethod
    def from_config(cls, in_features: int, config: HeadConfig, action_dim: int) -> MobileVLAClassificationDecoder:
        return cls(in_features, action_dim=action_dim, class_weights=config.class_weights, **_trunk_kwargs(config))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.trunk(features)

    def actions(self, output: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, W, N, 9)`` → probability-weighted normalised actions ``(B, W, N, D)``."""
        return output.softmax(-1) @ self.centroids.to(output.dtype)

    def set_action_centroids(self, normalized: np.ndarray) -> None:
        self.centroids.copy_(torch.as_tensor(normalized, dtype=torch.float32))

    def loss(self, output: torch.Tensor, batch: dict) -> dict[str, torch.Tensor]:
        """Logits ``(B, W, N, 9)`` against ``class_labels`` ``(B, W, N)`` (-100 = ignore) → ``{"loss_class": ()}``."""
        flat = output.reshape(-1, NUM_CLASSES)
        target = batch[keys.CLASS_LABELS].reshape(-1).long()
        if bool((target == IGNORE_INDEX).all()):
            return {"loss_class": flat.sum() * 0.0}
        loss = F.cross_entropy(flat, target, weight=self.class_weights.to(flat.dtype), ignore_index=IGNORE_INDEX)
        return {"loss_class": loss}
