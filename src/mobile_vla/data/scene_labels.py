"""Per-frame scene geometry from simulator episodes, for an auxiliary vision loss.

Simulator files carry the robot's trajectory and the scene layout as attributes
(``trajectory`` ``(T+1, 3)`` ``[x, y, yaw]``, ``obstacles`` ``(M, 4)`` ``[x, y, hx, hy]``,
``target_xy``). From them each frame gets where the cup and the obstacle cluster are **in the
robot's frame** — what the camera must see for the policy to steer. Real robot files have
no such attributes; their frames simply get no scene label.
"""

from __future__ import annotations

from typing import Any

import numpy as np

SCENE_LABELS = ("cup_x", "cup_y", "obstacle_x", "obstacle_y")  # metres, robot frame (+x forward, +y left)
LATERAL_COLUMNS = (1, 3)  # negated by mirroring
SCENE_SCALE = 4.0  # metres → roughly unit range for the loss


def scene_labels(attrs: dict[str, Any], num_frames: int) -> np.ndarray | None:
    """``(T, 4)`` float32 :data:`SCENE_LABELS` per frame, or ``None`` without simulator attributes."""
    try:
        poses = np.asarray(attrs["trajectory"], np.float64)[:num_frames]
        obstacles = np.asarray(attrs["obstacles"], np.float64).reshape(-1, 4)
        target = np.asarray(attrs["target_xy"], np.float64).reshape(2)
    except (KeyError, ValueError, TypeError):
        return None
    if poses.ndim != 2 or poses.shape[0] < num_frames or poses.shape[1] < 3 or len(obstacles) == 0:
        return None
    centre = obstacles[:, :2].mean(0)
    cos, sin = np.cos(poses[:, 2]), np.sin(poses[:, 2])

    def robot_frame(point: np.ndarray) -> np.ndarray:
        d = point[None, :] - poses[:, :2]
        return np.stack([cos * d[:, 0] + sin * d[:, 1], -sin * d[:, 0] + cos * d[:, 1]], 1)

    return np.concatenate([robot_frame(target), robot_frame(centre)], 1).astype(np.float32)


def mirror_scene(labels: np.ndarray | None) -> np.ndarray | None:
    if labels is None:
        return None
    out = labels.copy()
    out[:, list(LATERAL_COLUMNS)] *= -1
    return out
