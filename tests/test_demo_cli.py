"""`mobile-vla demo` flags map onto the demo's settings."""

from pathlib import Path

import pytest

from mobile_vla.cli import build_parser
from mobile_vla.demo import load_demo_config
from mobile_vla.errors import ConfigError


def test_scenes_flag_selects_the_preset_like_the_setting():
    args = build_parser().parse_args(["demo", "--scenes", "cluttered", "--seed", "4", "num_scenes=12"])
    cfg = load_demo_config(args.overrides, args.out, args.seed, None, args.scenes)
    assert (cfg.scenes, cfg.seed, cfg.num_scenes) == ("cluttered", 4, 12)
    assert load_demo_config(["scenes=classic"]).scenes == "classic"
    with pytest.raises(ConfigError, match="num_scenes"):
        load_demo_config(["scenes=40"])


def test_chunk_strategies_are_checked_before_any_stage_runs():
    assert load_demo_config(["dagger_strategy=ensemble"]).dagger_strategy == "ensemble"
    assert load_demo_config([]).dagger_strategy == "first"  # how every recorded recipe collected
    for key in ("strategy", "dagger_strategy"):
        with pytest.raises(ConfigError, match=rf"demo\.{key}='average'.*first, chunk, ensemble"):
            load_demo_config([f"{key}=average"])


def test_dagger_recent_weight_must_be_positive():
    assert load_demo_config([]).dagger_recent_weight == 1.0  # pooled, as every recorded recipe trained
    with pytest.raises(ConfigError, match=r"demo\.dagger_recent_weight=0\.0.*> 0"):
        load_demo_config(["dagger_recent_weight=0"])
    with pytest.raises(ConfigError, match=r"demo\.mixed_fraction=1\.5: expected a share between 0 and 1"):
        load_demo_config(["mixed_fraction=1.5"])
    with pytest.raises(ConfigError, match=r"demo\.ensemble_decay=-1\.0: expected a finite number >= 0"):
        load_demo_config(["ensemble_decay=-1"])


def test_select_episodes_counts_validation_episodes():
    assert load_demo_config([]).select_episodes == 0  # the default averages the rounds instead
    assert load_demo_config(["select_episodes=40", "average_rounds=1"]).select_episodes == 40
    with pytest.raises(ConfigError, match=r"demo\.select_episodes=-1"):
        load_demo_config(["select_episodes=-1"])


def test_average_rounds_and_selection_are_two_ways_to_publish():
    assert load_demo_config([]).average_rounds == 5  # the first training and the four DAgger rounds
    assert load_demo_config(["average_rounds=1"]).average_rounds == 1  # the last round's alone
    with pytest.raises(ConfigError, match=r"demo\.average_rounds=0: expected a number of rounds >= 1"):
        load_demo_config(["average_rounds=0"])
    with pytest.raises(ConfigError, match=r"select_episodes=40 picks one .* average_rounds=5 averages several"):
        load_demo_config(["select_episodes=40"])


def test_selection_keeps_each_rounds_figures_so_a_resume_does_not_measure_again(tmp_path, monkeypatch):
    import mobile_vla
    import mobile_vla.eval.closed_loop as closed_loop
    from mobile_vla.demo import select_checkpoint

    measured = []

    def fake_eval(policy, episodes, seed, strategy, **kwargs):
        measured.append(policy)
        rate = {"round_0": 0.5, "round_1": 0.9, "round_2": 0.7}[policy]
        return {"left": {"success_rate": rate}, "right": {"success_rate": rate}, "overall": {"success_rate": rate}}

    monkeypatch.setattr(mobile_vla.Policy, "from_checkpoint", staticmethod(lambda path: Path(path).name))
    monkeypatch.setattr(closed_loop, "evaluate_closed_loop", fake_eval)
    checkpoints = [tmp_path / f"round_{r}" for r in range(3)]
    for c in checkpoints:
        c.mkdir()
    cfg, memo = load_demo_config(["select_episodes=40", "average_rounds=1"]), tmp_path / "selection_rounds.json"
    presets = {"cup": "varied"}
    best, first = select_checkpoint(checkpoints[:2], cfg, presets, memo)  # interrupted after two rounds
    assert best == checkpoints[1] and measured == ["round_0", "round_1"]
    best, selection = select_checkpoint(checkpoints, cfg, presets, memo)  # resumed: only the new round
    assert measured == ["round_0", "round_1", "round_2"]
    assert best == checkpoints[1] and selection["selected_round"] == 1
    assert selection["rounds"][:2] == first["rounds"]
    memo.write_text("{not json")  # a damaged memo is ignored, not fatal
    select_checkpoint(checkpoints, cfg, presets, memo)
    assert len(measured) == 6
