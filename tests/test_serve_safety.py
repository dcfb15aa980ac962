"""Robot-side velocity limits and reply watchdog."""

from __future__ import annotations

import numpy as np
import pytest

from mobile_vla.serve.safety import VelocityLimiter, VelocityLimits, Watchdog


def test_speed_is_scaled_keeping_direction_and_angular_clipped():
    limiter = VelocityLimiter(VelocityLimits(max_speed=0.5, max_accel=None, max_angular=0.3))
    out = limiter(np.array([0.6, 0.8, -2.0]), dt=0.2)
    np.testing.assert_allclose(out, [0.3, 0.4, -0.3], rtol=1e-6)
    np.testing.assert_allclose(limiter(np.array([0.1, -0.2, 0.0]), dt=0.2), [0.1, -0.2, 0.0], rtol=1e-6)


def test_acceleration_is_limited_and_non_finite_commands_stop():
    limiter = VelocityLimiter(VelocityLimits(max_speed=1.0, max_accel=1.0))
    np.testing.assert_allclose(limiter(np.array([1.0, 0.0, 0.0]), dt=0.2), [0.2, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(limiter(np.array([1.0, 0.0, 0.0]), dt=0.2), [0.4, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(limiter(np.array([np.nan, 0.0, 0.0]), dt=1.0), [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="positive"):
        VelocityLimits(max_speed=0.0)


def test_watchdog_expires_without_replies():
    now = [100.0]
    watchdog = Watchdog(timeout_s=0.5, clock=lambda: now[0])
    assert watchdog.expired  # nothing received yet: do not move
    watchdog.feed()
    now[0] += 0.4
    assert not watchdog.expired
    now[0] += 0.2
    assert watchdog.expired
    watchdog.feed()
    assert not watchdog.expired
