"""Actions: names, units, the teleop speed, and the 9 discrete move classes of the robot's data.

An action is robot-frame ``[linear_x, linear_y, angular_z]`` in m/s, m/s, rad/s; the policy
predicts the first two (the base strafes, it does not turn). Teleop commands are discrete
(``{-TELEOP_SPEED, 0, +TELEOP_SPEED}`` per axis), so a command is one of nine moves. A
dimension counts as "moving" when its magnitude exceeds :data:`THRESHOLD` (m/s).
``linear_y > 0`` is a strafe to the **left**.
"""

from __future__ import annotations

import numpy as np

#: Every action dimension an episode file records, and their units.
ACTION_NAMES = ("linear_x", "linear_y", "angular_z")
ACTION_UNITS = ("m/s", "m/s", "rad/s")
#: The dimensions the policy predicts.
POLICY_ACTION_NAMES = ACTION_NAMES[:2]
#: m/s per axis of the robot's teleop keys; the default action range of an untrained checkpoint.
TELEOP_SPEED = 1.15

THRESHOLD = 0.3
NUM_CLASSES = 9
IGNORE_INDEX = -100  # torch.nn.functional.cross_entropy's default ignore_index

CLASS_NAMES = (
    "stop",
    "forward",
    "backward",
    "left",
    "right",
    "forward_left",
    "forward_right",
    "backward_left",
    "backward_right",
)

#: Unit direction ``(sign linear_x, sign linear_y)`` of each class, ``(9, 2)``.
CLASS_DIRECTIONS = np.array(
    [[0, 0], [1, 0], [-1, 0], [0, 1], [0, -1], [1, 1], [1, -1], [-1, 1], [-1, -1]], dtype=np.float32
)

# (sign x + 1, sign y + 1) -> class id
_LOOKUP = np.zeros((3, 3), dtype=np.int64)
for _cls, (_sx, _sy) in enumerate(CLASS_DIRECTIONS.astype(int)):
    _LOOKUP[_sx + 1, _sy + 1] = _cls


def action_class(actions: np.ndarray, threshold: float = THRESHOLD) -> np.ndarray:
    """Class id of each action.

    Args:
        actions: ``(..., >=2)`` physical ``[linear_x, linear_y, ...]``.

    Returns:
        ``(...)`` int64 class ids in ``[0, 9)``.
    """
    a = np.asarray(actions, dtype=np.float64)
    if a.shape[-1] < 2:
        raise ValueError(f"actions must have linear_x and linear_y in the last axis, got shape {a.shape}")
    sx = np.where(a[..., 0] > threshold, 1, np.where(a[..., 0] < -threshold, -1, 0))
    sy = np.where(a[..., 1] > threshold, 1, np.where(a[..., 1] < -threshold, -1, 0))
    return _LOOKUP[sx + 1, sy + 1]


def class_to_action(classes: np.ndarray, speed: float = TELEOP_SPEED) -> np.ndarray:
    """Class ids ``(...)`` → ``(..., 2)`` float32 ``[linear_x, linear_y]`` at ``speed`` m/s per axis."""
    return CLASS_DIRECTIONS[np.asarray(classes, dtype=np.int64)] * np.float32(speed)


def class_weights(labels: np.ndarray, num_classes: int = NUM_CLASSES) -> np.ndarray:
    """Inverse-frequency weights ``(num_classes,)`` float32 for weighted cross-entropy.

    ``labels`` may contain :data:`IGNORE_INDEX`, which is skipped. Weights of the classes
    present average to 1; absent classes get 0 (they never appear as targets).
    """
    y = np.asarray(labels).ravel()
    y = y[y != IGNORE_INDEX]
    counts = np.bincount(y, minlength=num_classes)[:num_classes].astype(np.float64)
    weights = np.zeros(num_classes, dtype=np.float64)
    present = counts > 0
    if present.any():
        weights[present] = 1.0 / counts[present]
        weights[present] *= present.sum() / weights[present].sum()
    return weights.astype(np.float32)
