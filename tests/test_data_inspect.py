"""`mobile-vla data inspect`: counts, errors and exit codes."""

import json

import numpy as np
import pytest

from data_fixtures import BAD_CASES, teleop_actions, write_bad_episode, write_real_episode, write_sim_pair
from mobile_vla.cli import main
from mobile_vla.vocab.instructions import canonical_instruction


@pytest.fixture(scope="module")
def good_dir(tmp_path_factory):
    """2 real 720p episodes (left with instruction, right without; both layouts) + 1 simulator pair."""
    d = tmp_path_factory.mktemp("inspect")
    write_real_episode(d, side="left", num_frames=18)
    write_real_episode(d, side="right", layout="observations/images", with_instruction=False,
                       num_frames=18, stamp="20251106_150000")
    write_sim_pair(d / "sim", 1)
    return d


def run_json(capsys, *argv):
    code = main(["data", "inspect", *map(str, argv), "--json"])
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_counts_of_a_valid_folder(good_dir, capsys):
    code, report = run_json(capsys, good_dir)
    assert code == 0 and report["errors"] == []
    assert report["episodes"] == report["valid_episodes"] == 4
    assert report["frames"] == 18 + 18 + 12 + 12
    assert report["instructions"] == {canonical_instruction("left"): 2, canonical_instruction("right"): 2}
    assert report["sides"] == {"left": 2, "right": 2}
    assert report["with_instruction"] == 3 and report["with_counterfactual"] == 2
    assert report["image_shapes"] == {"720x1280": 2, "112x112": 2}
    actions = np.concatenate([teleop_actions("left"), teleop_actions("right"),
                              teleop_actions("left", 12) * 0.5, teleop_actions("right", 12) * 0.5])
    np.testing.assert_allclose(report["action_mean"], actions.mean(0), atol=1e-6)
    np.testing.assert_allclose(report["action_std"], actions.std(0), atol=1e-6)
    assert sum(report["action_classes"].values()) == report["frames"]
    assert report["action_classes"]["stop"] == 4  # the start frame of each episode


def test_bad_files_are_listed_and_exit_1(good_dir, tmp_path, capsys):
    for problem in ("nan_actions", "truncated", "no_instruction"):
        write_bad_episode(tmp_path, problem)
    write_real_episode(tmp_path, side="left", num_frames=2, size=(8, 8))
    code, report = run_json(capsys, tmp_path)
    assert code == 1
    assert report["episodes"] == 4 and report["valid_episodes"] == 1 and report["frames"] == 2
    assert len(report["errors"]) == 3
    by_file = {e["file"].rsplit("/", 1)[-1]: e for e in report["errors"]}
    assert by_file["recording_0001.h5"]["key"] == "language_instruction"
    nan = next(e for name, e in by_file.items() if "nan_actions" in name)
    assert nan["key"] == "actions" and "non-finite" in nan["error"]
    assert any("truncated" in e["error"] for e in report["errors"])


def test_single_file_and_text_output(tmp_path, capsys):
    path = write_bad_episode(tmp_path, "length_mismatch")
    assert main(["data", "inspect", str(path)]) == 1
    out = capsys.readouterr().out
    assert "0/1 valid episodes" in out and BAD_CASES["length_mismatch"][1] in out and path.name in out


def test_missing_path_is_a_user_error(tmp_path, capsys):
    assert main(["data", "inspect", str(tmp_path / "nope"), "--json"]) == 2
    assert capsys.readouterr().err.startswith("error: ")
    (tmp_path / "empty").mkdir()
    assert main(["data", "inspect", str(tmp_path / "empty")]) == 2
