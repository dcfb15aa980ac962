"""Same command, same seed, same machine: the same episodes, weights and report figures."""

from __future__ import annotations

import json
from pathlib import Path

from mobile_vla.cli import main

TINY = [  # the smallest model and budget that still runs every stage of the demo
    "model.backbone.text_dim=32", "model.backbone.text_layers=1", "model.backbone.text_heads=2",
    "model.backbone.vision_dim=32", "model.backbone.vision_layers=1", "model.backbone.vision_heads=2",
    "model.backbone.latent_query_num=4", "model.head.window_size=2", "model.head.fwd_pred_next_n=3",
    "model.head.lstm_hidden=16", "model.head.mlp_hidden=16", "data.batch_size=4", "data.val_fraction=0.34",
    "trainer.val_check_interval=2", "trainer.log_every_n_steps=1",
]
DEMO = ["num_scenes=2", "heldout_scenes=1", "workers=1", "train_steps=3", "dagger_rounds=1", "dagger_scenes=1",
        "dagger_steps=2", "eval_episodes=2", "heldout_episodes=0", "family_episodes=2",
        "train_overrides=[" + ",".join(TINY) + "]"]
WALL_CLOCK = ("wall_minutes", "timings_s")
PATHS = ("checkpoint", "figures", "config")  # name the output directory, which differs by design


def comparable(report: dict) -> dict:
    return {k: v for k, v in report.items() if k not in WALL_CLOCK + PATHS}


def files(root: Path, pattern: str) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob(pattern))}


def test_reduced_demo_twice_is_identical(tmp_path, capsys):
    runs = [tmp_path / "a", tmp_path / "b"]
    for out in runs:
        assert main(["demo", "--out", str(out), "--seed", "2", "--json", *DEMO]) == 0
        capsys.readouterr()
    a, b = (json.loads((out / "report.json").read_text()) for out in runs)
    assert comparable(a) == comparable(b)
    assert a["environment"]["torch_threads"] >= 1 and a["environment"]["packages"]["torch"]
    episodes = [files(out, "*.h5") for out in runs]
    assert episodes[0] and episodes[0] == episodes[1]  # collection, DAgger and held-out episodes
    for checkpoint in ("train_0/checkpoint", "train_1/checkpoint", "checkpoint"):  # every round's and the final
        weights = [(out / checkpoint / "model.safetensors").read_bytes() for out in runs]
        assert weights[0] == weights[1], checkpoint
    assert (runs[0] / "records.jsonl").read_text() == (runs[1] / "records.jsonl").read_text()

    # A crash after the last DAgger round (no report yet): the rerun reuses every trained round —
    # each round's settings must read the same as in the uninterrupted run — and reports the same.
    (runs[1] / "report.json").unlink()
    assert main(["demo", "--out", str(runs[1]), "--seed", "2", "--json", *DEMO]) == 0
    capsys.readouterr()
    assert comparable(json.loads((runs[1] / "report.json").read_text())) == comparable(a)
