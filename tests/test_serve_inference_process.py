"""The policy in a process of its own (serve/inference_process.py): same answers, same errors."""

from __future__ import annotations

import functools
import os
import signal

import numpy as np
import pytest

from mobile_vla.errors import MobileVLAError
from mobile_vla.serve.fake import FakePolicy
from mobile_vla.serve.inference_process import InferenceProcessDied, ProcessPolicy
from mobile_vla.serve.server import ServerConfig, host_policy, serve_in_thread
from serve_fixtures import LEFT, RIGHT, frames, lockstep


@pytest.fixture
def fake_in_process():
    policy = ProcessPolicy(functools.partial(FakePolicy, window_size=4), torch_threads=0)
    yield policy
    policy.close()


def test_sessions_in_the_child_answer_as_in_process(fake_in_process):
    """Interleaved sessions at different points of their episodes, batched and alone, with a reset."""
    local = FakePolicy(window_size=4)
    assert fake_in_process.metadata == local.metadata and fake_in_process.window_size == 4
    remote = [fake_in_process.new_session(LEFT), fake_in_process.new_session(RIGHT)]
    mirror = [local.new_session(LEFT), local.new_session(RIGHT)]
    seq = frames(9, seed=3)
    for frame in seq[:3]:  # the first session is 3 frames ahead
        np.testing.assert_array_equal(remote[0].step(frame), mirror[0].step(frame))
    for frame in seq[3:6]:
        got = fake_in_process.step_batch(remote, [frame, frame[..., ::-1].copy()], ["rgb", "bgr"])
        want = local.step_batch(mirror, [frame, frame[..., ::-1].copy()], ["rgb", "bgr"])
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)
    remote[1].reset(instruction=LEFT)
    mirror[1].reset(instruction=LEFT)
    timing: dict[str, float] = {}
    got = fake_in_process.step_batch(remote, seq[6:8], ["rgb", "rgb"], timing=timing)
    want = local.step_batch(mirror, seq[6:8], ["rgb", "rgb"])
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    assert set(timing) == {"preprocess_ms", "model_ms"}  # the child's split comes back


def test_bad_input_raises_the_same_error_and_changes_nothing(fake_in_process):
    session = fake_in_process.new_session(LEFT)
    mirror = FakePolicy(window_size=4).new_session(LEFT)
    first = frames(2, seed=4)
    np.testing.assert_array_equal(session.step(first[0]), mirror.step(first[0]))
    with pytest.raises(ValueError, match="frame must be uint8"):
        session.step(first[1].astype(np.float32))
    with pytest.raises(ValueError, match="channel_order"):
        session.step(first[1], channel_order="yuv")
    np.testing.assert_array_equal(session.step(first[1]), mirror.step(first[1]))  # history as before


def test_a_closed_session_is_forgotten_by_the_child(fake_in_process):
    session = fake_in_process.new_session(LEFT)
    session.step(frames(1)[0])
    session.close()
    with pytest.raises(MobileVLAError, match="has ended"):
        session.step(frames(1)[0])  # the child dropped it with the request that followed the close


class BrokenPolicy(FakePolicy):
    """Fails inside the model, as a bug would (spawned children import it from this module)."""

    def step_batch(self, sessions, frames, channel_orders, timing=None):
        raise KeyError("layer 3")


def test_a_bug_in_the_child_is_an_internal_error_with_the_traceback_in_the_log(caplog):
    policy = ProcessPolicy(BrokenPolicy, torch_threads=0)
    try:
        session = policy.new_session(LEFT)
        with pytest.raises(RuntimeError, match="inference process: KeyError: 'layer 3'") as raised:
            session.step(frames(1)[0])
        assert "Traceback" not in str(raised.value)  # what a client would be told
        assert any("Traceback" in r.getMessage() for r in caplog.records)
        assert policy.alive  # the child is still serving
    finally:
        policy.close()


def test_a_policy_that_fails_to_load_says_why():
    from mobile_vla.policy.backends import load_policy

    with pytest.raises(MobileVLAError, match="no policy backend reads this path"):
        ProcessPolicy(functools.partial(load_policy, "/nonexistent/checkpoint"), torch_threads=0)


def test_a_dead_child_is_reported_not_waited_for():
    policy = ProcessPolicy(FakePolicy, torch_threads=0)
    session = policy.new_session(LEFT)
    os.kill(policy.pid, signal.SIGKILL)
    with pytest.raises(InferenceProcessDied, match="exited"):
        session.step(frames(1)[0])
    policy.close()


def test_host_policy_follows_the_config():
    kept = host_policy(FakePolicy, ServerConfig())  # the default: in this process
    assert isinstance(kept, FakePolicy)
    hosted = host_policy(FakePolicy, ServerConfig(inference_process=True))
    try:
        assert isinstance(hosted, ProcessPolicy) and hosted.alive
    finally:
        hosted.close()
    assert not hosted.alive


def test_the_server_batches_a_torch_policy_in_its_process_and_answers_as_in_process(tmp_path):
    """The full path: frames resized on arrival in the server process (by the processor the child
    sent back), batched steps of concurrent sessions in the child, equal to in-process steps."""
    from mobile_vla import Policy
    from mobile_vla.policy.backends import load_policy
    from mobile_vla.train.checkpoint import init_checkpoint

    checkpoint = init_checkpoint(tmp_path / "tiny")
    local = Policy.from_checkpoint(checkpoint, device="cpu")
    plan = {LEFT: frames(4, seed=7, shape=(120, 160, 3)), RIGHT: frames(4, seed=8, shape=(96, 128, 3))}
    expected = {}
    for instruction, seq in plan.items():
        session = local.new_session(instruction)
        expected[instruction] = [session.step(f) for f in seq]

    config = ServerConfig(port=0, batch_window_ms=500, max_batch=8, inference_process=True)
    policy = host_policy(functools.partial(load_policy, checkpoint), config)
    assert isinstance(policy, ProcessPolicy) and policy.processor is not None
    try:
        with serve_in_thread(policy, config) as server:
            got, batch_sizes = lockstep(server.url, plan)
    finally:
        policy.close()
    for instruction in plan:
        np.testing.assert_allclose(np.stack(got[instruction]), np.stack(expected[instruction]), atol=1e-5, rtol=0)
    assert max(batch_sizes) > 1, batch_sizes
