"""The server with a real (untrained, tiny) checkpoint: remote inference equals in-process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mobile_vla.serve.client import PolicyClient, RemoteError, RemotePolicy
from mobile_vla.serve.fake import FakePolicy
from mobile_vla.serve.server import ServerConfig, serve_in_thread
from serve_fixtures import alone, concurrently, eventually

LEFT = "go around the box on the left and reach the cup"
RIGHT = "Navigate around the obstacle on the right side and reach the cup"


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from mobile_vla.train.checkpoint import init_checkpoint

    return init_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="module")
def tiny_policy(tiny_checkpoint):
    from mobile_vla import Policy

    return Policy.from_checkpoint(tiny_checkpoint, device="cpu")


@pytest.fixture(scope="module")
def server(tiny_policy):
    with serve_in_thread(tiny_policy, ServerConfig(port=0, workers=2)) as running:
        yield running


def frames(n: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (72 + 8 * i, 96, 3), dtype=np.uint8) for i in range(n)]


def test_handshake_describes_the_checkpoint(server, tiny_policy):
    with RemotePolicy(server.url) as remote:
        meta = remote.metadata
    assert meta["model_name"] == tiny_policy.metadata["model"]
    assert meta["action_names"] == ["linear_x", "linear_y"] and meta["action_units"] == ["m/s", "m/s"]
    assert meta["chunk_size"] == tiny_policy.chunk_size and meta["window_size"] == tiny_policy.window_size
    assert meta["image_size"] == tiny_policy.processor.config.image_size


def test_remote_steps_equal_in_process_steps(server, tiny_policy):
    local = tiny_policy.new_session(LEFT)
    with RemotePolicy(server.url) as remote:
        session = remote.new_session(LEFT)
        for i, frame in enumerate(frames(4, seed=0)):
            order = "bgr" if i == 2 else "rgb"
            chunk = session.step(frame, channel_order=order)
            assert chunk.shape == (tiny_policy.chunk_size, 2)
            np.testing.assert_allclose(chunk, local.step(frame, channel_order=order), rtol=0, atol=1e-6)


def test_concurrent_sessions_match_each_alone(server, tiny_policy):
    plan = {LEFT: frames(3, seed=1), RIGHT: frames(3, seed=2)}
    expected = alone(tiny_policy, plan)
    got = concurrently(server.url, plan)
    for instruction in plan:
        np.testing.assert_allclose(np.stack(got[instruction]), np.stack(expected[instruction]), atol=1e-6, rtol=0)


def test_closed_loop_rollout_through_the_server_matches_in_process(server, tiny_policy):
    """What ``eval-sim --server`` runs: the same controller over a remote policy, same trajectory."""
    from mobile_vla.sim.rollout import run_episode
    from mobile_vla.sim.scene import sample_scene
    from mobile_vla.sim.world import World

    scene = sample_scene(3)
    results = []
    with (
        World(image_size=tiny_policy.processor.config.image_size) as world,
        RemotePolicy(server.url) as remote,
    ):
        for policy in (tiny_policy, remote):
            controller = PolicyClient(policy, strategy="ensemble")
            results.append(run_episode(world, scene, LEFT, controller, beta=0.0, render=False, max_steps=5))
    np.testing.assert_allclose(results[0].poses, results[1].poses, atol=1e-5, rtol=0)
    np.testing.assert_allclose(results[0].executed, results[1].executed, atol=1e-6, rtol=0)


def test_eval_closed_loop_report_is_the_same_through_the_server():
    """``evaluate_closed_loop`` (eval-sim) in-process vs through the server, fake policy, same seed."""
    from mobile_vla.eval.closed_loop import evaluate_closed_loop

    policy = FakePolicy(image_size=64)
    local = evaluate_closed_loop(policy, episodes=2, seed=11, strategy="chunk", progress=False)
    with serve_in_thread(policy) as running, RemotePolicy(running.url) as remote:
        served = evaluate_closed_loop(remote, episodes=2, seed=11, strategy="chunk", progress=False)
    assert served["overall"] == local["overall"]
    for a, b in zip(served["records"], local["records"]):
        assert a["instruction"] == b["instruction"] and a["steps"] == b["steps"]
        np.testing.assert_allclose(a["trajectory"], b["trajectory"], atol=1e-6)


def test_cli_serves_a_checkpoint_with_a_token(tiny_checkpoint, tiny_policy):
    """``mobile-vla serve --json`` prints one JSON object once listening, then serves; with
    ``--inference-process`` the policy runs in a child process, which SIGTERM ends too."""
    env = {**os.environ, "MOBILE_VLA_TOKEN": "cli-token"}
    cmd = [
        sys.executable,
        "-m",
        "mobile_vla.cli",
        "serve",
        "--checkpoint",
        str(tiny_checkpoint),
        "--port",
        "0",
    ]
    proc = subprocess.Popen(
        [*cmd, "--inference-process", "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env
    )
    try:
        lines = []
        while not lines or lines[-1] != "}":  # the pretty-printed JSON object ends with a lone brace
            line = proc.stdout.readline()
            assert line, "server exited before listening"
            lines.append(line.rstrip("\n"))
        ready = json.loads("\n".join(lines))
        assert ready["url"].startswith("ws://127.0.0.1:") and ready["chunk_size"] == tiny_policy.chunk_size
        with pytest.raises(RemoteError, match="unauthorized"):
            RemotePolicy(ready["url"]).new_session(LEFT)
        with RemotePolicy(ready["url"], token="cli-token") as remote:
            frame = frames(1, seed=9)[0]
            np.testing.assert_allclose(
                remote.new_session(LEFT).step(frame),
                tiny_policy.new_session(LEFT).step(frame),
                atol=1e-6,
                rtol=0,
            )
        children = _children(proc.pid)
        assert children != [], "the policy runs in an inference process of its own"
        inference = [pid for pid in children or [] if "spawn_main" in _cmdline(pid)]
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert children is None or len(inference) == 1
    assert not [pid for pid in inference if _running(pid)], "SIGTERM left the inference process behind"
    # multiprocessing's resource tracker, the other child, exits once it sees the server's end of
    # its pipe close: just after the server, not before.
    assert eventually(lambda: not [pid for pid in children or [] if _running(pid)]), "a child outlived the server"


def _children(pid: int) -> list[int] | None:
    """Child process ids of ``pid`` (None where the kernel does not list them in /proc)."""
    try:
        return [int(c) for t in Path(f"/proc/{pid}/task").iterdir() for c in (t / "children").read_text().split()]
    except OSError:
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")  # a zombie has exited
