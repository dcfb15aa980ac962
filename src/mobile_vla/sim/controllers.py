"""Controllers for rollouts: a trained :class:`mobile_vla.Policy` behind the controller protocol.

``PolicyController`` turns the policy's action chunks ``(N, 2)`` into one command per control
step with the shared :class:`~mobile_vla.inference.executor.ChunkExecutor` (so a strategy
behaves as on the robot); ``angular_z`` is 0 since the policy predicts linear velocities only.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from mobile_vla.inference.executor import ChunkExecutor


class PolicyController:
    def __init__(self, policy, strategy: str = "first"):
        self.policy = policy
        self.executor = ChunkExecutor(strategy)
        self.session = None

    @classmethod
    def from_checkpoint(cls, checkpoint: str, device: str = "cpu", strategy: str = "first") -> PolicyController:
        from mobile_vla import Policy  # lazy: imports torch

        return cls(Policy.from_checkpoint(checkpoint, device=device), strategy)

    def reset(self, instruction: str) -> None:
        if self.session is None:
            self.session = self.policy.new_session(instruction)
        else:
            self.session.reset(instruction=instruction)
        self.executor.reset()

    def act(self, obs_image_rgb: np.ndarray) -> np.ndarray:
        """``(S, S, 3)`` RGB uint8 → ``(3,)`` ``[linear_x, linear_y, 0]`` m/s."""
        chunk = self.session.step(obs_image_rgb, channel_order="rgb")
        linear = self.executor.act(chunk)
        return np.array([linear[0], linear[1], 0.0], np.float32)


@dataclasses.dataclass(frozen=True)
class PolicyControllerFactory:
    """Picklable recipe: each collection worker loads its own copy of the policy."""

    checkpoint: str
    strategy: str = "first"

    def __call__(self) -> PolicyController:
        import torch

        torch.set_num_threads(1)  # one thread per worker process: workers share the cores
        return PolicyController.from_checkpoint(self.checkpoint, strategy=self.strategy)
