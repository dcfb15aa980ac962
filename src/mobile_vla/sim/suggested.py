"""The side a scene suggests: the side of the obstacle cluster with more room.

The robot's own recordings were driven once per scene, on the side the layout made natural.
In the simulator's scenes there are no walls; what the camera sees is where the cluster sits
relative to the robot. Measured in a corridor of any fixed half-width ``C`` centred on the
robot's start line, the room left of the cluster is ``(y0 + C) - y_max`` and right of it
``y_min - (y0 - C)``; the difference does not depend on ``C`` and has the sign of the start's
offset from the cluster's centre. A cluster standing right of the start line leaves more room
(and a shorter drive) on the left, and the frames show it: the cluster sits right of the image
centre. So the side is visible, which is what makes an instruction redundant with the scene.
"""

from __future__ import annotations

from mobile_vla.sim.scene import SceneSpec


def room_by_side(scene: SceneSpec) -> dict[str, float]:
    """Lateral room, m, beside the cluster within a 1 m half-width corridor on the start line.

    Only the difference matters (see the module doc); the corridor makes the numbers readable.
    """
    _, _, y_min, y_max = scene.obstacle_bounds
    y0 = scene.start_pose[1]
    return {"left": (y0 + 1.0) - y_max, "right": y_min - (y0 - 1.0)}


def suggested_side(scene: SceneSpec) -> str:
    """``"left"`` or ``"right"``: the side with more room (ties, which have measure zero, go left)."""
    room = room_by_side(scene)
    return "left" if room["left"] >= room["right"] else "right"


def goal_side(scene: SceneSpec, goal_xy: tuple[float, float]) -> str | None:
    """``"left"`` or ``"right"``: the side of the obstacle cluster's centre line (along +x) the
    goal lies on; ``None`` for a scene without boxes.

    With the goal on the other side than the instructed route, the route must cross behind the
    cluster: the robot is drawn towards the goal it sees while it should still be moving out
    into the lane, and most collisions are in such episodes (docs/results.md).
    """
    if not scene.boxes:
        return None
    _, _, y_min, y_max = scene.obstacle_bounds
    return "left" if goal_xy[1] >= (y_min + y_max) / 2 else "right"
