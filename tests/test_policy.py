"""Streaming Policy/Session: equals the batched window forward, sessions are independent."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mobile_vla import Policy
from mobile_vla.train.checkpoint import init_checkpoint
from mobile_vla.train.config import TrainConfig, train_config_from_dict
from model_fixtures import LEFT, RIGHT, small_model_config


def small_train_config(window: int, **head) -> TrainConfig:
    cfg = small_model_config(window=window, chunk=4)
    return train_config_from_dict({"model": {
        "backbone": {"image_size": cfg.backbone.image_size, "latent_query_num": cfg.backbone.latent_query_num},
        "head": {"window_size": window, "fwd_pred_next_n": 4, "lstm_hidden": 64, "mlp_hidden": 64, **head},
    }})


@pytest.fixture(scope="module", params=[(1, {}), (8, {}), (4, {"step_input": True}), (4, {"odometry_input": True})],
                ids=["w1", "w8", "w4-steps", "w4-odometry"])
def policy(request, tmp_path_factory):
    window, head = request.param
    directory = init_checkpoint(tmp_path_factory.mktemp("ckpt") / "checkpoint", small_train_config(window, **head))
    return Policy.from_checkpoint(directory)


def frames(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 255, (count, 48, 64, 3), dtype=np.uint8)


def test_streaming_equals_batched_window_forward(policy):
    W = policy.window_size
    stream = frames(W + 1)
    session = policy.new_session(LEFT)
    tokens = policy.processor.tokenize([LEFT])
    odometry = [np.zeros(2)]  # (2,) per frame: the commands returned so far, integrated
    for t, frame in enumerate(stream):
        chunk = session.step(frame)
        window = stream[max(0, t - W + 1): t + 1]  # the history the session holds (shorter at first)
        pixels = policy.processor.process_images(window, channel_order="rgb")[None]
        steps = torch.arange(max(0, t - W + 1), t + 1)[None]  # (1, T): as the dataset numbers them
        odo = torch.tensor(np.array(odometry[max(0, t - W + 1): t + 1]), dtype=torch.float32)[None]  # (1, T, 2)
        np.testing.assert_allclose(session.window_odometry(), odo[0].numpy(), atol=1e-6)
        with torch.no_grad():
            out = policy.model(pixels, tokens, instructions=[LEFT], steps=steps, odometry=odo)
        odometry.append(odometry[-1] + chunk[0] * policy.odometry_dt)
        expected = policy.processor.unnormalize_actions(out.actions[0, -1]).numpy()
        assert chunk.shape == (policy.chunk_size, 2) and chunk.dtype == np.float32
        np.testing.assert_allclose(chunk, expected, atol=1e-5, rtol=0)
        assert session.history_length == min(t + 1, W)


def test_sessions_are_independent_and_reset(policy):
    stream = frames(5, seed=1)
    a, b = policy.new_session(LEFT), policy.new_session(LEFT)
    outs_a = [a.step(f) for f in stream]
    b.step(frames(1, seed=9)[0])  # b's history must not leak into a fresh run of a
    a.reset()
    np.testing.assert_allclose(a.step(stream[0]), outs_a[0], atol=1e-6)
    a.reset(instruction=RIGHT)
    assert a.instruction == RIGHT
    assert np.abs(a.step(stream[0]) - outs_a[0]).max() > 1e-6


def test_channel_order_and_metadata(policy):
    frame = frames(1, seed=2)[0]
    rgb = policy.new_session(LEFT).step(frame, channel_order="rgb")
    bgr = policy.new_session(LEFT).step(frame[..., ::-1].copy(), channel_order="bgr")
    np.testing.assert_allclose(rgb, bgr, atol=1e-6)
    meta = policy.metadata
    assert meta["action_names"] == ["linear_x", "linear_y"] and meta["units"] == ["m/s", "m/s"]
    assert meta["chunk_size"] == 4 and meta["window_size"] == policy.window_size and meta["image_size"] == 56
    # untrained checkpoint: ±1.15 m/s statistics, outputs inside the Tanh-bounded physical range
    assert np.abs(rgb).max() <= 1.15 * 1.1 + 1e-5


def _script(seed: int, instruction: str, reset_at: int, new_instruction: str | None) -> list[tuple]:
    """A session's life: 6 steps with a reset (maybe to another instruction) before step ``reset_at``."""
    ops: list[tuple] = [("new", instruction)]
    for t, frame in enumerate(frames(6, seed)):
        if t == reset_at:
            ops.append(("reset", new_instruction))
        ops.append(("step", frame))
    return ops


def _run(policy, scripts: dict[str, list[tuple]], order: list[str]) -> dict[str, list[np.ndarray]]:
    """Execute the scripts' operations, taking the next one of session ``order[i]`` at turn i."""
    sessions, outputs, cursor = {}, {name: [] for name in scripts}, {name: 0 for name in scripts}
    for name in order:
        op, arg = scripts[name][cursor[name]]
        cursor[name] += 1
        if op == "new":
            sessions[name] = policy.new_session(arg)
        elif op == "reset":
            sessions[name].reset(instruction=arg)
        else:
            outputs[name].append(sessions[name].step(arg))
    assert all(cursor[n] == len(s) for n, s in scripts.items())
    return outputs


def test_interleaved_sessions_equal_each_alone(policy):
    """Two sessions stepped and reset in interleaved orders give what each gives alone."""
    scripts = {"a": _script(1, LEFT, 3, None), "b": _script(2, RIGHT, 2, LEFT)}
    alone = {name: _run(policy, {name: s}, [name] * len(s))[name] for name, s in scripts.items()}
    n_a, n_b = len(scripts["a"]), len(scripts["b"])
    rng = np.random.default_rng(0)
    orders = [["a", "b"] * n_a, ["b", "a"] * n_a, list(rng.permutation(["a"] * n_a + ["b"] * n_b))]
    for order in orders:
        together = _run(policy, scripts, _interleave(order, n_a, n_b))
        for name in scripts:
            for got, expected in zip(together[name], alone[name], strict=True):
                np.testing.assert_array_equal(got, expected)
    # with a window, history matters: frame 4 after frame 3 differs from frame 4 alone
    if policy.window_size > 1:
        fresh = _run(policy, {"a": [scripts["a"][0], scripts["a"][6]]}, ["a", "a"])["a"][0]
        assert not np.array_equal(alone["a"][4], fresh)


def _interleave(order: list[str], n_a: int, n_b: int) -> list[str]:
    """``order`` trimmed to ``n_a`` a's and ``n_b`` b's, the rest appended."""
    out, left = [], {"a": n_a, "b": n_b}
    for x in order:
        if left[x]:
            out.append(x)
            left[x] -= 1
    return out + ["a"] * left["a"] + ["b"] * left["b"]


def _batched_sessions_keep_their_state(policy, early, late, travel, frame, alone, missing: str) -> None:
    """``early`` fresh and ``late`` after ``travel``, stepped on ``frame`` in one batch, give what
    each gave alone (``alone``); the head refuses to run without the state input (``missing``)."""
    from mobile_vla.errors import MobileVLAError

    early.reset(), late.reset()
    for f in travel:
        late.step(f)
    together = policy.step_batch([early, late], [frame, frame], ["rgb", "rgb"])
    for got, expected in zip(together, alone, strict=True):
        np.testing.assert_allclose(got, expected, atol=1e-5)
    with pytest.raises(MobileVLAError, match=missing), torch.inference_mode():
        policy.model.head(torch.zeros(1, 1, policy.model.num_slots, policy.model.backbone.hidden_size), early._instr)


def test_step_input_reaches_the_action(tmp_path):
    """``head.step_input``: the same frame at another step of the episode gives another chunk;
    sessions at different steps batched together each get their own."""
    checkpoint = init_checkpoint(tmp_path / "checkpoint", small_train_config(1, step_input=True))
    policy = Policy.from_checkpoint(checkpoint)
    torch.nn.init.normal_(policy.model.action_head.lstm.weight_ih_l0[:, -1], std=1.0)  # make the step input count
    frame = frames(1, seed=4)[0]
    early, late = policy.new_session(LEFT), policy.new_session(LEFT)
    for f in frames(10, seed=5):
        late.step(f)
    assert late.window_steps().tolist() == [9]
    a, b = early.step(frame), late.step(frame)
    assert np.abs(a - b).max() > 1e-4
    _batched_sessions_keep_their_state(policy, early, late, frames(10, seed=5), frame, (a, b), "step index")


def test_odometry_input_reaches_the_action(tmp_path):
    """``head.odometry_input``: the same frame after other commands gives another chunk; a reset
    starts from (0, 0) again; sessions batched together each keep their own odometry."""
    checkpoint = init_checkpoint(tmp_path / "checkpoint", small_train_config(2, odometry_input=True))
    policy = Policy.from_checkpoint(checkpoint)
    torch.nn.init.normal_(policy.model.action_head.lstm.weight_ih_l0[:, -2:], std=3.0)  # make odometry count
    frame, travel = frames(1, seed=4)[0], frames(6, seed=5)
    early, late = policy.new_session(LEFT), policy.new_session(LEFT)
    chunks = [late.step(f) for f in travel]
    expected = sum(c[0] for c in chunks) * policy.odometry_dt  # each chunk's first command, held one period
    a, b = early.step(frame), late.step(frame)
    np.testing.assert_allclose(late.window_odometry()[-1], expected, atol=1e-5)
    assert early.window_odometry().tolist() == [[0.0, 0.0]]
    assert np.abs(a - b).max() > 1e-4
    late.reset()
    np.testing.assert_allclose(late.step(frame), a, atol=1e-6)  # odometry starts over
    _batched_sessions_keep_their_state(policy, early, late, travel, frame, (a, b), "odometry")


def test_forward_only_odometry_ignores_the_sideways_offset(tmp_path):
    """``head.odometry_axes="x"``: the head reads how far the robot has gone forward, not how far
    sideways; an unknown axes value is a clear config error."""
    from mobile_vla.errors import ConfigError

    policy = Policy.from_checkpoint(init_checkpoint(
        tmp_path / "checkpoint", small_train_config(2, odometry_input=True, odometry_axes="x")))
    torch.nn.init.normal_(policy.model.action_head.lstm.weight_ih_l0[:, -1:], std=3.0)  # make it count
    session = policy.new_session(LEFT)
    session.step(frames(1, seed=4)[0])
    window = torch.stack(list(session._features)).unsqueeze(0)  # (1, 1, K', H)
    instr = session._instr

    def actions(x: float, y: float) -> torch.Tensor:
        with torch.inference_mode():
            return policy.model.head(window, instr, odometry=torch.tensor([[[x, y]]])).actions

    base = actions(1.0, 0.0)
    torch.testing.assert_close(actions(1.0, 1.5), base)  # sideways: ignored
    assert (actions(2.5, 0.0) - base).abs().max() > 1e-4  # forward: read
    with pytest.raises(ConfigError, match="odometry_axes"):
        small_train_config(2, odometry_input=True, odometry_axes="y")


def test_controller_tells_the_session_what_it_executed(tmp_path):
    """With temporal ensembling the executed command is not the newest chunk's first action: the
    controller corrects the session's odometry, so the next frame's odometry is what was driven."""
    from mobile_vla.policy.controller import PolicyController

    policy = Policy.from_checkpoint(init_checkpoint(tmp_path / "checkpoint", small_train_config(2, odometry_input=True)))
    controller = PolicyController(policy, strategy="ensemble")
    controller.reset(LEFT)
    driven = np.zeros(2)
    commands = [controller.act(f)[:2] for f in frames(4, seed=6)]
    controller.act(frames(1, seed=7)[0])  # the frame taken after the four commands were driven
    driven = np.sum(commands, 0) * policy.odometry_dt
    np.testing.assert_allclose(controller.session.window_odometry()[-1], driven, atol=1e-5)
    uncorrected = policy.new_session(LEFT)  # integrates each chunk's first action: not what was driven
    for f in [*frames(4, seed=6), frames(1, seed=7)[0]]:
        uncorrected.step(f)
    assert np.abs(uncorrected.window_odometry()[-1] - driven).max() > 1e-4


def test_averaged_checkpoint_holds_the_mean_weights_and_acts_between(tmp_path):
    """Two checkpoints of one model and processor average weight by weight into a loadable
    checkpoint that names its sources; checkpoints of different processors are refused."""
    from safetensors.torch import load_file

    from mobile_vla.errors import MobileVLAError
    from mobile_vla.policy.checkpoint import average_checkpoints, read_state

    cfg = small_train_config(1)
    a = init_checkpoint(tmp_path / "a" / "checkpoint", cfg, seed=0)
    b = init_checkpoint(tmp_path / "b" / "checkpoint", cfg, seed=1)
    mean = average_checkpoints([a, b], tmp_path / "mean" / "checkpoint")
    wa, wb, wm = (load_file(str(d / "model.safetensors")) for d in (a, b, mean))
    floats = [k for k, v in wm.items() if v.is_floating_point()]
    assert any(not torch.equal(wa[k], wb[k]) for k in floats)  # the seeds gave two different models
    for k in floats:
        torch.testing.assert_close(wm[k], (wa[k] + wb[k]) / 2)
    assert read_state(mean)["averaged_from"] == [str(a), str(b)]
    frame = frames(1, seed=3)[0]
    acts = [Policy.from_checkpoint(d).new_session(LEFT).step(frame) for d in (a, b, mean)]
    assert np.abs(acts[2] - acts[0]).max() > 1e-6 and np.abs(acts[2] - acts[1]).max() > 1e-6
    one = average_checkpoints([a], tmp_path / "one" / "checkpoint")  # the average of one is that one
    np.testing.assert_allclose(Policy.from_checkpoint(one).new_session(LEFT).step(frame), acts[0], atol=1e-6)

    wider = small_train_config(1)
    wider.processor.action_margin = 1.5  # other action statistics: other units
    c = init_checkpoint(tmp_path / "c" / "checkpoint", wider, seed=2)
    with pytest.raises(MobileVLAError, match=r"c/checkpoint: its processor .* differs"):
        average_checkpoints([c, a], tmp_path / "bad" / "checkpoint")
    assert not (tmp_path / "bad" / "checkpoint").exists()


def test_ensemble_weighs_older_chunks_by_the_decay():
    from mobile_vla.policy.executor import ChunkExecutor

    chunks = [np.full((3, 2), v, np.float32) + np.arange(3, dtype=np.float32)[:, None] for v in (0.0, 10.0, 20.0)]
    for decay in (0.0, 0.5, -0.3):
        executor = ChunkExecutor("ensemble", decay)
        out = [executor.act(c) for c in chunks]
        # Third step: the newest chunk's index 0 (20), the previous one's index 1 (11), the first's index 2 (2).
        w = np.exp(-decay * np.arange(3))
        np.testing.assert_allclose(out[-1], np.full(2, (w @ [20.0, 11.0, 2.0]) / w.sum()), rtol=1e-6)
    # A large decay trusts the newest chunk alone: the `first` strategy.
    steep, first = ChunkExecutor("ensemble", 60.0), ChunkExecutor("first")
    for c in chunks:
        np.testing.assert_array_equal(steep.act(c), first.act(c))
    with pytest.raises(ValueError, match="finite"):
        ChunkExecutor("ensemble", float("nan"))
