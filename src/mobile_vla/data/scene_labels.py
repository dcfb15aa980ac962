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

from mobile_vla.vocab.scene import LATERAL_COLUMNS


def scene_labels(attrs: dict[str, Any], num_frames: int) -> np.ndarray | None:
    """``(T, 7)`` float32 :data:`SCENE_LABELS` per frame, or ``None`` without simulator attributes."""
    try:
        poses = np.asarray(attrs["trajectory"], np.float64)[:num_frames]
        obstacles = np.asarray(attrs["obstacles"], np.float64).reshape(-1, 4)
        target = np.asarray(attrs["target_xy"], np.float64).reshape(2)
    except (KeyError, ValueError, TypeError):
        return None
    if poses.ndim != 2 or poses.shape[0] < num_frames or poses.shape[1] < 3 or len(obstacles) == 0:
        return None
    lo = obstacles[:, :2] - obstacles[:, 2:]
    hi = obstacles[:, :2] + obstacles[:, 2:]
    x0, y0 = lo.min(0)
    x1, y1 = hi.max(0)
    centre = np.array([(x0 + x1) / 2, (y0 + y1) / 2])
    cos, sin = np.cos(poses[:, 2]), np.sin(poses[:, 2])

    def robot_frame(point: np.ndarray) -> np.ndarray:
        d = point[None, :] - poses[:, :2]
        return np.stack([cos * d[:, 0] + sin * d[:, 1], -sin * d[:, 0] + cos * d[:, 1]], 1)

    cup, mid = robot_frame(target), robot_frame(centre)
    # The robot never turns much (yaw ≈ 0), so the faces are offsets along its x from the centre.
    near = mid[:, :1] - (x1 - x0) / 2
    far = mid[:, :1] + (x1 - x0) / 2
    half_width = np.full_like(near, (y1 - y0) / 2)
    return np.concatenate([cup, mid, near, far, half_width], 1).astype(np.float32)


def mirror_scene(labels: np.ndarray | None) -> np.ndarray | None:
    if labels is None:
        return None
    out = labels.copy()
    out[:, list(LATERAL_COLUMNS)] *= -1
    return out
