"""The policy contract: what every policy backend, the server and the closed-loop controller agree on.

A *policy* is loaded once and shared; a *session* is one robot's stream of frames under one
instruction. Sessions of one policy are independent: each keeps its own frame history, and
``reset`` clears it. The torch policy (:class:`mobile_vla.policy.streaming.Policy`), the test
stand-in (``mobile_vla.serve.fake.FakePolicy``), other registered backends and the remote
client (``mobile_vla.serve.client.RemotePolicy``) all satisfy it.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class PolicySession(Protocol):
    def reset(self, instruction: str | None = None) -> None:
        """Clear the frame history; optionally switch the instruction."""

    def step(self, frame: np.ndarray, channel_order: str = "rgb") -> np.ndarray:
        """One camera frame ``(H, W, 3)`` uint8 (any size) → action chunk ``(N, 2)`` float32, m/s.

        ``channel_order`` is ``"rgb"`` or ``"bgr"`` (the robot's camera).
        """


@runtime_checkable
class PolicyBackend(Protocol):
    @property
    def metadata(self) -> dict[str, Any]:
        """What a client needs to know: action names and units, chunk and window size, ..."""

    @property
    def window_size(self) -> int:
        """W: how many recent frames a session's step sees."""

    @property
    def chunk_size(self) -> int:
        """N: actions per predicted chunk."""

    def new_session(self, instruction: str) -> PolicySession:
        """An independent session under ``instruction`` (free text; may name no side)."""


@runtime_checkable
class BatchedPolicyBackend(PolicyBackend, Protocol):
    """A backend that can step several sessions in one forward pass (the server batches through it)."""

    def step_batch(self, sessions: list[PolicySession], frames: list[np.ndarray], channel_orders: list[str],
                   timing: dict[str, float] | None = None) -> list[np.ndarray]:
        """One step of each session (each keeps its own history) → one chunk ``(N, 2)`` per session.

        Results equal each session's own ``step`` (within float tolerance). ``timing``, when given,
        receives the split of the call in ms (e.g. ``preprocess_ms``, ``model_ms``).
        """
