"""Crashes lose nothing: no reader ever sees a partial file, and a rerun equals an uninterrupted run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from data_fixtures import write_sim_pair
from mobile_vla.data.episode import Episode, write_episode
from mobile_vla.data.formats import list_episodes

ROOT = Path(__file__).resolve().parents[1]


def test_a_failed_episode_write_leaves_nothing_a_reader_picks_up(tmp_path, monkeypatch):
    episode = Episode(images=np.zeros((3, 8, 8, 3), np.uint8), actions=np.zeros((3, 3), np.float32),
                      instruction="go around the box on the left and reach the cup", attrs={})
    real = h5py.File.create_dataset

    def crash_on_actions(self, name, *args, **kwargs):
        if name == "actions":
            raise OSError("disk full")  # the process dies half-way through the file
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.File, "create_dataset", crash_on_actions, raising=False)
    monkeypatch.setattr(h5py.Group, "create_dataset", crash_on_actions)
    with pytest.raises(OSError, match="disk full"):
        write_episode(tmp_path / "episode_20300101_000000_1box_hori_left_core_far.h5", episode)
    assert list_episodes(tmp_path) == [] and not list(tmp_path.iterdir())


def test_checkpoint_is_swapped_by_one_rename(tmp_path):
    """`checkpoint` is a symlink to a complete version; saving again replaces the target, never the name."""
    from mobile_vla.policy.checkpoint import load_checkpoint
    from mobile_vla.train.checkpoint import init_checkpoint
    from mobile_vla.train.config import load_train_config

    data = tmp_path / "data"
    write_sim_pair(data, 0, num_frames=4, size=28)
    config = load_train_config(ROOT / "configs" / "tiny.yaml", ["model.backbone.image_size=28",
                                                               "model.backbone.latent_query_num=4"])
    link = init_checkpoint(tmp_path / "checkpoint", config, episodes=data)
    first = link.resolve()
    assert link.is_symlink() and first.parent == tmp_path and first.name.startswith(".checkpoint.step-")
    init_checkpoint(tmp_path / "checkpoint", config, episodes=data, seed=1)
    assert link.resolve() != first and not first.exists()  # the old version is gone after the swap
    load_checkpoint(link)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name != "data") == sorted(["checkpoint", link.resolve().name])


def test_sigkill_during_collection_and_training(tmp_path):
    """Two random SIGKILLs in each of collection and training (benchmarks/kill_resume.py runs 10)."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "kill_resume.py"), "--kills", "2",
                          "--seed", "1", "--work", str(tmp_path)], capture_output=True, text=True, env=env,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout)
    assert result["kills"] >= 2, result  # at least some kills landed while the processes worked
    assert result["partial_files_seen"] == 0 and result["corrupt_checkpoints_seen"] == 0, result
    assert all(s["rerun_exit_code"] == 0 for s in result["stages"]), result
    assert result["episodes_identical"] and result["weights_identical"], result
    assert result["stray_temporaries"] == [], result
