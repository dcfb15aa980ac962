"""`mobile-vla demo` flags map onto the demo's settings."""

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


def test_select_episodes_counts_validation_episodes():
    assert load_demo_config([]).select_episodes == 40
    assert load_demo_config(["select_episodes=0"]).select_episodes == 0  # the last round's, unchecked
    with pytest.raises(ConfigError, match=r"demo\.select_episodes=-1"):
        load_demo_config(["select_episodes=-1"])
