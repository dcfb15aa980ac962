"""docs/results.md's tables are generated from the committed run reports, with Wilson intervals."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("results_tables", ROOT / "scripts" / "results_tables.py")
results_tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(results_tables)


def test_wilson_interval_matches_known_values():
    lo, hi = results_tables.wilson(50, 100)
    assert lo == pytest.approx(0.4038, abs=1e-4) and hi == pytest.approx(0.5962, abs=1e-4)
    lo, hi = results_tables.wilson(0, 10)
    assert lo == 0.0 and hi == pytest.approx(0.2775, abs=1e-4)
    assert results_tables.rate(0.2, 100) == "20 % [13–29]"


def test_docs_results_tables_are_up_to_date_with_the_reports():
    assert results_tables.main(["--results", str(ROOT / "results"), "--doc", str(ROOT / "docs" / "results.md"),
                                "--check"]) == 0


def _report(path: Path, controller: str, seeds: list[int], left: float, seed: int = 0) -> None:
    side = {"episodes": 2, "success_rate": left, "side_accuracy": 1.0, "collision_rate": 0.0}
    path.mkdir(parents=True)
    (path / "report.json").write_text(json.dumps({
        "controller": controller, "scenes": "varied", "seed": seed, "scene_seeds": seeds,
        "left": side, "right": side, "overall": {**side, "episodes": 4}}))


def test_runs_on_different_scenes_never_share_a_table(tmp_path):
    _report(tmp_path / "varied" / "expert", "expert", [1, 2], 1.0)
    _report(tmp_path / "varied" / "blind", "blind", [1, 2], 0.5)
    _report(tmp_path / "varied" / "other", "blind", [3, 4], 0.0, seed=1)
    tables = results_tables.closed_loop_tables(tmp_path)
    assert set(tables) == {"varied_seed0_2", "varied_seed1_2"}
    together = [t for t in tables.values() if "expert" in t][0]
    assert "blind baseline" in together and "50 % [" in together and "No policy" in together
    doc = "a\n<!-- generated: nothing -->\nold\n<!-- end generated: nothing -->\n"
    with pytest.raises(SystemExit, match="nothing"):
        results_tables.fill(doc, tables)


def test_grounding_tables_come_from_diagnose_outputs_and_name_a_bad_one(tmp_path):
    folder = tmp_path / "grounding"
    folder.mkdir()
    diagnose = {"flip_divergence_ratio": 0.95, "side_agreement": 0.9, "action_difference": 0.4,
                "side_agreement_by_phase": {"approach": 0.88, "beside": 0.93, "after": None}}
    for seed in (2, 0):
        (folder / f"recipe_seed{seed}.json").write_text(json.dumps(diagnose))
    table = results_tables.grounding_tables(tmp_path)["grounding_recipe"]
    assert table.index("| 0 | 0.950 | 0.900 | 0.930 | 0.880 | n/a | 0.400 |") < table.index("| 2 |")
    del diagnose["side_agreement"]
    (folder / "other_seed1.json").write_text(json.dumps(diagnose))
    with pytest.raises(SystemExit, match="other_seed1.json.*side_agreement"):
        results_tables.grounding_tables(tmp_path)


def test_sweep_tables_average_over_seeds_and_refuse_mixed_scenes(tmp_path):
    folder = tmp_path / "sweeps" / "decay"
    folder.mkdir(parents=True)

    def report(scene_seeds, left, right, collision=0.1):
        side = {"episodes": 50, "success_rate": left, "collision_rate": collision, "timeout_rate": 0.0}
        return {"scenes": "varied", "scene_seeds": scene_seeds, "left": side, "right": {**side, "success_rate": right},
                "overall": {**side, "success_rate": (left + right) / 2}}

    for name, seed, left, right in (("d1", 0, 0.8, 0.9), ("d1", 1, 0.9, 1.0), ("d2", 0, 0.5, 0.6), ("blind", 0, 0.2, 0.3)):
        (folder / f"{name}_seed{seed}.json").write_text(json.dumps(report([seed, 7], left, right)))
    table = results_tables.sweep_tables(tmp_path)["sweep_decay"]
    assert table.index("| blind |") < table.index("| d1 |") < table.index("| d2 |")
    assert "| d1 | 90.0 % | 85.0 % | 95.0 % | 10.0 % | 0.0 % | 80 / 90, 90 / 100 | 0, 1 |" in table
    assert "| d2 | 55.0 % | 50.0 % | 60.0 % | 10.0 % | 0.0 % | 50 / 60, – | 0 |" in table
    assert "goal instructed" not in table  # reports without by_goal_side: no such columns
    goal = {"instructed": {"success_rate": 1.0, "collision_rate": 0.0}, "other": {"success_rate": 0.7, "collision_rate": 0.2}}
    for path in folder.glob("*.json"):
        phases = {"collision": {"approach": 0.02, "beside": 0.08, "after": 0.0},
                  "timeout": {"approach": 0.0, "beside": 0.0, "after": 0.1}}
        path.write_text(json.dumps({**json.loads(path.read_text()), "by_goal_side": goal, "failure_phases": phases}))
    table = results_tables.sweep_tables(tmp_path)["sweep_decay"]
    assert ("| goal instructed: success / collision | goal other: success / collision | "
            "failed: approach / beside / after |") in table
    assert ("| d2 | 55.0 % | 50.0 % | 60.0 % | 10.0 % | 0.0 % | 100.0 % / 0.0 % | 70.0 % / 20.0 % | "
            "2.0 % / 8.0 % / 10.0 % | 50 / 60, – | 0 |") in table
    assert table.splitlines()[1].count("|") == table.splitlines()[0].count("|")  # a well-formed header
    (folder / "d3_seed1.json").write_text(json.dumps(report([99, 7], 0.5, 0.5)))  # other scenes than seed 1's
    with pytest.raises(SystemExit, match="d3_seed1.json.*scenes differ"):
        results_tables.sweep_tables(tmp_path)
