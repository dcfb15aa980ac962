"""scripts/demo_runs_table.py: per-seed rows and the spread over seeds, from demo reports."""

import importlib.util
import json
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "demo_runs_table.py"
spec = importlib.util.spec_from_file_location("demo_runs_table", SCRIPT)
demo_runs_table = importlib.util.module_from_spec(spec)
spec.loader.exec_module(demo_runs_table)


def _report(seed: int, left: float, right: float) -> dict:
    side = {"success_side_accuracy": 1.0}
    return {"seed": seed, "success_left": left, "success_right": right, "blind_success_left": 0.2,
            "blind_success_right": 0.25, "collision_rate": 0.1, "closed_loop": {"overall": side},
            "closed_loop_heldout_phrasings": {"overall": {"success_on_side_rate": 0.5}},
            "flip_divergence_ratio": 0.9, "side_agreement": 0.95, "wall_minutes": 12.0,
            "config": {"scenes": None, "num_scenes": 160, "train_steps": 800, "dagger_rounds": 2,
                       "dagger_scenes": 60, "dagger_steps": 300, "train_overrides": []}}


def test_rows_per_seed_and_mean_sd(tmp_path):
    runs = tmp_path / "runs"
    runs.mkdir()
    first = _report(0, 0.8, 0.6)
    first["config"]["expert"] = {"no_side_route": "right"}  # a nested setting off its default is named
    (runs / "w1_seed0.json").write_text(json.dumps(first))
    second = _report(1, 0.6, 0.6)
    second["closed_loop_failure_phases"] = {"collision": {"approach": 0.1, "beside": 0.2, "after": 0.0},
                                               "timeout": {"approach": 0.0, "beside": 0.0, "after": 0.1}}
    (runs / "w1_seed1.json").write_text(json.dumps(second))
    doc = tmp_path / "results.md"
    doc.write_text(f"intro\n{demo_runs_table.BEGIN}\nold\n{demo_runs_table.END}\nrest\n")
    assert demo_runs_table.main(["--runs", str(runs), "--doc", str(doc), "--check"]) == 1
    assert demo_runs_table.main(["--runs", str(runs), "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "| w1 | 0 | 80 %" in text and "| w1 | 1 | 60 %" in text
    assert "70 % ± 14 %" in text  # mean and sample sd of 80 % and 60 %
    assert "n/a" in text  # the beside-phase agreement is missing from these reports
    assert "| 10 % / 20 % / 10 % |" in text  # failures by phase, summed over outcomes
    assert "chunk execution `first`, expert.no_side_route `right`" in text
    assert text.startswith("intro\n") and text.endswith("rest\n")
    assert demo_runs_table.main(["--runs", str(runs), "--doc", str(doc), "--check"]) == 0


def test_a_name_that_disagrees_with_the_report_is_refused(tmp_path):
    (tmp_path / "w1_seed3.json").write_text(json.dumps(_report(0, 0.8, 0.6)))
    with pytest.raises(SystemExit, match="seed 3"):
        demo_runs_table.load_runs(tmp_path)


def test_the_committed_document_is_up_to_date():
    root = SCRIPT.parents[1]
    assert demo_runs_table.main(["--runs", str(root / "results/demo_runs"), "--doc", str(root / "docs/results.md"),
                                 "--check"]) == 0
