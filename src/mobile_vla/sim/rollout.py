"""One closed-loop episode for any controller, with expert labels at every visited state.

Used by ``sim expert-eval``, by collection (expert, noisy expert and DAgger rollouts) and by
closed-loop policy evaluation.

Controller protocol: ``reset(instruction: str)`` and ``act(obs_image_rgb (S, S, 3) uint8) ->
(3,)`` robot-frame ``[linear_x, linear_y, angular_z]`` in m/s, rad/s.

DAgger mixing: with a controller, each step executes the **expert's** action with
probability ``beta`` and the controller's otherwise (``beta=0``: pure policy rollout; the
controller still sees every frame so its history stays consistent). Labels are always the
expert's clean action at the visited state.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import numpy as np

from mobile_vla.sim.expert import ExpertConfig, NoiseConfig, no_side_route
from mobile_vla.sim.scene import SceneSpec
from mobile_vla.sim.task import MAX_STEPS, SUCCESS_RADIUS
from mobile_vla.sim.tasks import DEFAULT_TASK, TASKS, SimTask
from mobile_vla.sim.world import World, clip_action
from mobile_vla.vocab.instructions import other_side, side_of


class Controller(Protocol):
    """Drives an episode. A controller whose ``needs_frames`` attribute is False (default: True)
    is not shown the camera: ``act`` then gets ``None`` and no frame is rendered for it."""

    def reset(self, instruction: str) -> None: ...

    def act(self, obs_image_rgb: np.ndarray) -> np.ndarray: ...


@dataclasses.dataclass
class RolloutResult:
    """One episode. ``T`` = steps taken.

    Attributes:
        poses: ``(T+1, 3)`` ``[x, y, yaw]`` from the start pose to the final pose.
        executed: ``(T, 3)`` actions actually executed (noisy or the policy's).
        labels: ``(T, 3)`` the expert's clean action for the instruction at each state (for an
            instruction that names no side: the expert's ``no_side_route``, :func:`no_side_route`).
        counterfactual: ``(T, 3)`` the expert's action for the mirrored side at each state (zeros
            when the instruction names no side: its mirror is itself).
        frames: ``(T, S, S, 3)`` RGB uint8 observed before each action, or ``None``.
        expert_executed: ``(T,)`` bool, True where the expert's (possibly noisy) action ran.
    """

    instruction: str
    side: str | None
    poses: np.ndarray
    executed: np.ndarray
    labels: np.ndarray
    counterfactual: np.ndarray
    frames: np.ndarray | None
    expert_executed: np.ndarray
    success: bool
    collision: bool
    timeout: bool
    passed_side: str | None
    wrong_target: bool = False  # ended at an object the instruction did not name (e.g. the other basket)

    @property
    def steps(self) -> int:
        return len(self.executed)

    def to_record(self, scene: SceneSpec) -> dict[str, Any]:
        """A JSON-able summary with the trajectory and obstacles (what ``sim plot`` draws)."""
        return {
            "scene_seed": scene.seed,
            "instruction": self.instruction,
            "side": self.side,
            "success": self.success,
            "collision": self.collision,
            "timeout": self.timeout,
            "passed_side": self.passed_side,
            "wrong_target": self.wrong_target,
            "steps": self.steps,
            "trajectory": np.round(self.poses, 4).tolist(),
            "obstacles": np.round(scene.obstacles_array(), 4).tolist(),
            "target_xy": list(scene.target_xy),
            # what a picture of the scene shows as goals: [object, side, x, y] (the cup, or baskets)
            "landmarks": [[kind, side, float(x), float(y)] for kind, side, (x, y) in scene.landmarks()],
        }


def run_episode(
    world: World,
    scene: SceneSpec,
    instruction: str,
    controller: Controller | None = None,
    beta: float = 1.0,
    expert: ExpertConfig = ExpertConfig(),
    noise: NoiseConfig | None = None,
    rng: np.random.Generator | None = None,
    render: bool = True,
    max_steps: int = MAX_STEPS,
    success_radius: float = SUCCESS_RADIUS,
    task: SimTask | None = None,
) -> RolloutResult:
    """Run one episode of ``scene`` under ``instruction``.

    Args:
        controller: executes its actions (mixed with the expert by ``beta``); ``None`` = expert only.
        beta: probability of executing the expert's action at a step when a controller is given.
        noise: perturb executed expert actions (labels stay clean).
        rng: randomness for noise and mixing (default: seeded from the scene).
        render: record frames (always rendered for a controller, unless its ``needs_frames`` is False).
        task: whose expert labels the states and whose judge ends the episode (default: the cup task).
    """
    spec = task or TASKS.get(DEFAULT_TASK)
    side = side_of(instruction, spec.target)
    rng = rng if rng is not None else np.random.default_rng(scene.seed)
    world.reset(scene)
    judge = spec.judge(world, success_radius, max_steps, side=side)
    if controller is not None:
        controller.reset(instruction)
    looks = controller is not None and getattr(controller, "needs_frames", True)
    frames, executed, labels, counterfactual, by_expert = [], [], [], [], []
    outcome = None
    while outcome is None or not outcome.done:
        pose = world.pose
        frame = world.render() if (render or looks) else None
        label = spec.expert(scene, pose, side or no_side_route(scene, pose, expert), expert)
        cf = spec.expert(scene, pose, other_side(side), expert) if side else np.zeros(3, np.float32)
        policy_action = clip_action(controller.act(frame)) if controller is not None else None
        use_expert = policy_action is None or rng.random() < beta
        action = label if use_expert else policy_action.astype(np.float32)
        if use_expert and noise is not None:
            action = noise.perturb(action, expert.style, rng)
        if render:
            frames.append(frame)
        executed.append(action)
        labels.append(label)
        counterfactual.append(cf)
        by_expert.append(use_expert)
        outcome = judge.step(action)
    return RolloutResult(
        instruction=instruction,
        side=side,
        poses=np.array(judge.poses, np.float32),
        executed=np.array(executed, np.float32),
        labels=np.array(labels, np.float32),
        counterfactual=np.array(counterfactual, np.float32),
        frames=np.stack(frames) if render else None,
        expert_executed=np.array(by_expert, bool),
        success=outcome.success,
        collision=outcome.collision,
        timeout=outcome.timeout,
        passed_side=outcome.passed_side,
        wrong_target=outcome.wrong_target,
    )
