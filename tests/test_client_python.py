"""The thin robot client (``clients/python``, import name ``mobile_vla_client``).

In this interpreter (imported from the source folder), and installed alone into a fresh virtual
environment without torch, which needs the package registry for numpy, msgpack and websockets:
when it is unreachable the test fails saying so, unless ``MOBILE_VLA_OFFLINE_TESTS=1`` (then it
is skipped, saying so).
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from mobile_vla.serve.fake import FakePolicy
from mobile_vla.serve.server import ServerConfig, serve_in_thread
from serve_fixtures import LEFT, RIGHT, make_tls_files

CLIENT_DIR = Path(__file__).resolve().parents[1] / "clients" / "python"
TOKEN = "client-token"

sys.path.insert(0, str(CLIENT_DIR))
from mobile_vla_client import PolicyClient, RemoteError  # noqa: E402


def seeded_frames(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def server(tls):
    config = ServerConfig(port=0, token=TOKEN, tls_cert=tls["cert"], tls_key=tls["key"])
    with serve_in_thread(FakePolicy(), config) as running:
        yield running


def test_sources_are_python_3_8_syntax():
    for path in sorted((CLIENT_DIR / "mobile_vla_client").glob("*.py")):
        ast.parse(path.read_text(), str(path), feature_version=(3, 8))


def test_reset_step_infer_and_errors(server, tls):
    policy = FakePolicy()
    with PolicyClient(server.url, token=TOKEN, ca_file=tls["ca"]) as client:
        assert client.metadata["chunk_size"] == 10 and client.metadata["auth_required"] is False
        client.reset(LEFT)
        local = policy.new_session(LEFT)
        for frame in seeded_frames(3):
            np.testing.assert_array_equal(client.step(frame), local.step(frame))
        assert "round_trip_ms" in client.last_timing and "model_ms" in client.last_timing
        out = client.infer({"image": seeded_frames(1)[0], "prompt": RIGHT})
        np.testing.assert_array_equal(out["actions"], policy.new_session(RIGHT).step(seeded_frames(1)[0]))
        with pytest.raises(RemoteError, match="dtype uint8"):
            client._request({"type": "step", "image": np.zeros((4, 4, 3), np.float32)})
        with pytest.raises(RemoteError, match="must have shape"):
            client.infer({"image": np.zeros((4, 4), np.uint8)})  # a text-frame error
        assert client.health()["status"] == "ok"  # the connection survived both
    with pytest.raises(RemoteError, match="HTTP 401"):
        PolicyClient(server.url, token="guess", ca_file=tls["ca"])
    with pytest.raises(RemoteError, match="CERTIFICATE_VERIFY_FAILED"):
        PolicyClient(server.url, token=TOKEN)


# ----------------------------------------------------------------------------- fresh venv

VENV_SCRIPT = textwrap.dedent(
    """
    import importlib.util, json, sys
    import numpy as np
    from mobile_vla_client import PolicyClient, RemoteError

    url, token, ca = sys.argv[1:4]
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (30, 40, 3), dtype=np.uint8) for _ in range(3)]
    out = {"torch": importlib.util.find_spec("torch") is not None,
           "mobile_vla": importlib.util.find_spec("mobile_vla") is not None,
           "python": list(sys.version_info[:2])}
    with PolicyClient(url, token=token, ca_file=ca) as client:
        client.reset("go around the box on the left and reach the cup")
        out["chunks"] = [client.step(f).tolist() for f in frames]
        try:
            client.step(np.zeros((4, 4), np.uint8))
        except RemoteError as exc:
            out["error"] = str(exc)
        out["after_error"] = client.step(frames[0]).tolist()
    print(json.dumps(out))
    """
)


def _registry() -> str:
    """The index pip would use (PIP_INDEX_URL or PyPI)."""
    return os.environ.get("PIP_INDEX_URL", "https://pypi.org/simple").rstrip("/")


def _registry_problem() -> str | None:
    try:
        with urllib.request.urlopen(f"{_registry()}/msgpack/", timeout=15) as response:
            response.read(1)
    except OSError as exc:
        return f"the package registry {_registry()} is unreachable ({exc})"
    return None


@pytest.mark.slow
def test_fresh_venv_without_torch_drives_a_server(server, tls, tmp_path):
    problem = _registry_problem()
    if problem is not None:
        if os.environ.get("MOBILE_VLA_OFFLINE_TESTS") == "1":
            pytest.skip(f"MOBILE_VLA_OFFLINE_TESTS=1: {problem}; the thin client's install is not tested")
        pytest.fail(f"{problem}: installing the thin client needs it (set MOBILE_VLA_OFFLINE_TESTS=1 to skip)")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    source = tmp_path / "client"
    shutil.copytree(CLIENT_DIR, source, ignore=shutil.ignore_patterns("build", "*.egg-info"))  # builds write beside it
    install = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              str(source)], capture_output=True, text=True)
    assert install.returncode == 0, f"pip install of the thin client failed:\n{install.stderr[-3000:]}"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = subprocess.run([python, "-c", VENV_SCRIPT, server.url, TOKEN, tls["ca"]], capture_output=True,
                         text=True, env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)
    assert out["torch"] is False and out["mobile_vla"] is False
    local = FakePolicy().new_session(LEFT)
    for chunk, frame in zip(out["chunks"], seeded_frames(3)):
        np.testing.assert_array_equal(np.asarray(chunk, np.float32), local.step(frame))
    assert "must have shape (H, W, 3)" in out["error"]
    np.testing.assert_array_equal(np.asarray(out["after_error"], np.float32), local.step(seeded_frames(1)[0]))
