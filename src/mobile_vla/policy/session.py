"""The streaming session every local backend shares: a window of cached per-frame features.

A step costs one frame's encoding plus the head over the cached window, whatever the window
size W is: the instruction is encoded once (at creation and on a switch), each frame once.
Backends say how to encode and run the head (:class:`StreamingSession`'s three hooks); the
history, ``reset`` and input checks live here. Nothing here imports torch.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np

from mobile_vla.errors import MobileVLAError
from mobile_vla.vocab.instructions import resolve_no_side


class StreamingSession:
    """One robot's stream of frames under one instruction (a :class:`PolicySession`).

    Subclasses implement ``_encode_instruction(instruction) -> (tokens, embedding or None)``,
    ``_encode_frame(frame, channel_order) -> (K', H) features`` and ``_chunk() -> (N, 2)`` m/s
    (the head over ``self._features``, oldest first, under ``self._instr``).
    """

    def __init__(self, policy: Any, instruction: str):
        self.policy = policy
        self._features: deque = deque(maxlen=policy.window_size)
        self._steps = 0  # frames since the last reset: the newest frame's control step is _steps - 1
        # Dead reckoning from the commands this session predicted (see data.odometry): the
        # displacement at the newest command, and each window frame's displacement when it was taken.
        self._odometry = np.zeros(2)
        self._command = np.zeros(2)  # the command the robot is taken to execute until the next frame
        self._frame_odometry: deque = deque(maxlen=policy.window_size)
        self._set_instruction(instruction)

    def _set_instruction(self, instruction: str) -> None:
        self.instruction = instruction  # what was asked; the model may be given its resolution
        # A deployment's no-side convention (load_policy(..., no_side_route=)): a request that
        # names no side is given to the model as that side's instruction, the checkpoint unchanged.
        self._tokens, self._instr = self._encode_instruction(resolve_no_side(instruction, self.policy.no_side_route))

    def reset(self, instruction: str | None = None) -> None:
        """Clear the frame history; optionally switch the instruction."""
        self._features.clear()
        self._steps = 0
        self._odometry = np.zeros(2)
        self._command = np.zeros(2)
        self._frame_odometry.clear()
        if instruction is not None:
            self._set_instruction(instruction)

    @property
    def history_length(self) -> int:
        return len(self._features)

    def step(self, frame: np.ndarray, channel_order: str = "rgb") -> np.ndarray:
        """One camera frame ``(H, W, 3)`` uint8 (any size) → the action chunk ``(N, 2)`` float32 in m/s."""
        if not isinstance(frame, np.ndarray):
            raise MobileVLAError(f"frame must be a numpy array, got {type(frame).__name__}")
        self._push(self._encode_frame(frame, channel_order))
        return self._commanded(self._chunk())

    def _push(self, feature: Any) -> None:
        """Add the newest frame's features to the window (every backend's step and step_batch)."""
        self._features.append(feature)
        self._frame_odometry.append(self._odometry.copy())
        self._steps += 1

    def _commanded(self, chunk: np.ndarray) -> np.ndarray:
        """Note the chunk ``(N, 2)`` m/s just returned: its first action drives the robot until the
        next frame (every backend's step and step_batch call this once per frame)."""
        self._command = np.asarray(chunk[0, :2], np.float64)
        self._odometry = self._odometry + self._command * self.policy.odometry_dt
        return chunk

    def executed(self, command: np.ndarray) -> None:
        """The robot executed ``command`` ``(>=2,)`` m/s since the newest frame, not the chunk's
        first action (e.g. a temporal ensemble of chunks): correct the odometry by the difference."""
        done = np.asarray(command, np.float64)[:2]
        self._odometry = self._odometry + (done - self._command) * self.policy.odometry_dt
        self._command = done

    def window_steps(self) -> np.ndarray:
        """The control step of each frame in the window ``(T,)`` int64, oldest first."""
        return np.arange(self._steps - len(self._features), self._steps, dtype=np.int64)

    def window_odometry(self) -> np.ndarray:
        """Each window frame's displacement (m) since the episode began ``(T, 2)`` float32, oldest first."""
        return np.array(list(self._frame_odometry), np.float32).reshape(-1, 2)

    def _encode_instruction(self, instruction: str) -> tuple[Any, Any]:
        raise NotImplementedError

    def _encode_frame(self, frame: np.ndarray, channel_order: str) -> Any:
        raise NotImplementedError

    def _chunk(self) -> np.ndarray:
        raise NotImplementedError


def check_batch(sessions: list[StreamingSession], frames: list[np.ndarray]) -> None:
    """What every backend's ``step_batch`` refuses before any session changes."""
    if len({id(s) for s in sessions}) != len(sessions):
        raise MobileVLAError("step_batch: a session may appear only once per batch")
    if not all(isinstance(f, np.ndarray) for f in frames):
        raise MobileVLAError("step_batch: every frame must be a numpy array")
