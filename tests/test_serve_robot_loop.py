"""The example robot loop and the client's recovery when replies stop."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from mobile_vla.serve.client import RemoteError, RemotePolicy
from mobile_vla.serve.fake import FakePolicy
from mobile_vla.serve.safety import VelocityLimits
from mobile_vla.serve.server import ServerConfig, serve_in_thread

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import robot_loop  # noqa: E402

LEFT = "go around the box on the left and reach the cup"


def test_robot_loop_bounds_commands_and_stops_at_the_end():
    with serve_in_thread(FakePolicy(), ServerConfig(port=0, token="t")) as server:
        base = robot_loop.run(
            server.url,
            LEFT,
            steps=6,
            rate=50,
            token="t",
            limits=VelocityLimits(max_speed=0.1, max_accel=None),
        )
    commands = np.stack(base.commands)
    assert len(commands) == 7  # one per tick + the final stop
    speeds = np.hypot(commands[:, 0], commands[:, 1])
    assert np.all(speeds <= 0.1 + 1e-6) and np.all(speeds[:6] > 0.09)  # the fake asks for > 0.1 m/s
    np.testing.assert_array_equal(commands[-1], 0.0)


def test_robot_loop_stops_the_base_when_replies_are_late():
    with serve_in_thread(FakePolicy(delay_s=0.3), ServerConfig(port=0)) as server:
        # the first reset is answered at once; every step is slower than the reply timeout
        base = robot_loop.run(server.url, LEFT, steps=2, rate=50, reply_timeout=0.1)
    np.testing.assert_array_equal(np.stack(base.commands), 0.0)


def test_session_reconnects_after_a_timeout_without_mixing_replies():
    policy = FakePolicy()
    frames = [np.full((8, 8, 3), v, np.uint8) for v in (10, 200, 60)]
    with serve_in_thread(policy, ServerConfig(port=0, workers=2)) as server:
        remote = RemotePolicy(server.url, timeout_s=0.1)
        session = remote.new_session(LEFT)
        session.step(frames[0])
        policy.delay_s = 0.3
        with pytest.raises(RemoteError, match="no reply within 0.1 s"):
            session.step(frames[1])
        policy.delay_s = 0.0
        chunk = session.step(frames[2])  # new connection, history restarted at this frame
        remote.close()
    np.testing.assert_array_equal(chunk, policy.new_session(LEFT).step(frames[2]))
