"""Action heads: an LSTM over the window, then an MLP to a chunk of N actions per frame.

Both heads share the trunk (:class:`_WindowTrunk`); they differ only in the output layer and loss:

- :class:`MobileVLALSTMDecoder` regresses normalised velocities (Tanh range), Huber loss;
- :class:`MobileVLAClassificationDecoder` predicts the 9 discrete move classes, weighted
  cross-entropy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mobile_vla.data.labels import IGNORE_INDEX, NUM_CLASSES


def masked_huber(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, delta: float) -> torch.Tensor:
    """Mean Huber loss over the valid chunk steps.

    Args:
        pred, target: ``(B, W, N, D)``.
        mask: ``(B, W, N)`` bool; all-False gives a zero that still carries a graph.
    """
    per = F.huber_loss(pred, target.to(pred.dtype), reduction="none", delta=delta).mean(-1)
    m = mask.to(per.dtype)
    return (per * m).sum() / m.sum().clamp_min(1.0)


class _WindowTrunk(nn.Module):
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


class MobileVLALSTMDecoder(_WindowTrunk):
    """Velocity head: ``(B, W, F)`` → ``(B, W, N, D)`` normalised actions in (-1, 1)."""

    def __init__(self, in_features: int, chunk: int, action_dim: int = 2, hidden: int = 128, layers: int = 1,
                 mlp_hidden: int = 128, dropout: float = 0.0, huber_delta: float = 0.1):
        super().__init__(in_features, chunk, action_dim, hidden, layers, mlp_hidden, dropout)
        self.huber_delta = huber_delta

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.trunk(features))

    def loss(self, pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """``pred``/``target`` ``(B, W, N, D)``, ``mask`` ``(B, W, N)`` → ``{"loss_velocity": ()}``."""
        return {"loss_velocity": masked_huber(pred, target, mask, self.huber_delta)}


class MobileVLAClassificationDecoder(_WindowTrunk):
    """Discrete head: ``(B, W, F)`` → class logits ``(B, W, N, 9)``.

    ``centroids`` ``(9, D)`` are the normalised actions of the classes, so :meth:`expected_actions`
    turns logits into the same normalised action space as the velocity head.
    """

    def __init__(self, in_features: int, chunk: int, action_dim: int = 2, hidden: int = 128, layers: int = 1,
                 mlp_hidden: int = 128, dropout: float = 0.0, class_weights: list[float] | None = None):
        super().__init__(in_features, chunk, NUM_CLASSES, hidden, layers, mlp_hidden, dropout)
        weights = torch.ones(NUM_CLASSES) if class_weights is None else torch.tensor(class_weights)
        self.register_buffer("class_weights", weights.float())
        self.register_buffer("centroids", torch.zeros(NUM_CLASSES, action_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.trunk(features)

    def expected_actions(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B, W, N, 9)`` → probability-weighted normalised actions ``(B, W, N, D)``."""
        return logits.softmax(-1) @ self.centroids.to(logits.dtype)

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        """``logits`` ``(B, W, N, 9)``, ``labels`` ``(B, W, N)`` (-100 = ignore) → ``{"loss_class": ()}``."""
        flat = logits.reshape(-1, NUM_CLASSES)
        target = labels.reshape(-1).long()
        if bool((target == IGNORE_INDEX).all()):
            return {"loss_class": flat.sum() * 0.0}
        loss = F.cross_entropy(flat, target, weight=self.class_weights.to(flat.dtype), ignore_index=IGNORE_INDEX)
        return {"loss_class": loss}
