"""Batched inference across sessions: the same chunks as each session alone, any mix of histories."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from mobile_vla.serve.batching import StepScheduler
from mobile_vla.serve.client import RemotePolicy
from mobile_vla.serve.fake import FakePolicy
from mobile_vla.serve.server import ServerConfig, serve_in_thread
from serve_fixtures import frames, lockstep

INSTRUCTIONS = [
    "go around the box on the left and reach the cup",
    "go around the box on the right and reach the cup",
    "Navigate around the obstacle on the right side and reach the cup",
    "pass the box on its left side, then reach the cup",
]


@pytest.fixture(scope="module")
def tiny_policy(tmp_path_factory):
    from mobile_vla import Policy
    from mobile_vla.train.checkpoint import init_checkpoint

    return Policy.from_checkpoint(init_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny"), device="cpu")


def varied_frames(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (40 + 8 * (i % 3), 64 + 16 * (i % 2), 3), dtype=np.uint8) for i in range(n)]


def test_step_batch_equals_each_session_alone(tiny_policy):
    """Different instructions, histories of 0, 2, 7 and 12 frames (past the window), both channel orders."""
    alone = [tiny_policy.new_session(i) for i in INSTRUCTIONS]
    batched = [tiny_policy.new_session(i) for i in INSTRUCTIONS]
    for k, warmup in enumerate([0, 2, 7, 12]):
        for frame in varied_frames(warmup, seed=k):
            alone[k].step(frame)
            batched[k].step(frame)
    for t in range(4):
        step_frames = varied_frames(4, seed=100 + t)
        orders = ["rgb", "bgr", "rgb", "bgr"]
        expected = [s.step(f, channel_order=o) for s, f, o in zip(alone, step_frames, orders)]
        timing: dict[str, float] = {}
        got = tiny_policy.step_batch(batched, step_frames, orders, timing=timing)
        for e, g in zip(expected, got):
            assert g.shape == e.shape and g.dtype == np.float32
            np.testing.assert_allclose(g, e, atol=1e-5, rtol=0)
        assert set(timing) == {"preprocess_ms", "model_ms"}
    assert [s.history_length for s in batched] == [s.history_length for s in alone]
    # a subset of the sessions, in another order, still matches
    subset = [batched[3], batched[0]]
    frame_pair = varied_frames(2, seed=7)
    got = tiny_policy.step_batch(subset, frame_pair, ["rgb", "rgb"])
    np.testing.assert_allclose(got[0], alone[3].step(frame_pair[0]), atol=1e-5, rtol=0)
    np.testing.assert_allclose(got[1], alone[0].step(frame_pair[1]), atol=1e-5, rtol=0)


def test_a_bad_frame_leaves_every_session_unchanged(tiny_policy):
    sessions = [tiny_policy.new_session(i) for i in INSTRUCTIONS[:2]]
    good = varied_frames(1, seed=3)[0]
    with pytest.raises(Exception, match="uint8"):
        tiny_policy.step_batch(sessions, [good, good.astype(np.float32)], ["rgb", "rgb"])
    assert [s.history_length for s in sessions] == [0, 0]


def test_concurrent_remote_sessions_are_batched_and_equal_in_process(tiny_policy):
    """Clients in lock-step with a wide window: steps run together, each equal to its own session."""
    plan = {instruction: varied_frames(5, seed=10 + k) for k, instruction in enumerate(INSTRUCTIONS)}
    head_start = {INSTRUCTIONS[1]: varied_frames(3, seed=50), INSTRUCTIONS[3]: varied_frames(9, seed=51)}
    expected = {}
    for instruction, seq in plan.items():
        local = tiny_policy.new_session(instruction)
        for frame in head_start.get(instruction, []):
            local.step(frame)
        expected[instruction] = [local.step(f) for f in seq]

    config = ServerConfig(port=0, batch_window_ms=500, max_batch=8)
    with serve_in_thread(tiny_policy, config) as server:
        got, batch_sizes = lockstep(server.url, plan, head_start)
        health = server.server.health()
    for instruction in plan:
        np.testing.assert_allclose(np.stack(got[instruction]), np.stack(expected[instruction]), atol=1e-5, rtol=0)
    assert max(batch_sizes) > 1, batch_sizes
    assert set(health["stage_totals_ms"]) == {"decode", "queue", "preprocess", "model", "encode"}


def test_a_lone_client_does_not_wait_for_the_window():
    """With a window far longer than the client's timeout, a lone session's steps still come back."""
    policy = FakePolicy()
    with serve_in_thread(policy, ServerConfig(port=0, batch_window_ms=60_000)) as server:
        with RemotePolicy(server.url, timeout_s=10) as remote:
            session = remote.new_session(INSTRUCTIONS[0])
            for frame in frames(5):
                session.step(frame)
                assert session.last_timing["batch_size"] == 1
            timing = session.last_timing
    assert {"decode_ms", "queue_ms", "preprocess_ms", "model_ms", "infer_ms"} <= set(timing)


def test_batching_off_runs_every_step_alone():
    policy = FakePolicy(delay_s=0.02)
    plan = {i: frames(4, seed=k) for k, i in enumerate(INSTRUCTIONS)}
    sizes = []

    def run(instruction: str, url: str) -> None:
        with RemotePolicy(url) as remote:
            session = remote.new_session(instruction)
            for frame in plan[instruction]:
                session.step(frame)
                sizes.append(session.last_timing["batch_size"])

    with serve_in_thread(policy, ServerConfig(port=0, batch_window_ms=0)) as server:
        threads = [threading.Thread(target=run, args=(i, server.url)) for i in plan]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    assert sizes == [1] * 16


def test_a_rejected_input_fails_only_its_own_step():
    """The scheduler retries a failed batch one step at a time: the others still get their chunks."""
    policy = FakePolicy()
    sessions = [policy.new_session(i) for i in INSTRUCTIONS[:3]]
    reference = [policy.new_session(i) for i in INSTRUCTIONS[:3]]
    good = frames(3, seed=4)
    bad = good[1].astype(np.float32)

    async def main():
        scheduler = StepScheduler(policy, window_s=5.0, max_batch=3)
        scheduler.start()
        try:
            return await asyncio.gather(
                scheduler.step(sessions[0], good[0], "rgb"),
                scheduler.step(sessions[1], bad, "rgb"),
                scheduler.step(sessions[2], good[2], "rgb"),
                return_exceptions=True,
            )
        finally:
            await scheduler.stop()

    results = asyncio.run(main())
    assert isinstance(results[1], ValueError)
    np.testing.assert_array_equal(results[0].actions, reference[0].step(good[0]))
    np.testing.assert_array_equal(results[2].actions, reference[2].step(good[2]))
    assert results[0].timing["batch_size"] == 1  # answered alone after the batch failed


def test_pace_says_when_a_session_is_due():
    from mobile_vla.serve.batching import ACTIVE_HORIZON_S, _Pace

    assert _Pace(stepped=100.0).due_within(100.1, 0.005)  # no pace known yet: expected
    assert not _Pace(stepped=100.0, in_flight=True).due_within(100.1, 10.0)  # its step is in flight
    assert not _Pace(stepped=100.0).due_within(100.0 + ACTIVE_HORIZON_S + 1, 10.0)  # gone quiet
    flat_out = _Pace(stepped=100.0, replied=100.01, pause_s=0.002)
    assert flat_out.due_within(100.011, 0.005)
    at_5_hz = _Pace(stepped=100.0, replied=100.03, pause_s=0.17)
    assert not at_5_hz.due_within(100.031, 0.005)  # between its ticks
    assert at_5_hz.due_within(100.197, 0.005)  # its next tick is within the window


async def _run_two_sessions(scenario):
    """Run ``scenario(scheduler, first, second, frame)`` on a FakePolicy scheduler with a 30 s window;
    the scenarios wait at most 20 s for a step, so one that sat out the window fails."""
    policy = FakePolicy()
    first, second = policy.new_session(INSTRUCTIONS[0]), policy.new_session(INSTRUCTIONS[1])
    scheduler = StepScheduler(policy, window_s=30.0, max_batch=8)
    scheduler.start()
    try:
        return await scenario(scheduler, first, second, frames(1)[0])
    finally:
        await scheduler.stop()


def test_a_lone_step_does_not_wait_for_a_session_between_its_ticks():
    """Another session is connected but not due for a minute: a step runs at once, not after the window."""

    async def scenario(scheduler, lone, paced, frame):
        await scheduler.step(paced, frame, "rgb")
        scheduler._paces[id(paced)].pause_s = 60.0  # as if it stepped once a minute
        return await asyncio.wait_for(scheduler.step(lone, frame, "rgb"), 20.0)

    assert asyncio.run(_run_two_sessions(scenario)).timing["batch_size"] == 1


def test_a_batch_waits_for_a_session_due_within_the_window():
    """A session that steps flat out and was just answered is waited for; the two steps run together."""

    async def scenario(scheduler, first, second, frame):
        # Both step once together (no pace known yet: each expects the other).
        await asyncio.gather(scheduler.step(first, frame, "rgb"), scheduler.step(second, frame, "rgb"))
        # Now `second` is due again at once (pause 0): `first`'s step waits for it.
        scheduler._paces[id(second)].pause_s = 0.0
        step_first = asyncio.ensure_future(scheduler.step(first, frame, "rgb"))
        await asyncio.sleep(0.3)
        assert not step_first.done()
        step_second = await asyncio.wait_for(scheduler.step(second, frame, "rgb"), 20.0)
        return await asyncio.wait_for(step_first, 20.0), step_second

    a, b = asyncio.run(_run_two_sessions(scenario))
    assert a.timing["batch_size"] == b.timing["batch_size"] == 2  # it waited for `second`


def test_frames_resized_on_arrival_give_the_same_chunks(tiny_policy):
    """The scheduler resizes frames on its own threads; the chunks equal each session stepping alone."""
    processor = tiny_policy.processor
    for frame in varied_frames(4, seed=21):
        for order in ("rgb", "bgr"):
            resized = processor.resize_frame(frame, order)
            np.testing.assert_array_equal(processor.resize_frame(resized, "rgb"), resized)
    alone = [tiny_policy.new_session(i) for i in INSTRUCTIONS]
    served = [tiny_policy.new_session(i) for i in INSTRUCTIONS]
    orders = ["rgb", "bgr", "rgb", "bgr"]

    async def main(step_frames):
        scheduler = StepScheduler(tiny_policy, window_s=0.5, max_batch=4)
        assert scheduler._prepare_pool is not None
        scheduler.start()
        try:
            return await asyncio.gather(*(scheduler.step(s, f, o) for s, f, o in zip(served, step_frames, orders)))
        finally:
            await scheduler.stop()

    for t in range(3):
        step_frames = varied_frames(4, seed=200 + t)
        expected = [s.step(f, channel_order=o) for s, f, o in zip(alone, step_frames, orders)]
        results = asyncio.run(main(step_frames))
        for e, r in zip(expected, results):
            np.testing.assert_allclose(r.actions, e, atol=1e-5, rtol=0)
            assert r.timing["preprocess_ms"] > 0


def test_torch_threads_default_and_validation():
    import torch

    from mobile_vla.errors import MobileVLAError
    from mobile_vla.serve.server import set_torch_threads

    assert ServerConfig().torch_threads == 1
    with pytest.raises(MobileVLAError, match="torch_threads"):
        ServerConfig(torch_threads=-1).validate()
    before = torch.get_num_threads()
    try:
        set_torch_threads(1)
        assert torch.get_num_threads() == 1
        set_torch_threads(0)  # 0 leaves torch's setting alone
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
