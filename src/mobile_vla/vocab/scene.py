"""Names of the per-frame scene-geometry labels (simulator episodes), robot frame, metres.

+x forward, +y left: the cup, the obstacle cluster's centre, its near and far faces along x and
its half width — together what the expert's route depends on.
"""

from __future__ import annotations

SCENE_LABELS = ("cup_x", "cup_y", "obstacle_x", "obstacle_y", "obstacle_near_x", "obstacle_far_x",
                "obstacle_half_width")
LATERAL_COLUMNS = (1, 3)  # negated by mirroring (the others are mirror-invariant)
SCENE_SCALE = 4.0  # metres → roughly unit range for the loss
