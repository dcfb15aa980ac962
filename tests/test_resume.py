"""Runs you can trust: fingerprinted output directories and resumes that continue exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from data_fixtures import write_sim_pair
from mobile_vla.fingerprint import FingerprintMismatch
from mobile_vla.policy.checkpoint import LIGHTNING_FILE, WEIGHTS_FILE, read_state
from model_fixtures import small_train_config

# dropout: the resumed run must also restore the random state
SMALL = ["optim.warmup_steps=2", "model.head.dropout=0.2"]
QUIET = {"enable_progress_bar": False, "enable_model_summary": False}


@pytest.fixture(scope="module")
def episodes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("episodes")
    for scene in range(4):
        write_sim_pair(root, scene, num_frames=6, size=56)
    return root


def config(episodes: Path, *extra: str):
    return small_train_config(episodes, *SMALL, *extra, window=2, val_check_interval=3)


def lightning_state(checkpoint: Path) -> dict:
    return torch.load(checkpoint / LIGHTNING_FILE, weights_only=False, map_location="cpu")


def test_resume_continues_exactly(tmp_path, episodes):
    """Weights, optimiser, schedule, data position and random state: stopped at 4 (mid-epoch) and
    continued to 9 (past an epoch boundary) equals 9 uninterrupted steps, bit for bit."""
    from mobile_vla.train.api import train

    whole = train(config(episodes, "trainer.max_steps=9", "optim.schedule_steps=9"), tmp_path / "a",
                  trainer_kwargs=QUIET)
    part = train(config(episodes, "trainer.max_steps=4", "optim.schedule_steps=9"), tmp_path / "b",
                 trainer_kwargs=QUIET)
    assert read_state(part)["step"] == 4
    assert (whole / WEIGHTS_FILE).read_bytes() != (part / WEIGHTS_FILE).read_bytes()
    continued = train(config(episodes, "trainer.max_steps=9", "optim.schedule_steps=9"), tmp_path / "b",
                      trainer_kwargs=QUIET)  # same directory, more steps: continues, not restarts
    assert read_state(continued)["step"] == 9
    assert (whole / WEIGHTS_FILE).read_bytes() == (continued / WEIGHTS_FILE).read_bytes()
    a, b = lightning_state(whole), lightning_state(continued)
    assert a["lr_schedulers"] == b["lr_schedulers"]
    for sa, sb in zip(a["optimizer_states"][0]["state"].values(), b["optimizer_states"][0]["state"].values()):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)
    # rerunning a finished run reuses it
    assert train(config(episodes, "trainer.max_steps=9", "optim.schedule_steps=9"), tmp_path / "b",
                 trainer_kwargs=QUIET) == continued


def test_validation_cadence_changes_no_weight_and_a_run_resumes_across_it(tmp_path, episodes):
    """Validating every 3 steps or never in 6 (with dropout on) gives the same weights, bit for bit;
    so the cadence is no fingerprinted setting: a run continues with another one."""
    from mobile_vla.train.api import train

    often = train(config(episodes, "trainer.max_steps=6", "optim.schedule_steps=9"), tmp_path / "a",
                  trainer_kwargs=QUIET)
    never = train(config(episodes, "trainer.max_steps=6", "optim.schedule_steps=9", "trainer.val_check_interval=100",
                         "trainer.limit_val_batches=1"), tmp_path / "b", trainer_kwargs=QUIET)
    assert (often / WEIGHTS_FILE).read_bytes() == (never / WEIGHTS_FILE).read_bytes()
    continued = train(config(episodes, "trainer.max_steps=9", "optim.schedule_steps=9", "trainer.val_check_interval=2"),
                      tmp_path / "b", trainer_kwargs=QUIET)
    assert read_state(continued)["step"] == 9


def test_resume_for_more_steps_never_raises_the_learning_rate(tmp_path, episodes):
    """`train --resume` for more steps keeps the schedule it resumes (the DAgger bend)."""
    from mobile_vla.train.api import train

    first = train(config(episodes, "trainer.max_steps=4", "trainer.val_check_interval=100"), tmp_path / "a",
                  trainer_kwargs=QUIET)
    second = train(config(episodes, "trainer.max_steps=7", "trainer.val_check_interval=100"), tmp_path / "b",
                   resume=first, trainer_kwargs=QUIET)
    end_first = lightning_state(first)["lr_schedulers"][0]["_last_lr"]
    end_second = lightning_state(second)["lr_schedulers"][0]["_last_lr"]
    assert all(b <= a + 1e-12 for a, b in zip(end_first, end_second)), (end_first, end_second)
    assert read_state(second)["schedule_steps"] == 4


def test_train_rerun_with_other_settings_stops_naming_the_keys(tmp_path, episodes):
    from mobile_vla.train.api import train

    out = tmp_path / "run"
    train(config(episodes, "trainer.max_steps=1", "trainer.val_check_interval=100"), out, trainer_kwargs=QUIET)
    with pytest.raises(FingerprintMismatch, match=r"optim\.lr: 0\.001 -> 0\.002") as err:
        train(config(episodes, "trainer.max_steps=1", "trainer.val_check_interval=100", "optim.lr=0.002"), out,
              trainer_kwargs=QUIET)
    assert set(err.value.differences) == {"optim.lr"}
    redone = train(config(episodes, "trainer.max_steps=1", "trainer.val_check_interval=100", "optim.lr=0.002"),
                   out, trainer_kwargs=QUIET, force_restart=True)
    assert read_state(redone)["step"] == 1


def test_collect_rerun_with_other_expert_stops_unless_force_restart(tmp_path):
    from mobile_vla.sim.collect import CollectConfig, collect
    from mobile_vla.sim.expert import ExpertConfig

    out = tmp_path / "sim"
    first = collect(CollectConfig(out=out, episodes=2, seed=1, image_size=32), progress=False)
    assert first["written"] == 2
    more = collect(CollectConfig(out=out, episodes=4, seed=1, image_size=32), progress=False)
    assert (more["skipped"], more["written"]) == (2, 2)  # more episodes: a legitimate continuation
    changed = CollectConfig(out=out, episodes=4, seed=1, image_size=32, expert=ExpertConfig(clearance=0.5))
    with pytest.raises(FingerprintMismatch, match=r"expert\.clearance"):
        collect(changed, progress=False)
    redone = collect(changed, progress=False, force_restart=True)
    assert (redone["skipped"], redone["written"]) == (0, 4)


def test_cli_force_restart_and_clear_error(tmp_path, capsys):
    from mobile_vla.cli import main

    out = tmp_path / "sim"
    args = ["sim", "collect", "--out", str(out), "--episodes", "2", "--image-size", "32", "--no-progress"]
    assert main(args) == 0
    assert main([*args, "--seed", "2"]) != 0
    err = capsys.readouterr().err
    assert "seed: 0 -> 2" in err and "--force-restart" in err
    assert main([*args, "--seed", "2", "--force-restart"]) == 0


def test_a_setting_added_later_at_its_default_keeps_older_runs_resumable(tmp_path, episodes):
    """Outputs fingerprinted before a setting existed resume when the setting is at its default."""
    import json

    from mobile_vla.fingerprint import FINGERPRINT_FILE, differences
    from mobile_vla.train.api import train

    assert differences({"a": 1}, {"a": 1, "new": 0.0}, defaults={"new": 0.0}) == {}
    assert differences({"a": 1}, {"a": 1, "new": 0.5}, defaults={"new": 0.0}) == {"new": ("<absent>", 0.5)}
    assert differences({"a": 1, "new": 0.5}, {"a": 1, "new": 0.0}, defaults={"new": 0.0}) == {"new": (0.5, 0.0)}
    # a key recorded that this version exempts (neither the current nor the default fingerprint holds it)
    assert differences({"a": 1, "gone": 400}, {"a": 1}, defaults={"a": 1}) == {}
    assert differences({"a": 1, "gone": 400}, {"a": 1}) == {"gone": (400, "<absent>")}  # without defaults: unknown

    out = tmp_path / "run"
    args = ("trainer.val_check_interval=100", "data.instruction_noise=0")  # the dataclass default (tiny.yaml: 0.5)
    train(config(episodes, "trainer.max_steps=1", *args), out, trainer_kwargs=QUIET)
    file = out / FINGERPRINT_FILE
    recorded = json.loads(file.read_text())
    del recorded["data.instruction_noise"]  # as written before the setting existed
    file.write_text(json.dumps(recorded))
    resumed = train(config(episodes, "trainer.max_steps=2", *args), out, trainer_kwargs=QUIET)
    assert read_state(resumed)["step"] == 2
    file.write_text(json.dumps(recorded))
    with pytest.raises(FingerprintMismatch, match=r"data\.instruction_noise: '<absent>' -> 0\.5"):
        train(config(episodes, "trainer.max_steps=3", *args, "data.instruction_noise=0.5"), out, trainer_kwargs=QUIET)
