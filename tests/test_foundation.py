"""The CLI entry point, config strictness and the instruction helpers."""

import dataclasses
import json
import subprocess
import sys

import pytest

from mobile_vla.cli import COMMANDS, main
from mobile_vla.config import apply_overrides, from_dict, load_config
from mobile_vla.errors import ConfigError
from mobile_vla.vocab.instructions import (
    HELDOUT_TEMPLATES,
    TRAIN_TEMPLATES,
    format_instruction,
    mirror_instruction,
    side_of,
)


def test_help_lists_every_subcommand():
    out = subprocess.run(
        [sys.executable, "-m", "mobile_vla.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for name in COMMANDS:
        assert name.replace("_", "-") in out


def test_user_error_is_one_line_exit_2(capsys, tmp_path):
    code = main(["data", "inspect", str(tmp_path / "missing.h5"), "--json"])
    err = capsys.readouterr().err
    assert code in (1, 2)
    assert "Traceback" not in err


@dataclasses.dataclass
class _Inner:
    rank: int = 8
    alpha: float = 16.0


@dataclasses.dataclass
class _Outer:
    name: str = "x"
    inner: _Inner = dataclasses.field(default_factory=_Inner)


def test_config_rejects_unknown_keys_with_their_path():
    with pytest.raises(ConfigError, match="inner.rnak"):
        from_dict(_Outer, {"inner": {"rnak": 3}})
    with pytest.raises(ConfigError, match="expected int"):
        from_dict(_Outer, {"inner": {"rank": "big"}})
    # A dataclass's own check becomes a config error that says where the value sits.
    from mobile_vla.demo import DemoConfig

    with pytest.raises(ConfigError, match=r"demo\.expert: .*no_side_route must be one of"):
        from_dict(DemoConfig, {"expert": {"no_side_route": "nearest"}}, "demo")


@dataclasses.dataclass
class _Tuned:
    inner: _Inner = dataclasses.field(default_factory=lambda: _Inner(rank=2))  # not the class's defaults


def test_a_partial_override_keeps_the_fields_own_default():
    assert from_dict(_Tuned, {"inner": {"alpha": 1.0}}) == _Tuned(_Inner(rank=2, alpha=1.0))
    assert from_dict(_Outer, {"inner": {"alpha": 1.0}}).inner.rank == 8
    from mobile_vla.demo import DemoConfig

    expert = from_dict(DemoConfig, {"expert": {"no_side_route": "right"}}).expert
    assert (expert.no_side_route, expert.clearance) == ("right", DemoConfig().expert.clearance)


def test_config_overrides_and_yaml(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: a\ninner:\n  rank: 4\n")
    cfg = load_config(_Outer, path, ["inner.alpha=2", "name=b"])
    assert cfg == _Outer(name="b", inner=_Inner(rank=4, alpha=2.0))
    assert load_config(_Outer, path, ["inner.alpha=3e-4"]).inner.alpha == 3e-4  # YAML 1.1 reads a string
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        apply_overrides({}, ["novalue"])


@pytest.mark.parametrize("template", TRAIN_TEMPLATES + HELDOUT_TEMPLATES)
@pytest.mark.parametrize("side", ["left", "right"])
def test_every_template_names_its_side_and_mirrors(template, side):
    text = format_instruction(template, side)
    assert side_of(text) == side
    assert side_of(mirror_instruction(text)) == {"left": "right", "right": "left"}[side]


def test_side_of_korean_and_none():
    assert side_of("가장 왼쪽 외곽으로 돌아 컵까지 가세요") == "left"
    assert side_of("go to the cup") is None
    assert json.dumps(side_of("Left!")) == '"left"'
