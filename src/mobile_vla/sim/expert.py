"""The expert driver: a pure function of (scene, robot pose, side) → robot-frame velocity.

Because it only reads the state, it can label any state a policy visits (DAgger) and the
mirrored instruction at the same state (counterfactual labels).

Route for side ``s``: the *lane* runs beside the obstacle cluster at ``clearance`` from its
side face. Before the lane the robot must not get closer to the cluster's front face than
``front_margin``; in the lane it drives on until ``exit_margin`` past the cluster's back face,
then lines up with the cup and drives straight at it (``approach_lookahead``). A robot
beside the cluster on the wrong side backs out first.
``angular_z`` is always 0 (the policy predicts ``linear_x, linear_y`` only, like the robot data).
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np

from mobile_vla.sim.scene import SceneSpec
from mobile_vla.sim.world import MAX_LINEAR, ROBOT_RADIUS

STYLES = ("continuous", "discrete")
NO_SIDE_ROUTES = ("view", "left", "right")  # ExpertConfig.no_side_route
DISCRETE_SPEED = MAX_LINEAR  # teleop keys drive ±1.15 m/s per axis
LANE_EXIT_BEYOND = 0.25  # the lane's waypoint lies this far past the exit, so it is never reached


@dataclasses.dataclass(frozen=True)
class ExpertConfig:
    """How the expert drives.

    Attributes:
        style: ``continuous`` (smooth velocities) or ``discrete`` (teleop-like ±1.15 / 0 per axis).
        speed: cruise speed of the continuous style, m/s.
        clearance: gap between the robot's edge and the cluster's side in the lane, m.
        front_margin: closest approach to the cluster's front face before the lane, m.
        exit_margin: how far the robot's edge must be past the cluster's back face before it
            leaves the lane for the cup, m. A policy that turns for a cup across the cluster
            too early clips the box it is passing; a margin gives that turn room.
        control_dt: the control period the expert plans for, s.
        approach_lookahead: past the cluster, the expert steers for the point this far ahead on
            the line through the cup along +x (pure pursuit), so that it lines up with the cup
            and drives the last stretch straight at it: the robot cannot turn, and a diagonal
            final approach that a policy under-steers takes the cup out of the view.
        no_side_route: the route for an instruction that names no side: ``view`` (away from
            the cluster's bearing, :func:`nearer_side`) or a fixed convention, ``left`` or
            ``right`` (:func:`no_side_route`).
    """

    style: str = "continuous"
    speed: float = 0.8
    clearance: float = 0.6  # a policy that under-steers by 0.35 m still clears the corner
    front_margin: float = 0.3
    exit_margin: float = 0.05
    control_dt: float = 0.4
    approach_lookahead: float = 0.6
    no_side_route: str = "view"

    def __post_init__(self) -> None:
        if self.style not in STYLES:
            raise ValueError(f"expert style must be one of {STYLES}, got {self.style!r}")
        if self.no_side_route not in NO_SIDE_ROUTES:
            raise ValueError(f"expert no_side_route must be one of {NO_SIDE_ROUTES}, got {self.no_side_route!r}")
        if self.exit_margin < 0:
            raise ValueError(f"expert exit_margin must be >= 0 m, got {self.exit_margin}")
        if self.approach_lookahead <= 0:
            raise ValueError(f"expert approach_lookahead must be > 0 m, got {self.approach_lookahead}")


@dataclasses.dataclass(frozen=True)
class NoiseConfig:
    """Perturbations of *executed* actions (labels stay clean), so data covers recovery states.

    Attributes:
        prob: probability that a step's executed action is perturbed.
        std: standard deviation (m/s) of the Gaussian added per axis (continuous style); the
            discrete style replaces the action with a random key combination instead.
    """

    prob: float = 0.3
    std: float = 0.5

    def perturb(self, action: np.ndarray, style: str, rng: np.random.Generator) -> np.ndarray:
        if rng.random() >= self.prob:
            return action
        out = action.copy()
        if style == "discrete":
            out[:2] = rng.integers(-1, 2, size=2) * DISCRETE_SPEED
        else:
            out[:2] = np.clip(out[:2] + rng.normal(0.0, self.std, 2), -MAX_LINEAR, MAX_LINEAR)
        return out


def _waypoint(scene: SceneSpec, pose: np.ndarray, side: str, cfg: ExpertConfig) -> tuple[np.ndarray, float]:
    """World-frame goal point and the largest x the robot may reach this step."""
    x, y = float(pose[0]), float(pose[1])
    x0, x1, y0, y1 = scene.obstacle_bounds
    r = ROBOT_RADIUS
    sign = 1.0 if side == "left" else -1.0
    side_face = y1 if side == "left" else y0
    lane_y = side_face + sign * (r + cfg.clearance)
    front_stop = x0 - r - cfg.front_margin
    if x > x1 + r + cfg.exit_margin:  # past the cluster: line up with the cup, then drive straight at it
        tx, ty = scene.target_xy
        return np.array([min(x + cfg.approach_lookahead, tx), ty]), math.inf
    clear_of_side = sign * (y - (side_face + sign * r)) > 0.0
    if clear_of_side and sign * (y - lane_y) >= -0.12:  # in the lane: drive to its exit
        return np.array([x1 + r + cfg.exit_margin + LANE_EXIT_BEYOND, lane_y]), math.inf
    if x < x0 - r - 0.02:  # in front of the cluster: go sideways, never closer than front_stop
        return np.array([front_stop, lane_y]), front_stop
    if clear_of_side:  # beside the cluster but off the lane (e.g. perturbed): back into the lane
        return np.array([x + 0.3, lane_y]), math.inf
    return np.array([x - 1.0, y]), math.inf  # beside the cluster on the wrong side: back out


def expert_action(scene: SceneSpec, pose: np.ndarray, side: str, cfg: ExpertConfig = ExpertConfig()) -> np.ndarray:
    """Robot-frame ``[linear_x, linear_y, angular_z]`` (3,) float32 for passing on ``side``."""
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    goal, x_limit = _waypoint(scene, pose, side, cfg)
    delta = goal - np.asarray(pose[:2], np.float64)
    dist = float(np.linalg.norm(delta))
    if dist < 1e-6:
        return np.zeros(3, np.float32)
    yaw = float(pose[2])
    c, s = math.cos(yaw), math.sin(yaw)
    if cfg.style == "continuous":
        world_v = delta / dist * min(cfg.speed, dist / cfg.control_dt)
    else:
        # Teleop keys: an axis is pressed when the goal lies within ~66° of it.
        world_v = np.where(np.abs(delta) > 0.4 * dist, np.sign(delta), 0.0) * DISCRETE_SPEED
    # Never drive past x_limit within this control period (would hit the front face).
    max_vx = (x_limit - float(pose[0])) / cfg.control_dt
    if world_v[0] > max_vx:
        world_v[0] = max(max_vx, 0.0) if cfg.style == "continuous" else 0.0
        # Held back in x: the lateral move to the lane is all that is left, at full speed.
        if abs(delta[1]) > 0.02:
            lateral = min(cfg.speed, abs(delta[1]) / cfg.control_dt) if cfg.style == "continuous" else DISCRETE_SPEED
            world_v[1] = math.copysign(lateral, delta[1])
    robot_v = np.array([c * world_v[0] + s * world_v[1], -s * world_v[0] + c * world_v[1]])
    if cfg.style == "discrete":  # quantise again in the robot frame (keys are robot-frame)
        robot_v = np.where(np.abs(robot_v) > 0.5 * DISCRETE_SPEED, np.sign(robot_v), 0.0) * DISCRETE_SPEED
    robot_v = np.clip(robot_v, -MAX_LINEAR, MAX_LINEAR)
    return np.array([robot_v[0], robot_v[1], 0.0], np.float32)


def no_side_route(scene: SceneSpec, pose: np.ndarray, expert: ExpertConfig) -> str:
    """The side the expert passes on when the instruction names none.

    ``view`` reads the scene (:func:`nearer_side`); a fixed convention always takes its side. A
    policy trained on the view rule hedges between the two answers where it is unsure of the
    bearing (its lateral command shrinks towards zero, into the cluster); a convention gives one
    answer for every scene, at the cost of sometimes taking the side with less room.
    """
    return nearer_side(scene, pose) if expert.no_side_route == "view" else expert.no_side_route


def nearer_side(scene: SceneSpec, pose: np.ndarray) -> str:
    """The route for an instruction that names no side: away from the cluster's bearing.

    ``left`` when the cluster's centre lies right of the robot's heading (or straight ahead),
    else ``right``: the side the camera shows more room on. The world-frame rule it replaces
    (which side of the cluster's centre line the robot stands on) disagreed with the view for
    headings up to ±15° and offsets up to ≈0.5 m, so the label was invisible in those scenes.
    The robot does not turn, and moving towards its side only widens the gap, so the side holds
    through an episode. A pure function of the state (so DAgger can label it) and
    mirror-symmetric (a mirrored scene gets the mirrored route), which mirror augmentation needs.
    """
    x, y, yaw = (float(v) for v in pose[:3])
    cx, cy = scene.obstacle_center
    lateral = -(cx - x) * math.sin(yaw) + (cy - y) * math.cos(yaw)  # cluster centre, robot frame, + = left
    return "left" if lateral <= 0.0 else "right"
