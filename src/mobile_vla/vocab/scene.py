"""Names of the per-frame scene-geometry labels (simulator episodes), robot frame, metres.

+x forward, +y left: the cup, the obstacle cluster's centre, its near and far faces along x and
its half width — together what the expert's route depends on.
"""

from __future__ import annotations

import numpy as np

SCENE_LABELS = ("cup_x", "cup_y", "obstacle_x", "obstacle_y", "obstacle_near_x", "obstacle_far_x",
                "obstacle_half_width")
LATERAL_COLUMNS = (1, 3)  # negated by mirroring (the others are mirror-invariant)
SCENE_SCALE = 4.0  # metres → roughly unit range for the loss

#: Where the robot is relative to the obstacle cluster.
PHASES = ("approach", "beside", "after")
# The robot's half length along x: "beside" starts when its front reaches the near face and ends
# when its back clears the far face.
ROBOT_HALF_LENGTH = 0.2  # m


def cluster_phase(near_x: np.ndarray, far_x: np.ndarray) -> np.ndarray:
    """Phase index into :data:`PHASES` per frame from the cluster's near and far faces' x in the robot frame (m)."""
    near_x, far_x = np.asarray(near_x, np.float64), np.asarray(far_x, np.float64)
    return np.where(near_x > ROBOT_HALF_LENGTH, 0, np.where(far_x < -ROBOT_HALF_LENGTH, 2, 1))


def scene_phase(scene: np.ndarray, scene_mask: np.ndarray) -> np.ndarray:
    """``scene`` ``(..., len(SCENE_LABELS))`` as the dataset gives it (divided by :data:`SCENE_SCALE`)
    and ``scene_mask`` ``(...)`` → phase index ``(...)`` per frame, -1 where a frame has no label."""
    scene = np.asarray(scene, np.float64) * SCENE_SCALE
    near = scene[..., SCENE_LABELS.index("obstacle_near_x")]
    far = scene[..., SCENE_LABELS.index("obstacle_far_x")]
    return np.where(np.asarray(scene_mask, bool), cluster_phase(near, far), -1)
