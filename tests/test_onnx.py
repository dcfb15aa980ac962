"""ONNX export and the ONNX Runtime policy backend: parity with torch, batching, int8, no torch at run time."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime", reason="the ecosystem extra (onnx, onnxruntime) is not installed")
pytest.importorskip("onnx", reason="the ecosystem extra (onnx, onnxruntime) is not installed")

from mobile_vla.cli import main  # noqa: E402
from mobile_vla.errors import MobileVLAError  # noqa: E402
from mobile_vla.policy.backends import load_policy  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LEFT = "Go around the box on the left and reach the cup"


def _checkpoint(directory: Path, loud_state_inputs: int = 0, **overrides: str) -> Path:
    """A small untrained checkpoint; ``loud_state_inputs``: how many of the head's last input
    features (the step and odometry inputs) get large LSTM weights, so that they change the chunk."""
    from mobile_vla.policy.checkpoint import build_model, save_checkpoint
    from mobile_vla.train.checkpoint import build_processor
    from mobile_vla.train.config import load_train_config

    config = load_train_config(ROOT / "configs" / "tiny.yaml", [
        f"data.episodes={directory}", "model.backbone.image_size=56", "model.backbone.latent_query_num=8",
        "model.head.window_size=4", "model.head.fwd_pred_next_n=3", "model.head.lstm_hidden=32",
        "model.head.mlp_hidden=32", *[f"{k}={v}" for k, v in overrides.items()]])
    processor = build_processor(config)
    processor.fit_action_stats(np.random.default_rng(0).normal(size=(50, 3)).astype(np.float32))
    model = build_model(config.model, processor).eval()
    import torch

    with torch.no_grad():  # non-trivial normalisation statistics, as after training
        model.feature_norm.running_mean.normal_(0, 0.5)
        model.feature_norm.running_var.uniform_(0.5, 2.0)
        if loud_state_inputs:
            model.action_head.lstm.weight_ih_l0[:, -loud_state_inputs:].normal_(0, 3.0)
    return save_checkpoint(directory / "ckpt", model, config, processor)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("onnx")
    ckpt = _checkpoint(root)
    out = root / "export"
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(out), "--quantize", "int8"]) == 0
    return ckpt, out


def _frames(n: int = 20, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, 48, 64, 3), dtype=np.uint8)


def test_export_layout_and_manifest(exported):
    _, out = exported
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["format"] == "mobile-vla-onnx" and manifest["window_size"] == 4
    for variant in ("fp32", "int8"):
        for graph in ("instruction", "frame", "head"):
            assert (out / manifest["variants"][variant][graph]).is_file()
    assert (out / "processor.json").is_file() and (out / "tokenizer").is_dir()


def test_streaming_episode_matches_torch_within_1e4(exported):
    ckpt, out = exported
    torch_policy, onnx_policy = load_policy(ckpt), load_policy(out)
    assert type(onnx_policy).__name__ == "OnnxPolicy"
    a, b = torch_policy.new_session(LEFT), onnx_policy.new_session(LEFT)
    worst = 0.0
    for t, frame in enumerate(_frames(20)):  # 20 steps: the window of 4 fills, then slides
        if t == 12:  # a switched instruction re-encodes it in both
            a.reset("Go around the box on the right and reach the cup")
            b.reset("Go around the box on the right and reach the cup")
        x, y = a.step(frame, "bgr"), b.step(frame, "bgr")
        assert y.shape == x.shape == (3, 2) and y.dtype == np.float32
        worst = max(worst, float(np.abs(x - y).max()))
    assert worst <= 1e-4
    assert b.history_length == 4


def test_graphs_take_a_batch_of_sessions(exported):
    _, out = exported
    policy = load_policy(out)
    tokens = policy.processor.token_arrays([LEFT, "Take the right path around the boxes to the cup", LEFT])
    pixels = policy.processor.pixel_values_np(_frames(3), "rgb")
    feats = policy.run("frame", pixel_values=pixels, **tokens)
    instr = policy.run("instruction", **tokens)
    assert feats.shape[0] == 3 and instr.shape[0] == 3
    window = np.stack([feats, feats], 1)  # (3, T=2, K', H)
    actions = policy.run("head", features=window, instruction=instr)
    assert actions.shape == (3, 3, 2)
    one = policy.run("head", features=window[1:2], instruction=instr[1:2])
    assert np.allclose(actions[1], one[0], atol=1e-5)


def test_step_batch_equals_each_session_alone(exported):
    """Sessions at different points of their episodes (histories 0, 2, 5 > W) and instructions."""
    _, out = exported
    policy = load_policy(out)
    instructions = [LEFT, "Take the right path around the boxes to the cup", LEFT]
    batched = [policy.new_session(i) for i in instructions]
    alone = [policy.new_session(i) for i in instructions]
    for b, history in enumerate((0, 2, 5)):
        for frame in _frames(history, seed=b + 1):
            batched[b].step(frame, "bgr")
            alone[b].step(frame, "bgr")
    frames = list(_frames(3, seed=9))
    timing: dict = {}
    chunks = policy.step_batch(batched, frames, ["bgr", "rgb", "bgr"], timing)
    for b, order in enumerate(["bgr", "rgb", "bgr"]):
        np.testing.assert_allclose(chunks[b], alone[b].step(frames[b], order), atol=1e-5)
        assert batched[b].history_length == alone[b].history_length
    assert timing["model_ms"] > 0
    with pytest.raises(MobileVLAError, match="only once"):
        policy.step_batch([batched[0], batched[0]], frames[:2], ["rgb", "rgb"])


def test_step_and_odometry_inputs_are_exported(tmp_path):
    """A head that reads each frame's step and odometry exports them as inputs of its graph: the
    same chunks as torch over an episode, alone and batched with sessions at other steps."""
    ckpt = _checkpoint(tmp_path, loud_state_inputs=3, **{"model.head.step_input": "true",
                                                         "model.head.odometry_input": "true"})
    out = tmp_path / "export"
    assert main(["export", "--checkpoint", str(ckpt), "--format", "onnx", "--out", str(out)]) == 0
    torch_policy, onnx_policy = load_policy(ckpt), load_policy(out)
    assert {"steps", "odometry"} <= onnx_policy._inputs["head"]
    assert onnx_policy.odometry_dt == torch_policy.odometry_dt
    a, b = torch_policy.new_session(LEFT), onnx_policy.new_session(LEFT)
    for frame in _frames(10):
        np.testing.assert_allclose(b.step(frame, "bgr"), a.step(frame, "bgr"), atol=1e-4)
    np.testing.assert_allclose(b.window_odometry(), a.window_odometry(), atol=1e-5)
    fresh, alone = onnx_policy.new_session(LEFT), onnx_policy.new_session(LEFT)
    frame = _frames(1, seed=3)[0]
    chunks = onnx_policy.step_batch([b, fresh], [frame, frame], ["bgr", "bgr"])
    np.testing.assert_allclose(chunks[0], a.step(frame, "bgr"), atol=1e-4)
    np.testing.assert_allclose(chunks[1], alone.step(frame, "bgr"), atol=1e-5)
    assert np.abs(chunks[0] - chunks[1]).max() > 1e-3  # same frame, other step and odometry


def test_int8_variant_is_chosen_at_load_time(exported, monkeypatch):
    _, out = exported
    monkeypatch.setenv("MOBILE_VLA_ONNX_VARIANT", "int8")
    policy = load_policy(out)
    assert policy.metadata["backend"] == "onnx-int8"
    chunk = policy.new_session(LEFT).step(_frames(1)[0])
    assert chunk.shape == (3, 2) and np.isfinite(chunk).all()
    monkeypatch.setenv("MOBILE_VLA_ONNX_VARIANT", "fp16")
    with pytest.raises(MobileVLAError, match="no 'fp16' variant"):
        load_policy(out)


def test_a_session_runs_with_torch_blocked(exported):
    _, out = exported
    code = (
        "import sys\n"
        "sys.modules['torch'] = None  # import torch now fails, and libraries see no torch installed\n"
        "import numpy as np\n"
        "from mobile_vla.policy.backends import load_policy\n"
        f"s = load_policy({str(out)!r}).new_session('Go around the box on the left and reach the cup')\n"
        "for _ in range(5):\n"
        "    chunk = s.step(np.zeros((48, 64, 3), np.uint8))\n"
        "assert chunk.shape == (3, 2)\n"
        "print('ok', any(m.startswith('torch') and sys.modules[m] is not None for m in sys.modules))\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "ok False"


def test_eval_sim_runs_the_export_and_prints_json_last(exported, capsys):
    _, out = exported
    assert main(["eval-sim", "--checkpoint", str(out), "--episodes", "2", "--json"]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    report = json.loads(last)
    assert report["overall"]["episodes"] == 2



def test_serve_runs_the_export(exported):
    """``mobile-vla serve --checkpoint EXPORT``: remote steps equal the in-process ONNX session's."""
    from mobile_vla.serve.client import RemotePolicy

    _, out = exported
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "mobile_vla.cli", "serve", "--checkpoint", str(out), "--port", "0",
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        lines: list[str] = []
        while not lines or lines[-1] != "}":  # the pretty-printed JSON object ends with a lone brace
            line = proc.stdout.readline()
            assert line, "server exited before listening"
            lines.append(line.rstrip("\n"))
        ready = json.loads("\n".join(lines))
        assert ready["backend"] == "onnx-fp32"
        frame = _frames(1, seed=3)[0]
        with RemotePolicy(ready["url"]) as remote:
            np.testing.assert_allclose(remote.new_session(LEFT).step(frame),
                                       load_policy(out).new_session(LEFT).step(frame), atol=1e-6, rtol=0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
