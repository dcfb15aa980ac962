"""Names of the per-frame scene-geometry labels (simulator episodes), robot frame, metres.

+x forward, +y left: the cup, the obstacle cluster's centre, its near and far faces along x and
its half width — together what the expert's route depends on.
"""

from __future__ import annotations

SCENE_LABELS = ("cup_x", "cup_y", "obstacle_x", "obstacle_y", "obstacle_near_x", "obstacle_far_x",
                "obstacle_half_width")
LATERAL_COLUMNS = (1, 3)  # negated by mirroring (the others are mirror-invariant)
SCENE_SCALE = 4.0  # metres → roughly unit range for the loss

#: Where the robot is relative to the obstacle cluster.
PHASES = ("approach", "beside", "after")
# The robot's half length along x: "beside" starts when its front reaches the near face and ends
# when its back clears the far face.
ROBOT_HALF_LENGTH = 0.2  # m


def cluster_phase(near_x, far_x):
    """Phase index into :data:`PHASES` per frame from the cluster's near and far faces' x in the
    robot frame (m). Takes floats, numpy arrays or torch tensors (kept on their device) alike."""
    # 0 + 1 for "past the near face" + 1 for "past the far face"; written with comparisons and
    # integer arithmetic only, so numpy and torch run it unchanged (far < near, so the two
    # conditions never both hold the wrong way).
    return 1 - (near_x > ROBOT_HALF_LENGTH) * 1 + (far_x < -ROBOT_HALF_LENGTH) * 1


def scene_phase(scene, scene_mask):
    """``scene`` ``(..., len(SCENE_LABELS))`` as the dataset gives it (divided by :data:`SCENE_SCALE`)
    and ``scene_mask`` ``(...)`` → phase index ``(...)`` per frame, -1 where a frame has no label.
    Numpy arrays or torch tensors alike (a tensor stays on its device: no host sync in training)."""
    near = scene[..., SCENE_LABELS.index("obstacle_near_x")] * SCENE_SCALE
    far = scene[..., SCENE_LABELS.index("obstacle_far_x")] * SCENE_SCALE
    labelled = (scene_mask != 0) * 1
    return cluster_phase(near, far) * labelled - (1 - labelled)
