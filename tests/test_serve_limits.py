"""The server's limits (connections, sizes, timeouts, queue), SIGTERM draining and TLS."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from mobile_vla.serve import protocol
from mobile_vla.serve.client import RemoteError, RemotePolicy
from mobile_vla.serve.fake import FakePolicy
from mobile_vla.serve.server import ServerConfig, serve_in_thread
from serve_fixtures import LEFT, eventually, frames, make_tls_files

TOKEN = "limits-token"


def open_raw(url: str, headers=None, **kwargs):
    ws = connect(url, compression=None, max_size=None, additional_headers=headers, **kwargs)
    return ws, protocol.unpack(ws.recv(timeout=10))


def ask(ws, fields: dict):
    ws.send(protocol.pack(fields))
    reply = ws.recv(timeout=10)
    return reply if isinstance(reply, str) else protocol.unpack(reply)


def closed_with(ws) -> tuple[int, str]:
    """Wait for the server to close ``ws``; its close code and reason."""
    with pytest.raises(ConnectionClosed) as info:
        while True:
            ws.recv(timeout=10)
    return info.value.rcvd.code, info.value.rcvd.reason


class _Gated(FakePolicy):
    """Batched steps wait for ``gate``; ``started`` is set once one is inside the model."""

    def __init__(self):
        super().__init__()
        self.gate, self.started = threading.Event(), threading.Event()

    def step_batch(self, sessions, frames, channel_orders, timing=None):
        self.started.set()
        self.gate.wait(timeout=30)
        return super().step_batch(sessions, frames, channel_orders, timing)


def test_excess_connections_are_refused_with_a_reason():
    with serve_in_thread(FakePolicy(), ServerConfig(port=0, max_connections=2)) as server:
        first, _ = open_raw(server.url)
        second, _ = open_raw(server.url)
        with first, second:
            third = connect(server.url, compression=None)
            code, reason = closed_with(third)
            assert code == 1013 and "server full: 2 connections" in reason
            with pytest.raises(RemoteError, match="server full"):
                RemotePolicy(server.url)
        assert eventually(lambda: server.server.health()["connections"] == 0)
        with RemotePolicy(server.url) as remote:  # a slot is free again
            assert remote.new_session(LEFT).step(frames(1)[0]).shape == (10, 2)


def test_the_message_cap_is_enforced_by_the_transport():
    cap = 32 * 1024
    with serve_in_thread(FakePolicy(), ServerConfig(port=0, max_message_bytes=cap)) as server:
        ws, _ = open_raw(server.url)
        with ws:
            ask(ws, {"type": "reset", "instruction": LEFT})
            fits = {"type": "step", "image": np.zeros((100, 100, 3), np.uint8)}  # 30 kB
            assert len(protocol.pack(fits)) <= cap and ask(ws, fits)["type"] == "actions"
            ws.send(protocol.pack({"type": "step", "image": np.zeros((106, 106, 3), np.uint8)}))  # 33.7 kB
            code, reason = closed_with(ws)
        assert code == 1009 and "exceeds limit" in reason


def test_before_authentication_only_small_messages_are_parsed_and_time_is_limited():
    config = ServerConfig(port=0, token=TOKEN, preauth_max_bytes=1024, auth_timeout_s=0.5)
    with serve_in_thread(FakePolicy(), config) as server:
        ws, handshake = open_raw(server.url)
        with ws:
            assert handshake["auth_required"] is True
            ws.send(protocol.pack({"type": "reset", "instruction": LEFT, "pad": b"x" * 2000}))
            code, _ = closed_with(ws)
        assert code == 1009
        ws, _ = open_raw(server.url)
        with ws:  # says nothing: closed once the authentication time is up
            code, reason = closed_with(ws)
        assert code == 1008 and "authentication timeout" in reason
        ws, _ = open_raw(server.url)
        with ws:  # authenticated by its first message: then full-size frames pass, and no timeout
            assert ask(ws, {"type": "auth", "token": TOKEN})["ok"] is True
            ask(ws, {"type": "reset", "instruction": LEFT})
            time.sleep(0.7)
            assert ask(ws, {"type": "step", "image": frames(1, shape=(120, 160, 3))[0]})["type"] == "actions"
        with RemotePolicy(server.url, token=TOKEN) as remote:  # the header authenticates at connect
            assert remote.new_session(LEFT).step(frames(1, shape=(120, 160, 3))[0]).shape == (10, 2)


def test_an_idle_connection_ends_its_session():
    with serve_in_thread(FakePolicy(), ServerConfig(port=0, idle_timeout_s=1.0)) as server:
        ws, _ = open_raw(server.url)
        with ws:
            ask(ws, {"type": "reset", "instruction": LEFT})
            for _ in range(4):  # active: kept open past the timeout
                time.sleep(0.4)
                ask(ws, {"type": "step", "image": frames(1)[0]})
            code, reason = closed_with(ws)
        assert code == 1000 and "idle for 1 s: session ended" in reason
        assert eventually(lambda: server.server.health()["sessions"] == 0)


def test_a_full_queue_answers_overloaded():
    policy = _Gated()
    config = ServerConfig(port=0, max_queue=1, batch_window_ms=0)
    with serve_in_thread(policy, config) as server:
        sockets = [open_raw(server.url)[0] for _ in range(3)]
        try:
            for ws in sockets:
                ask(ws, {"type": "reset", "instruction": LEFT})
            step = protocol.pack({"type": "step", "image": frames(1)[0]})
            sockets[0].send(step)  # computing (gated)
            assert policy.started.wait(timeout=10)
            sockets[1].send(step)  # queued: the queue is full
            assert eventually(lambda: server.server.health()["queued"] == 1)
            reply = ask(sockets[2], {"type": "step", "image": frames(1)[0]})
            assert reply["type"] == "error" and reply["code"] == "overloaded"
            assert reply["message"].startswith("overloaded:")
            observation = ask(sockets[2], {"image": frames(1)[0]})  # openpi style: a text frame
            assert isinstance(observation, str) and observation.startswith("overloaded:")
            policy.gate.set()
            for ws in sockets[:2]:
                assert protocol.unpack(ws.recv(timeout=10))["type"] == "actions"
            assert ask(sockets[2], {"type": "step", "image": frames(1)[0]})["type"] == "actions"
        finally:
            policy.gate.set()
            for ws in sockets:
                ws.close()


SERVE_SCRIPT = textwrap.dedent(
    """
    import functools, json, sys
    from mobile_vla.serve.fake import FakePolicy
    from mobile_vla.serve.server import ServerConfig, host_policy, serve_forever
    config = ServerConfig(port=0, batch_window_ms=0, inference_process=sys.argv[1] == "process")
    policy = host_policy(functools.partial(FakePolicy, delay_s=1.0), config)
    try:
        serve_forever(policy, config, on_ready=lambda port: print(json.dumps({"port": port}), flush=True))
    finally:
        getattr(policy, "close", lambda: None)()
    print("stopped", flush=True)
    """
)


@pytest.mark.parametrize("where", ["thread", "process"])
def test_sigterm_drains_open_sessions(where):
    """SIGTERM to the server's process group (as systemd sends it) lets the step in flight finish,
    with the policy in the server process or in an inference process of its own."""
    proc = subprocess.Popen([sys.executable, "-c", SERVE_SCRIPT, where], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, start_new_session=True)
    try:
        url = f"ws://127.0.0.1:{json.loads(proc.stdout.readline())['port']}"
        busy, _ = open_raw(url)
        idle, _ = open_raw(url)
        with busy, idle:
            ask(busy, {"type": "reset", "instruction": LEFT})
            busy.send(protocol.pack({"type": "step", "image": frames(1)[0]}))
            assert eventually(lambda: ask(idle, {"type": "health"})["computing"] == 1)  # inside the 1 s step
            os.killpg(proc.pid, signal.SIGTERM)
            assert closed_with(idle) == (1001, "server shutting down")
            assert protocol.unpack(busy.recv(timeout=10))["type"] == "actions"  # its step finished
            assert closed_with(busy) == (1001, "server shutting down")
        assert proc.wait(timeout=20) == 0
        assert proc.stdout.read().strip() == "stopped"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ----------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


def test_tls_serves_wss_to_clients_that_trust_the_ca(tls):
    config = ServerConfig(port=0, token=TOKEN, tls_cert=tls["cert"], tls_key=tls["key"])
    policy = FakePolicy()
    with serve_in_thread(policy, config) as server:
        assert server.url.startswith("wss://")
        with RemotePolicy(server.url, token=TOKEN, ca_file=tls["ca"]) as remote:
            frame = frames(1)[0]
            np.testing.assert_array_equal(remote.new_session(LEFT).step(frame), policy.new_session(LEFT).step(frame))
        with pytest.raises(RemoteError, match="CERTIFICATE_VERIFY_FAILED"):
            RemotePolicy(server.url, token=TOKEN)  # the test CA is not a system CA
        with pytest.raises(RemoteError):
            RemotePolicy(server.url.replace("wss://", "ws://"), token=TOKEN, timeout_s=2)


def test_eval_sim_reaches_a_wss_server_with_tls_ca(tls, capsys):
    from mobile_vla.cli import main

    config = ServerConfig(port=0, tls_cert=tls["cert"], tls_key=tls["key"])
    with serve_in_thread(FakePolicy(image_size=64), config) as server:
        argv = ["eval-sim", "--server", server.url, "--episodes", "2", "--seed", "11", "--strategy", "chunk"]
        assert main([*argv, "--tls-ca", tls["ca"], "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        assert report["overall"]["episodes"] == 2
        assert main([*argv, "--json"]) != 0  # without the CA the server is not trusted
        assert "CERTIFICATE_VERIFY_FAILED" in capsys.readouterr().err


def test_serve_flags_and_their_documented_defaults():
    from mobile_vla.cli import build_parser
    from mobile_vla.commands.serve import server_config

    defaults = server_config(build_parser().parse_args(["serve", "--checkpoint", "ckpt"]))
    assert (defaults.max_connections, defaults.auth_timeout_s, defaults.preauth_max_bytes) == (64, 10.0, 4096)
    assert (defaults.idle_timeout_s, defaults.batch_window_ms, defaults.max_batch) == (300.0, 5.0, 16)
    assert defaults.scheme == "ws" and defaults.max_message_bytes == 16 * 1024 * 1024
    assert defaults.inference_process is False
    assert server_config(build_parser().parse_args(["serve", "--checkpoint", "c", "--inference-process"])).inference_process
    assert defaults.torch_threads == 1
    assert server_config(build_parser().parse_args(["serve", "--checkpoint", "c", "--torch-threads", "0"])).torch_threads == 0
    flags = ["serve", "--checkpoint", "ckpt", "--max-connections", "3", "--auth-timeout", "2", "--preauth-max-bytes",
             "512", "--idle-timeout", "0", "--max-queue", "5", "--batch-window-ms", "0", "--max-batch", "4",
             "--tls-cert", "c.pem", "--tls-key", "k.pem", "--drain-timeout", "1"]
    config = server_config(build_parser().parse_args(flags))
    assert (config.max_connections, config.auth_timeout_s, config.preauth_max_bytes, config.idle_timeout_s) == (
        3, 2.0, 512, 0.0)
    assert (config.max_queue, config.batch_window_ms, config.max_batch, config.drain_timeout_s) == (5, 0.0, 4, 1.0)
    assert config.scheme == "wss" and (config.tls_cert, config.tls_key) == ("c.pem", "k.pem")
    with pytest.raises(Exception, match="both a certificate and its key"):
        server_config(build_parser().parse_args(["serve", "--checkpoint", "ckpt", "--tls-cert", "c.pem"]))
