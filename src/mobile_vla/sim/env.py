"""Gymnasium environment ``MobileVLA-Navigate-v0`` for closed-loop evaluation.

Observation: the robot camera's frame, ``(S, S, 3)`` RGB uint8. Action: robot-frame
``[linear_x, linear_y, angular_z]`` (m/s, rad/s), held for one control period (0.4 s).
The instruction is chosen with ``reset(options={"instruction": ...})`` (sampled from the
training templates when absent) and returned in ``info["instruction"]``; a scene is sampled
from the env's RNG unless ``options["scene_seed"]`` fixes it.
``gym.make("MobileVLA-Navigate-v0", task="cup", scenes="classic")`` chooses the simulator task
and scene preset (defaults: the cup task and its default preset; see ``sim.tasks``).

An episode terminates on success (within ``SUCCESS_RADIUS`` of the cup) or collision and is
truncated at ``max_steps``. ``info``: ``is_success``, ``collision``, ``passed_side``
(``"left"``, ``"right"`` or ``None``), ``instruction``, ``side``, ``scene_seed``, ``pose``.
Reward: progress towards the cup (m) per step, +1 on success, −1 on collision.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from mobile_vla.sim.task import MAX_STEPS, SUCCESS_RADIUS, Task
from mobile_vla.sim.tasks import resolve
from mobile_vla.sim.world import MAX_ANGULAR, MAX_LINEAR, World
from mobile_vla.vocab.instructions import SIDES, sample_instruction, side_of


class NavigateEnv(gym.Env):
    metadata = {"render_modes": ["rgb_array"], "render_fps": 2.5}

    def __init__(self, image_size: int = 112, max_steps: int = MAX_STEPS, render_mode: str | None = None,
                 task: str | None = None, scenes: str | None = None):
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.task_name, self.task, self.scenes, self.preset = resolve(task, scenes)
        self.render_mode = render_mode
        self.image_size = int(image_size)
        self.max_steps = int(max_steps)
        self.observation_space = gym.spaces.Box(0, 255, (self.image_size, self.image_size, 3), np.uint8)
        limit = np.array([MAX_LINEAR, MAX_LINEAR, MAX_ANGULAR], np.float32)
        self.action_space = gym.spaces.Box(-limit, limit, dtype=np.float32)
        self.world = World(self.image_size)
        self._judge: Task | None = None
        self._frame: np.ndarray | None = None
        self.instruction = ""

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = options or {}
        scene_seed = options.get("scene_seed")
        if scene_seed is None:
            scene_seed = int(self.np_random.integers(2**62))
        instruction = options.get("instruction")
        if instruction is None:
            instruction = sample_instruction(SIDES[int(self.np_random.integers(2))], self.np_random,
                                             target=self.task.target)
        self.instruction = str(instruction)
        self.scene = self.preset.sample(int(scene_seed))
        self.world.reset(self.scene)
        self._judge = self.task.judge(self.world, SUCCESS_RADIUS, self.max_steps,
                                      side=side_of(self.instruction, self.task.target))
        self._frame = self.world.render()
        info = self._info(collision=False, success=False)
        return self._frame.copy(), info

    def step(self, action):
        if self._judge is None:
            raise RuntimeError("call reset() before step()")
        before = self._judge.distance_to_target()
        outcome = self._judge.step(np.asarray(action, np.float32))
        self._frame = self.world.render()
        reward = before - self._judge.distance_to_target()
        reward += 1.0 if outcome.success else -1.0 if outcome.collision else 0.0
        info = self._info(outcome.collision, outcome.success)
        terminated = outcome.success or outcome.collision or outcome.wrong_target
        return self._frame.copy(), float(reward), terminated, outcome.timeout, info

    def _info(self, collision: bool, success: bool) -> dict[str, Any]:
        return {
            "is_success": success,
            "collision": collision,
            "passed_side": self._judge.passed_side if self._judge else None,
            "instruction": self.instruction,
            "side": side_of(self.instruction, self.task.target),
            "scene_seed": self.scene.seed,
            "task": self.task_name,
            "scenes": self.scenes,
            "pose": self.world.pose,
        }

    def render(self):
        if self.render_mode == "rgb_array" and self._frame is not None:
            return self._frame.copy()
        return None

    def close(self) -> None:
        self.world.close()
