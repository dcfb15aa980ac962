"""Per-frame odometry: where the robot has gone since its episode began.

Frame ``t``'s odometry is the robot's displacement ``(x forward, y left)`` in metres from its
start pose, in the start pose's frame, when frame ``t`` was taken (frame 0: ``(0, 0)``).
Simulator files carry the true poses (``trajectory`` ``(T+1, 3)`` ``[x, y, yaw]``); a robot's
files carry only the commands it executed, which are integrated over the frame period
(``total_duration / num_frames``, else ``default_dt``) — what a streaming session does with the
commands it predicts (:class:`mobile_vla.policy.session.StreamingSession`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: Frame period (s) assumed for files that do not say (no ``total_duration``): the simulator's control period.
DEFAULT_FRAME_PERIOD = 0.4


def integrate_commands(actions: np.ndarray, dt: float) -> np.ndarray:
    """``(T, 2)`` float32 odometry from commanded velocities ``(T, >=2)`` m/s held ``dt`` s each."""
    steps = np.asarray(actions, np.float64)[:, :2] * dt
    return np.concatenate([np.zeros((1, 2)), np.cumsum(steps, 0)[:-1]]).astype(np.float32)


def episode_odometry(attrs: dict[str, Any], actions: np.ndarray, default_dt: float = DEFAULT_FRAME_PERIOD) -> np.ndarray:
    """``(T, 2)`` float32 odometry of an episode's ``T`` frames (see the module doc)."""
    T = len(actions)
    try:
        poses = np.asarray(attrs["trajectory"], np.float64)
        if poses.ndim == 2 and poses.shape[0] >= T and poses.shape[1] >= 3 and np.isfinite(poses[:T]).all():
            d = poses[:T, :2] - poses[0, :2]
            c, s = np.cos(poses[0, 2]), np.sin(poses[0, 2])
            return np.stack([c * d[:, 0] + s * d[:, 1], -s * d[:, 0] + c * d[:, 1]], 1).astype(np.float32)
    except (KeyError, ValueError, TypeError):
        pass
    try:
        dt = float(attrs["total_duration"]) / T
    except (KeyError, ValueError, TypeError, ZeroDivisionError):
        dt = default_dt
    return integrate_commands(actions, dt if np.isfinite(dt) and dt > 0 else default_dt)
