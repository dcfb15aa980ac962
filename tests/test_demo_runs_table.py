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


def test_a_demo_of_several_tasks_gets_a_row_per_task(tmp_path):
    report = _report(0, 0.8, 0.6)
    report["config"]["family_episodes"] = 10

    def task(left, right, mixed):
        return {"closed_loop": {"left": {"success_rate": left}, "right": {"success_rate": right}},
                "success_by_family": {"paraphrase": {"left": 1.0, "right": 0.4}},
                "no_side": {"success_rate": 0.5, "episodes": 10, "sides_taken": {}},
                "mixed": {"success_left": mixed, "success_right": 0.3, "confusion": 0.25, "episodes": 20}}

    report["tasks"] = {"cup": task(0.8, 0.6, 0.7), "basket": task(0.74, 0.72, 0.2)}
    one = _report(0, 0.9, 0.9)
    one["tasks"] = {"cup": task(0.9, 0.9, 0.0)}  # one task: no row there
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "two_seed0.json").write_text(json.dumps(report))
    (runs / "one_seed0.json").write_text(json.dumps(one))
    doc = tmp_path / "results.md"
    doc.write_text(f"{demo_runs_table.BEGIN}\n{demo_runs_table.END}\n"
                   f"{demo_runs_table.TASKS_BEGIN}\nold\n{demo_runs_table.TASKS_END}\n")
    assert demo_runs_table.main(["--runs", str(runs), "--doc", str(doc)]) == 0
    block = doc.read_text().split(demo_runs_table.TASKS_BEGIN)[1]
    assert "| two | 0 | `basket` | 74 % / 72 % | 100 % / 40 % | 50 % | 20 % / 30 % | 25 % | 5 |" in block
    assert "| two | 0 | `cup` | 80 % / 60 %" in block and "| one |" not in block
