"""The closed-loop controller: a policy session plus a chunk executor, one command per step.

One class serves the simulator (rollouts, DAgger, ``eval-sim``) and the robot client
(``mobile_vla.serve.client.PolicyClient`` is this class), so a strategy behaves identically in
simulation and on the robot.

``policy`` is anything with ``new_session(instruction)`` whose sessions have ``reset`` and
``step(frame, channel_order) -> (N, 2)``: an in-process :class:`mobile_vla.Policy` or a
:class:`mobile_vla.serve.client.RemotePolicy`.
"""

from __future__ import annotations

import numpy as np

from mobile_vla.errors import MobileVLAError
from mobile_vla.policy.executor import DEFAULT_DECAY, DEFAULT_STRATEGY, ChunkExecutor


class PolicyController:
    """``reset(instruction)``, then ``act(frame_rgb) -> (3,)`` ``[linear_x, linear_y, angular_z]``.

    The policy is queried every control step, whatever the strategy, so the session's history
    sees every frame (as in training); the executor decides which prediction to execute.
    """

    def __init__(self, policy, strategy: str = DEFAULT_STRATEGY, decay: float = DEFAULT_DECAY):
        self.policy = policy
        self.executor = ChunkExecutor(strategy, decay)
        self.session = None

    def reset(self, instruction: str) -> None:
        if self.session is None:
            self.session = self.policy.new_session(instruction)
        else:
            self.session.reset(instruction)
        self.executor.reset()

    def act(self, obs_image_rgb: np.ndarray) -> np.ndarray:
        """``(H, W, 3)`` RGB uint8 → ``(3,)`` command in m/s, rad/s (the base does not rotate: 0)."""
        if self.session is None:
            raise MobileVLAError("act() called before reset(instruction)")
        command = self.executor.act(self.session.step(obs_image_rgb, channel_order="rgb"))
        executed = getattr(self.session, "executed", None)  # local sessions keep odometry; remote ones do not
        if executed is not None:
            executed(command)
        out = np.zeros(3, dtype=np.float32)
        out[: min(2, len(command))] = command[:2]
        return out

    @property
    def last_timing(self) -> dict[str, float]:
        """Server-side timing of the last step (remote sessions only)."""
        return getattr(self.session, "last_timing", {}) if self.session is not None else {}
