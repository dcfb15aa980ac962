"""Robot-side safety: velocity limits and a reply watchdog, applied after the policy.

The server's chunks are model outputs; the robot must still bound them (a bad checkpoint or
a corrupted frame can ask for anything) and stop when replies stop coming.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

import numpy as np


@dataclasses.dataclass
class VelocityLimits:
    """``max_speed``: m/s on the (linear_x, linear_y) vector; ``max_accel``: m/s² between commands."""

    max_speed: float = 0.5
    max_accel: float | None = 1.0
    max_angular: float = 1.0

    def __post_init__(self):
        if (
            self.max_speed <= 0
            or self.max_angular < 0
            or (self.max_accel is not None and self.max_accel <= 0)
        ):
            raise ValueError(f"velocity limits must be positive: {self}")


class VelocityLimiter:
    """Bounds commands ``[linear_x, linear_y, angular_z]``; keeps the direction when scaling speed."""

    def __init__(self, limits: VelocityLimits):
        self.limits = limits
        self._last = np.zeros(3, np.float32)

    def reset(self) -> None:
        self._last = np.zeros(3, np.float32)

    def __call__(self, command: np.ndarray, dt: float) -> np.ndarray:
        """``command``: ``(3,)``; ``dt``: seconds since the previous command."""
        out = np.nan_to_num(np.asarray(command, np.float32).copy(), nan=0.0, posinf=0.0, neginf=0.0)
        speed = float(np.hypot(out[0], out[1]))
        if speed > self.limits.max_speed:
            out[:2] *= self.limits.max_speed / speed
        out[2] = np.clip(out[2], -self.limits.max_angular, self.limits.max_angular)
        if self.limits.max_accel is not None and dt > 0:
            delta = out[:2] - self._last[:2]
            step = float(np.hypot(delta[0], delta[1]))
            allowed = self.limits.max_accel * dt
            if step > allowed:
                out[:2] = self._last[:2] + delta * (allowed / step)
        self._last = out
        return out


class Watchdog:
    """Says when the last good reply is older than ``timeout_s``: the robot must then stop."""

    def __init__(self, timeout_s: float, clock: Callable[[], float] = time.monotonic):
        self.timeout_s = timeout_s
        self._clock = clock
        self._last: float | None = None

    def feed(self) -> None:
        """Call on every good reply."""
        self._last = self._clock()

    @property
    def expired(self) -> bool:
        return self._last is None or self._clock() - self._last > self.timeout_s
