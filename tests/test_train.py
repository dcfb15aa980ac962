"""Training: config strictness, checkpoint round trip, a short fit, resume, CLI, 2-process DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from data_fixtures import write_sim_pair
from mobile_vla.errors import ConfigError, MobileVLAError
from mobile_vla.model.vla import batch_tokens
from mobile_vla.policy.checkpoint import LIGHTNING_FILE, build_model, load_checkpoint, save_checkpoint
from mobile_vla.train.checkpoint import build_processor
from mobile_vla.train.config import load_train_config, train_config_from_dict
from mobile_vla.train.module import parameter_groups, warmup_cosine
from model_fixtures import LEFT, small_train_config, small_train_overrides, synthetic_batch

ROOT = Path(__file__).resolve().parents[1]
SMALL = small_train_overrides()


@pytest.fixture(scope="module")
def episodes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("episodes")
    for scene in range(4):
        write_sim_pair(root, scene, num_frames=8, size=56)
    return root


def test_shipped_configs_load_and_derive_the_processor():
    tiny = load_train_config(ROOT / "configs" / "tiny.yaml")
    assert (tiny.processor.image_size, tiny.processor.num_image_tokens) == (112, 16)
    full = load_train_config(ROOT / "configs" / "kosmos2.yaml")
    assert (full.processor.image_size, full.processor.num_image_tokens) == (224, 64)
    assert full.model.lora.enabled and full.model.lora.rank == 32


def test_config_rejects_unknown_keys_and_disagreement():
    with pytest.raises(ConfigError, match="model.head.lstm_hiden"):
        load_train_config(None, ["model.head.lstm_hiden=3"])
    with pytest.raises(ConfigError, match="processor.image_size"):
        load_train_config(None, ["processor.image_size=224"])


def test_warmup_cosine_schedule():
    assert warmup_cosine(0, 10, 100, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(9, 10, 100, 0.1) == pytest.approx(1.0)
    assert warmup_cosine(100, 10, 100, 0.1) == pytest.approx(0.1)
    assert warmup_cosine(55, 10, 100, 0.1) == pytest.approx(0.55)


def test_backbone_gets_its_own_learning_rate(episodes):
    config = small_train_config(episodes, "optim.lr=1e-3", "optim.backbone_lr=3e-4")
    model = build_model(config.model, build_processor(config))
    head, backbone = parameter_groups(model, config.optim)
    assert (head["lr"], backbone["lr"]) == (1e-3, 3e-4)
    grouped = [id(p) for g in (head, backbone) for p in g["params"]]
    trainable = [id(p) for p in model.parameters() if p.requires_grad]
    assert sorted(grouped) == sorted(trainable)  # every trainable parameter, exactly once
    assert {id(p) for p in model.backbone.parameters()} == {id(p) for p in backbone["params"]}
    config.optim.backbone_lr = None
    assert {g["lr"] for g in parameter_groups(model, config.optim)} == {1e-3}


def test_checkpoint_round_trip_gives_identical_outputs(tmp_path, episodes):
    config = small_train_config(episodes, "model.grounding.direction_aux=true")
    processor = build_processor(config)
    processor.fit_action_stats(torch.randn(50, 3).numpy())
    model = build_model(config.model, processor).eval()
    save_checkpoint(tmp_path / "ckpt", model, config, processor, {"step": 3})
    loaded, loaded_config, loaded_processor = load_checkpoint(tmp_path / "ckpt")
    loaded_config = train_config_from_dict(loaded_config)
    assert (loaded_config.model, loaded_config.optim, loaded_config.data) == (config.model, config.optim, config.data)
    assert loaded_processor.config.action_stats == processor.config.action_stats
    batch = synthetic_batch(processor, config.model, [LEFT])
    with torch.no_grad():
        a = model(batch["pixel_values"], batch_tokens(batch))
        b = loaded(batch["pixel_values"], batch_tokens(batch))
    torch.testing.assert_close(a.actions, b.actions, rtol=0, atol=0)
    # the published version is the only hidden directory: no temporaries left behind
    assert [p.name for p in tmp_path.glob(".ckpt*")] == [(tmp_path / "ckpt").resolve().name]


def test_load_rejects_mismatched_weights(tmp_path, episodes):
    config = small_train_config(episodes)
    processor = build_processor(config)
    processor.fit_action_stats(torch.randn(50, 3).numpy())
    save_checkpoint(tmp_path / "ckpt", build_model(config.model, processor), config, processor)
    cfg = json.loads((tmp_path / "ckpt" / "config.json").read_text())
    cfg["model"]["head"]["lstm_hidden"] = 48
    (tmp_path / "ckpt" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(MobileVLAError, match="model.safetensors"):
        load_checkpoint(tmp_path / "ckpt")


def test_fit_writes_checkpoint_then_resume_continues(tmp_path, episodes):
    from mobile_vla.train.api import train

    quiet = {"enable_progress_bar": False, "enable_model_summary": False}
    config = small_train_config(episodes, "trainer.max_steps=3")
    first = train(config, tmp_path / "run", trainer_kwargs=quiet)
    names = {p.name for p in first.iterdir()}
    assert {"model.safetensors", "config.json", "processor.json", "tokenizer", "trainer_state.json",
            LIGHTNING_FILE} <= names
    state = json.loads((first / "trainer_state.json").read_text())
    assert state["step"] == 3
    assert {"train/loss_velocity_act", "train/loss_counterfactual", "train/rmse_velocity", "train/mae_velocity",
            "val/loss_velocity_act", "val/rmse_velocity", "val/mae_velocity"} <= set(state["metrics"])
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    # the processor's statistics were fitted on the training split only, and travel with the checkpoint
    assert json.loads((first / "processor.json").read_text())["action_stats"] is not None
    # ... and so is its vocabulary: every token of the training instructions and their mirrors
    from mobile_vla.processing.processor import Processor
    from mobile_vla.vocab.instructions import canonical_instruction

    processor = Processor.load(first)
    known = set(processor.config.known_tokens)
    assert processor.config.unseen_tokens == "drop"
    for side in ("left", "right"):
        assert set(processor.text_ids(canonical_instruction(side))) <= known
    assert not set(processor.text_ids("Steer approach lane")) <= known

    config = small_train_config(episodes, "trainer.max_steps=5")
    second = train(config, tmp_path / "resumed", resume=first, trainer_kwargs=quiet)
    assert json.loads((second / "trainer_state.json").read_text())["step"] == 5
    assert known <= set(Processor.load(second).config.known_tokens)


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "mobile_vla.cli", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_unknown_key_is_a_one_line_error(capsys):
    from mobile_vla.cli import main

    assert main(["train", "--config", str(ROOT / "configs" / "tiny.yaml"), "model.head.nope=1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: unknown config key(s) model.head.nope")


@pytest.mark.slow
def test_cli_ddp_two_processes_on_cpu(tmp_path, episodes):
    overrides = [f"data.episodes={episodes}", *SMALL, "trainer.max_steps=2", "trainer.strategy=ddp",
                 "trainer.devices=2", "data.val_fraction=0.0"]
    result = _cli(["train", "--config", str(ROOT / "configs" / "tiny.yaml"), *overrides,
                   "--out", str(tmp_path / "ddp"), "--json"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout)
    assert out["step"] == 2
    assert Path(out["checkpoint"], "model.safetensors").is_file()
