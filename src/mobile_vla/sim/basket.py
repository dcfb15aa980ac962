"""The basket task: two gray baskets behind the obstacle cluster; the instruction names one.

The real robot's second batch ("Navigate to the gray basket on the left"). Unlike the cup
task, the side word names the *target*, not the route: the left basket stands left of the
cluster, so the robot passes the cluster on the basket's side and then drives to it.

A :class:`BasketScene` is a cup-task scene (boxes, colours, lights, camera from
:func:`mobile_vla.sim.scene.sample_scene` with the same seed) plus two baskets, rendered by the
world as props. In the ``baskets`` preset the cup is hidden; in the mixed presets it stays, so
a box, a cup and two baskets are all in view and only the sentence tells the tasks apart.

Layout (world frame, relative to the cluster's back face ``x1`` and centre ``cy``): each basket
1.2–1.8 m behind the cluster and 1.5–1.9 m to its side — outside the cup task's lanes (≤ 1.36 m),
so a cup-task route does not pass through a basket, and ≥ 15° inside the view from the start.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mobile_vla.sim.expert import ExpertConfig, expert_action
from mobile_vla.sim.scene import SceneSpec, sample_scene
from mobile_vla.sim.task import MAX_STEPS, SUCCESS_RADIUS, StepOutcome, Task
from mobile_vla.sim.world import Prop, World

BASKET_RADIUS = 0.2
BASKET_HEIGHT = 0.28


@dataclasses.dataclass(frozen=True)
class BasketScene(SceneSpec):
    """A scene with two baskets; ``target_xy`` stays the cup's place (hidden unless ``show_cup``)."""

    baskets: tuple[tuple[float, float], tuple[float, float]] = ((0.0, 0.0), (0.0, 0.0))  # left, right (x, y)
    basket_rgba: tuple[float, float, float, float] = (0.35, 0.35, 0.35, 1.0)
    show_cup: bool = False

    def basket_xy(self, side: str) -> tuple[float, float]:
        return self.baskets[0] if side == "left" else self.baskets[1]

    @property
    def props(self) -> tuple[Prop, ...]:
        """What the world renders besides boxes and cup."""
        return tuple(Prop(x, y, BASKET_RADIUS, BASKET_HEIGHT, self.basket_rgba) for x, y in self.baskets)

    def landmarks(self) -> list[tuple[str, str | None, tuple[float, float]]]:
        """``(object, side, xy)`` of every goal-like object in view: the baskets, and the cup if shown."""
        return [("basket", "left", self.baskets[0]), ("basket", "right", self.baskets[1]), *super().landmarks()]


def sample_basket_scene(seed: int, show_cup: bool = False) -> BasketScene:
    """The cup-task scene of ``seed`` plus two baskets (deterministic); the cup hidden unless ``show_cup``."""
    base = sample_scene(seed)
    rng = np.random.default_rng([int(seed), 0xBA5])
    _, x1, _, _ = base.obstacle_bounds
    _, cy = base.obstacle_center
    u = rng.uniform
    left = (x1 + u(1.2, 1.8), cy + u(1.5, 1.9))
    right = (x1 + u(1.2, 1.8), cy - u(1.5, 1.9))
    grey = u(0.28, 0.38)  # darker than every floor (0.45–0.75), so the baskets stand out
    fields = {f.name: getattr(base, f.name) for f in dataclasses.fields(SceneSpec)}
    if not show_cup:
        fields["cup_rgba"] = (*base.cup_rgba[:3], 0.0)
    return BasketScene(**fields, baskets=(tuple(map(float, left)), tuple(map(float, right))),  # type: ignore[arg-type]
                       basket_rgba=(grey, grey, grey, 1.0), show_cup=show_cup)


def sample_mixed_scene(seed: int) -> BasketScene:
    """Box, cup and both baskets in view."""
    return sample_basket_scene(seed, show_cup=True)


def basket_expert(scene: BasketScene, pose: np.ndarray, side: str, cfg: ExpertConfig = ExpertConfig()) -> np.ndarray:
    """``(3,)`` command towards the ``side`` basket: pass the cluster on that side, then drive to it."""
    if not isinstance(scene, BasketScene):
        raise TypeError(f"the basket task needs a scene with baskets, got {type(scene).__name__}")
    return expert_action(dataclasses.replace(scene, target_xy=scene.basket_xy(side)), pose, side, cfg)


def basket_goal(scene: SceneSpec, side: str | None) -> tuple[float, float]:
    """The named basket's place (the scene's centre between the baskets when no side is named)."""
    if not isinstance(scene, BasketScene):
        raise TypeError(f"the basket task needs a scene with baskets, got {type(scene).__name__}")
    if side is None:
        (lx, ly), (rx, ry) = scene.baskets
        return (lx + rx) / 2, (ly + ry) / 2
    return scene.basket_xy(side)


class BasketJudge(Task):
    """Success: the robot's centre within ``success_radius`` of the named basket (either basket when
    the instruction names none). Reaching the other basket ends the episode as ``wrong_target``.
    ``passed_side`` is the side of the basket reached."""

    def __init__(self, world: World, success_radius: float = SUCCESS_RADIUS, max_steps: int = MAX_STEPS,
                 side: str | None = None):
        super().__init__(world, success_radius, max_steps, side)
        if not isinstance(self.scene, BasketScene):
            raise TypeError(f"the basket task needs a scene with baskets, got {type(self.scene).__name__}")

    def distance_to_target(self) -> float:
        sides = [self.side] if self.side else ["left", "right"]
        return min(self._distance(s) for s in sides)

    def _distance(self, side: str) -> float:
        return float(np.linalg.norm(self.world.pose[:2] - np.asarray(self.scene.basket_xy(side))))

    def step(self, action: np.ndarray) -> StepOutcome:
        collision = self.world.step(action)
        self.poses.append(self.world.pose)
        self.steps += 1
        reached = [s for s in ("left", "right") if self._distance(s) <= self.success_radius]
        if self.passed_side is None and reached and not collision:
            self.passed_side = reached[0]
        success = not collision and any(self.side in (None, s) for s in reached)
        wrong = not (collision or success) and bool(reached)
        timeout = not (collision or success or wrong) and self.steps >= self.max_steps
        return StepOutcome(collision, success, timeout, self.passed_side, wrong_target=wrong)


def other_task_reached(scene: SceneSpec, poses: np.ndarray, target: str, radius: float = SUCCESS_RADIUS) -> bool | None:
    """Whether a trajectory ``poses (T, >=2)`` came within ``radius`` of an object of another task
    than ``target`` (a basket for a cup instruction, the cup for a basket instruction); ``None``
    when the scene holds no other task's object."""
    if not isinstance(scene, BasketScene):
        return None
    others = [xy for kind, _, xy in scene.landmarks() if kind != target]
    if not others:
        return None
    xy = np.asarray(poses, np.float64)[:, :2]
    return bool(any((np.linalg.norm(xy - np.asarray(o), axis=1) <= radius).any() for o in others))
