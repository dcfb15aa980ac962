"""The navigation task on top of a :class:`World`: success, collision, timeout, passed side.

Shared by :func:`mobile_vla.sim.rollout.run_episode` and the Gymnasium env so that both judge
an episode identically.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mobile_vla.sim.world import World

SUCCESS_RADIUS = 0.35  # m from the robot's centre to the cup's axis
MAX_STEPS = 40  # ≈2–3× the expert's typical 12–18 steps


@dataclasses.dataclass
class StepOutcome:
    collision: bool
    success: bool
    timeout: bool
    passed_side: str | None
    wrong_target: bool = False  # reached an object the instruction did not name (ends the episode)

    @property
    def done(self) -> bool:
        return self.collision or self.success or self.timeout or self.wrong_target


class Task:
    """Tracks one episode in ``world`` (already reset to its scene).

    ``side``: the instructed side (``None``: the instruction names none); the cup task's success
    does not depend on it (the passed side is reported), other tasks' judges may.
    """

    def __init__(self, world: World, success_radius: float = SUCCESS_RADIUS, max_steps: int = MAX_STEPS,
                 side: str | None = None):
        if world.scene is None:
            raise RuntimeError("Task needs a World that has been reset to a scene")
        self.world = world
        self.scene = world.scene
        self.success_radius = success_radius
        self.max_steps = max_steps
        self.side = side
        self.steps = 0
        self.passed_side: str | None = None
        self.poses = [world.pose]

    def distance_to_target(self) -> float:
        return float(np.linalg.norm(self.world.pose[:2] - np.asarray(self.scene.target_xy)))

    def step(self, action: np.ndarray) -> StepOutcome:
        """Execute ``action`` (robot frame, (3,)) for one control period and judge the result."""
        before = self.world.pose
        collision = self.world.step(action)
        after = self.world.pose
        self.poses.append(after)
        self.steps += 1
        self._track_side(before, after)
        success = not collision and self.distance_to_target() <= self.success_radius
        timeout = not (collision or success) and self.steps >= self.max_steps
        return StepOutcome(collision, success, timeout, self.passed_side)

    def _track_side(self, before: np.ndarray, after: np.ndarray) -> None:
        """Side of the cluster's centre where the robot first crosses its mid-depth line."""
        if self.passed_side is not None:
            return
        cx, cy = self.scene.obstacle_center
        if before[0] < cx <= after[0]:
            frac = (cx - before[0]) / (after[0] - before[0])
            y = before[1] + frac * (after[1] - before[1])
            self.passed_side = "left" if y > cy else "right"
