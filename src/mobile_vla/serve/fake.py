"""A deterministic stand-in for :class:`mobile_vla.Policy`, for protocol tests and load benchmarks.

It satisfies the streaming contract (``metadata``, ``new_session(instruction)``,
``session.step(frame, channel_order) -> (N, 2)``, ``session.reset(instruction=None)``, and the
optional batched ``step_batch(sessions, frames, channel_orders)``) with no
model: each chunk is a cheap function of the instruction and of the session's last ``W``
frames, so a test can tell sessions, instructions, channel orders and histories apart.
"""

from __future__ import annotations

import time
import zlib
from collections import deque

import numpy as np

from mobile_vla.vocab.instructions import side_of


class FakeSession:
    def __init__(self, policy: FakePolicy, instruction: str):
        self._policy = policy
        self.reset(instruction)

    def reset(self, instruction: str | None = None) -> None:
        if instruction is not None:
            self.instruction = instruction
        self._features: deque[float] = deque(maxlen=self._policy.window_size)

    def step(self, frame: np.ndarray, channel_order: str = "rgb") -> np.ndarray:
        """``frame``: ``(H, W, 3)`` uint8 → chunk ``(N, 2)`` float32 "m/s"."""
        self._observe(self._feature(frame, channel_order))
        if self._policy.delay_s:
            time.sleep(self._policy.delay_s)  # stands in for model compute (releases the GIL like torch)
        return self._chunk()

    @staticmethod
    def _feature(frame: np.ndarray, channel_order: str) -> float:
        if channel_order not in ("rgb", "bgr"):
            raise ValueError(f"channel_order must be 'rgb' or 'bgr', got {channel_order!r}")
        frame = np.asarray(frame)
        if frame.dtype != np.uint8 or frame.ndim != 3 or frame.shape[2] != 3:
            raise ValueError(f"frame must be uint8 (H, W, 3), got {frame.dtype} {frame.shape}")
        rgb = frame if channel_order == "rgb" else frame[..., ::-1]
        # Red minus blue, so a wrong channel order changes the answer.
        return float(rgb[..., 0].mean() - rgb[..., 2].mean()) / 255.0

    def _observe(self, feature: float) -> None:
        self._features.append(feature)

    def _chunk(self) -> np.ndarray:
        return self._policy.chunk(self.instruction, list(self._features))


class FakePolicy:
    """``delay_s`` simulates inference time per step."""

    def __init__(
        self, chunk_size: int = 10, window_size: int = 8, image_size: int = 112, delay_s: float = 0.0
    ):
        self.chunk_size = chunk_size
        self.window_size = window_size
        self.image_size = image_size
        self.delay_s = delay_s
        self.processor = None

    @property
    def metadata(self) -> dict:
        return {
            "model_name": "fake-policy",
            "action_names": ["linear_x", "linear_y"],
            "action_units": ["m/s", "m/s"],
            "chunk_size": self.chunk_size,
            "window_size": self.window_size,
            "image_size": self.image_size,
            "instruction_format": "free text, e.g. 'go around the box on the left and reach the cup'",
        }

    def new_session(self, instruction: str) -> FakeSession:
        return FakeSession(self, instruction)

    def step_batch(self, sessions: list[FakeSession], frames: list[np.ndarray], channel_orders: list[str],
                   timing: dict[str, float] | None = None) -> list[np.ndarray]:
        """Each session's ``step`` at once, costing one ``delay_s`` (like a batched forward pass).

        Every frame is checked before any session changes, as the torch policy's batched step does.
        """
        if len({id(s) for s in sessions}) != len(sessions):
            raise ValueError("step_batch: a session may appear only once per batch")
        started = time.perf_counter()
        features = [FakeSession._feature(f, o) for f, o in zip(frames, channel_orders)]
        modelled = time.perf_counter()
        for session, feature in zip(sessions, features):
            session._observe(feature)
        if self.delay_s:
            time.sleep(self.delay_s)
        chunks = [session._chunk() for session in sessions]
        if timing is not None:
            timing["preprocess_ms"] = (modelled - started) * 1e3
            timing["model_ms"] = (time.perf_counter() - modelled) * 1e3
        return chunks

    def chunk(self, instruction: str, features: list[float]) -> np.ndarray:
        """The chunk ``(N, 2)`` for an instruction and a history of per-frame features (oldest first)."""
        side = {"left": 1.0, "right": -1.0}.get(side_of(instruction) or "", 0.0)
        code = (zlib.crc32(instruction.encode("utf-8")) % 1000) / 1000.0
        memory = sum((i + 1) * f for i, f in enumerate(features)) / self.window_size
        steps = np.arange(self.chunk_size, dtype=np.float64)
        linear_x = 0.2 + 0.05 * code + 0.1 * memory + 0.001 * steps
        linear_y = 0.15 * side + 0.01 * len(features) - 0.002 * steps
        return np.stack([linear_x, linear_y], axis=1).astype(np.float32)
