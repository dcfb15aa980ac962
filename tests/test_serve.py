"""The policy server over real loopback websockets, driven by a deterministic fake policy."""

from __future__ import annotations

import threading
import urllib.request

import msgpack
import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from mobile_vla.policy.executor import STRATEGIES, ChunkExecutor
from mobile_vla.serve import protocol
from mobile_vla.serve.client import PolicyClient, RemoteError, RemotePolicy
from mobile_vla.serve.fake import FakePolicy
from mobile_vla.serve.server import ServerConfig, serve_in_thread
from serve_fixtures import LEFT, RIGHT, alone, concurrently, frames

CAP = 64 * 1024
TOKEN = "s3cret-token"


class _GatedPolicy(FakePolicy):
    """Steps block until ``gate`` is set; instruction 'explode' raises inside the policy."""

    def __init__(self):
        super().__init__()
        self.gate = threading.Event()
        self.gate.set()

    def new_session(self, instruction: str):
        session = super().new_session(instruction)
        step = session.step

        def gated_step(frame, channel_order="rgb"):
            if session.instruction == "explode":
                raise RuntimeError("boom")
            self.gate.wait(timeout=30)
            return step(frame, channel_order)

        session.step = gated_step
        return session

    def step_batch(self, sessions, frames, channel_orders, timing=None):
        if any(s.instruction == "explode" for s in sessions):
            raise RuntimeError("boom")
        self.gate.wait(timeout=30)
        return super().step_batch(sessions, frames, channel_orders, timing)


@pytest.fixture(scope="module")
def policy():
    return _GatedPolicy()


@pytest.fixture(scope="module")
def server(policy):
    with serve_in_thread(policy, ServerConfig(port=0, max_message_bytes=CAP, workers=2)) as running:
        yield running


@pytest.fixture(scope="module")
def auth_server():
    with serve_in_thread(FakePolicy(), ServerConfig(port=0, token=TOKEN)) as running:
        yield running


def open_raw(url: str, headers=None):
    ws = connect(url, compression=None, max_size=None, additional_headers=headers)
    return ws, protocol.unpack(ws.recv(timeout=10))


def ask(ws, payload: bytes | str):
    ws.send(payload)
    reply = ws.recv(timeout=10)
    return reply if isinstance(reply, str) else protocol.unpack(reply)


def msg(**fields) -> bytes:
    return protocol.pack(fields)


# ----------------------------------------------------------------------------- happy path


def test_handshake_carries_the_metadata(server):
    ws, handshake = open_raw(server.url)
    with ws:
        assert handshake["type"] == "handshake" and handshake["protocol"] == "mobile-vla"
        assert handshake["action_names"] == ["linear_x", "linear_y"]
        assert handshake["action_units"] == ["m/s", "m/s"]
        assert handshake["chunk_size"] == 10 and handshake["image_size"] == 112
        assert handshake["max_message_bytes"] == CAP and handshake["auth_required"] is False


def test_remote_session_equals_in_process_session(server, policy):
    local = policy.new_session(LEFT)
    with RemotePolicy(server.url) as remote:
        session = remote.new_session(LEFT)
        for i, frame in enumerate(frames(12)):
            order = "bgr" if i % 3 == 0 else "rgb"
            chunk = session.step(frame, channel_order=order)
            assert chunk.dtype == np.float32 and chunk.shape == (10, 2)
            np.testing.assert_array_equal(chunk, local.step(frame, channel_order=order))
        assert set(session.last_timing) >= {"infer_ms", "queue_ms", "round_trip_ms"}
        # reset clears history and may switch the instruction, like the in-process session
        session.reset(RIGHT)
        local.reset(RIGHT)
        frame = frames(1, seed=5)[0]
        np.testing.assert_array_equal(session.step(frame), local.step(frame))


def test_two_clients_with_different_instructions_are_isolated(server, policy):
    """Interleaved concurrent clients each get exactly what they would get alone."""
    plan = {LEFT: frames(10, seed=1), RIGHT: frames(10, seed=2)}
    expected = alone(policy, plan)
    got = concurrently(server.url, plan, timeout=60)
    for instruction in plan:
        for remote_chunk, local_chunk in zip(got[instruction], expected[instruction]):
            np.testing.assert_array_equal(remote_chunk, local_chunk)
    assert not np.array_equal(got[LEFT][-1], got[RIGHT][-1])


def test_event_loop_answers_while_inference_runs(server, policy):
    """A client blocked in inference does not hold up another client's health check."""
    slow, _ = open_raw(server.url)
    fast, _ = open_raw(server.url)
    with slow, fast:
        assert ask(slow, msg(type="reset", instruction=LEFT))["ok"] is True
        policy.gate.clear()
        try:
            slow.send(msg(type="step", image=frames(1)[0]))
            health = ask(fast, msg(type="health"))
            assert health["status"] == "ok" and health["connections"] >= 2
            with pytest.raises(TimeoutError):
                slow.recv(timeout=0.05)  # still inside the gated step
        finally:
            policy.gate.set()
        assert protocol.unpack(slow.recv(timeout=10))["type"] == "actions"


def test_openpi_style_observation_resets_when_prompt_changes(server, policy):
    ws, _ = open_raw(server.url)
    seq = frames(4, seed=3)
    with ws:
        first = [ask(ws, msg(image=f, prompt=LEFT)) for f in seq[:3]]
        assert first[-1]["actions"].shape == (10, 2) and "infer_ms" in first[-1]["server_timing"]
        switched = ask(ws, msg(image=seq[3], prompt=RIGHT))["actions"]
        no_prompt = ask(ws, msg(image=seq[0]))["actions"]  # continues the RIGHT session
    local = policy.new_session(LEFT)
    expected = [local.step(f) for f in seq[:3]]
    np.testing.assert_array_equal(first[-1]["actions"], expected[-1])
    local = policy.new_session(RIGHT)
    np.testing.assert_array_equal(switched, local.step(seq[3]))
    np.testing.assert_array_equal(no_prompt, local.step(seq[0]))


def test_step_echoes_timestamp_and_http_health_check(server):
    ws, _ = open_raw(server.url)
    with ws:
        ask(ws, msg(type="reset", instruction=LEFT))
        assert ask(ws, msg(type="step", image=frames(1)[0], timestamp=12.5))["timestamp"] == 12.5
    http_url = server.url.replace("ws://", "http://") + "/healthz"
    with urllib.request.urlopen(http_url, timeout=10) as response:
        assert response.status == 200 and response.read() == b"OK\n"


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_policy_client_executes_chunks_like_eval(server, policy, strategy):
    client = PolicyClient(RemotePolicy(server.url), strategy=strategy)
    local, executor = policy.new_session(RIGHT), ChunkExecutor(strategy)
    client.reset(RIGHT)
    try:
        for frame in frames(12, seed=4):
            command = client.act(frame)
            assert command.shape == (3,) and command[2] == 0.0
            np.testing.assert_array_equal(command[:2], executor.act(local.step(frame)))
    finally:
        client.policy.close()


# ----------------------------------------------------------------------------- bad input

NAN_FRAME = np.full((4, 4, 3), np.nan, np.float32)
BAD_ARRAY = {b"__ndarray__": True, b"data": b"\x00" * 8, b"dtype": "|O", b"shape": [1]}

BAD_INPUT = {
    "not msgpack": (b"\xc1\xc1", "not valid msgpack"),
    "text frame": ("hello", "text frames are not accepted"),
    "not a map": (msgpack.packb([1, 2]), "must be a msgpack map, got list"),
    "type not a string": (msg(type=1), "'type' must be a string"),
    "unknown type": (msg(type="teleport"), "unknown message type 'teleport'"),
    "reset without instruction": (msg(type="reset"), "missing field 'instruction'"),
    "instruction wrong type": (msg(type="reset", instruction=5), "'instruction' must be a string, got int"),
    "step before reset": (msg(type="step", image=np.zeros((8, 8, 3), np.uint8)), "step before reset"),
    "step without image": (msg(type="step"), "missing field 'image'"),
    "image not an array": (msg(type="step", image="pixels"), "must be a msgpack-numpy array"),
    "image wrong dtype": (msg(type="step", image=np.zeros((8, 8, 3), np.int16)), "dtype uint8, got int16"),
    "image wrong rank": (
        msg(type="step", image=np.zeros((8, 8), np.uint8)),
        "must have shape (H, W, 3), got (8, 8)",
    ),
    "image NaN": (msg(type="step", image=NAN_FRAME), "image: array contains NaN"),
    "NaN in another array": (
        msg(type="reset", instruction=LEFT, state=np.array([0.0, np.nan])),
        "state: array",
    ),
    "NaN timestamp": (msg(type="health", timestamp=float("nan")), "timestamp: nan is not a finite"),
    "object dtype": (msgpack.packb({"type": "step", "image": BAD_ARRAY}), "'|O' is not allowed"),
    "subarray dtype": (
        msgpack.packb({"type": "step", "image": {**BAD_ARRAY, b"dtype": "(-1,)i", b"data": b""}}),
        "image: unknown array dtype '(-1,)i'",
    ),
    "shape overflowing with zero elements": (
        msgpack.packb({"type": "step", "image": {**BAD_ARRAY, b"dtype": "|u1", b"data": b"",
                                                  b"shape": [2**62, 2**62, 0]}}),
        "image: array 'shape' must be",
    ),
    "channel order not a string": (
        msg(type="step", image=np.zeros((8, 8, 3), np.uint8), channel_order=np.zeros(3, np.uint8)),
        "'channel_order' must be one of",
    ),
    "bad channel order": (msg(type="step", image=np.zeros((8, 8, 3), np.uint8), channel_order="yuv"), "yuv"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_gets_an_error_and_the_connection_keeps_serving(server, case):
    payload, expected = BAD_INPUT[case]
    bystander = RemotePolicy(server.url).new_session(LEFT)
    ws, _ = open_raw(server.url)
    with ws:
        reply = ask(ws, payload)
        assert reply["type"] == "error"
        assert expected in reply["message"]
        # the same connection keeps serving
        assert ask(ws, msg(type="health"))["status"] == "ok"
        assert ask(ws, msg(type="reset", instruction=LEFT))["ok"] is True
        assert ask(ws, msg(type="step", image=frames(1)[0]))["actions"].shape == (10, 2)
    assert bystander.step(frames(1)[0]).shape == (10, 2)  # and so does everyone else
    bystander.close()


def test_step_before_reset_is_an_error_for_the_client_too(server):
    policy = RemotePolicy(server.url)
    with pytest.raises(RemoteError, match="step before reset"):
        policy._control.request({"type": "step", "image": frames(1)[0]})
    assert policy.health()["status"] == "ok"
    policy.close()


def test_failing_policy_is_reported_and_connection_survives(server):
    ws, _ = open_raw(server.url)
    with ws:
        ask(ws, msg(type="reset", instruction="explode"))
        reply = ask(ws, msg(type="step", image=frames(1)[0]))
        assert reply["type"] == "error" and "internal error: RuntimeError: boom" in reply["message"]
        ask(ws, msg(type="reset", instruction=LEFT))
        assert ask(ws, msg(type="step", image=frames(1)[0]))["type"] == "actions"


@pytest.mark.parametrize(
    "payload, expected",
    [
        (msg(prompt=LEFT), "needs an 'image' field"),
        (msg(image=np.zeros((8, 8), np.uint8), prompt=LEFT), "must have shape (H, W, 3)"),
        (msg(image=np.zeros((8, 8, 3), np.uint8)), "step before reset"),
    ],
)
def test_openpi_style_errors_come_back_as_text_frames(server, payload, expected):
    ws, _ = open_raw(server.url)
    with ws:
        reply = ask(ws, payload)
        assert isinstance(reply, str) and expected in reply
        assert ask(ws, msg(image=frames(1)[0], prompt=LEFT))["actions"].shape == (10, 2)


# ----------------------------------------------------------------------------- auth


def test_token_in_header_or_first_message_is_accepted(auth_server):
    for token_in in ("header", "message"):
        with RemotePolicy(auth_server.url, token=TOKEN, token_in=token_in) as remote:
            assert remote.new_session(LEFT).step(frames(1)[0]).shape == (10, 2)
    ws, handshake = open_raw(auth_server.url)
    with ws:
        assert handshake["auth_required"] is True
        assert ask(ws, msg(type="reset", instruction=LEFT, token=TOKEN))["ok"] is True
        assert ask(ws, msg(type="step", image=frames(1)[0]))["type"] == "actions"


@pytest.mark.parametrize(
    "first, expected",
    [
        (msg(type="reset", instruction=LEFT), "unauthorized (no token)"),
        (msg(type="auth", token="guess"), "unauthorized (wrong token)"),
        (msg(type="reset", instruction=LEFT, token="guess"), "unauthorized (wrong token)"),
    ],
)
def test_missing_or_wrong_token_is_refused_and_others_keep_working(auth_server, first, expected):
    good = RemotePolicy(auth_server.url, token=TOKEN).new_session(LEFT)
    ws, _ = open_raw(auth_server.url)
    with ws:
        reply = ask(ws, first)
        assert reply["type"] == "error" and expected in reply["message"]
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=10)
        assert info.value.rcvd.code == 1008
    assert good.step(frames(1)[0]).shape == (10, 2)
    good.close()


def test_token_after_the_first_message_does_not_count(auth_server):
    ws, _ = open_raw(auth_server.url)
    with ws:
        assert "unauthorized" in ask(ws, msg(type="health"))["message"]
        with pytest.raises(ConnectionClosed):
            ask(ws, msg(type="auth", token=TOKEN))


def test_wrong_header_is_refused_at_connect(auth_server):
    with pytest.raises(RemoteError, match="HTTP 401"):
        RemotePolicy(auth_server.url, token="guess")


def test_openpi_style_observation_without_token_gets_a_text_error(auth_server):
    ws, _ = open_raw(auth_server.url)
    with ws:
        reply = ask(ws, msg(image=frames(1, shape=(8, 8, 3))[0], prompt=LEFT))  # under the pre-auth cap
        assert isinstance(reply, str) and "unauthorized" in reply
