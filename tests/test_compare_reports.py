"""scripts/compare_reports.py: two runs compared report key by key and file by file."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "compare_reports.py"
spec = importlib.util.spec_from_file_location("compare_reports", SCRIPT)
compare_reports = importlib.util.module_from_spec(spec)
spec.loader.exec_module(compare_reports)


def _run(root: Path, weight: bytes, wall: float) -> Path:
    (root / "data/sim").mkdir(parents=True)
    (root / "data/sim/ep_0000.h5").write_bytes(b"episode")
    (root / "checkpoint").mkdir()
    (root / "checkpoint/model.safetensors").write_bytes(weight)
    (root / "records.jsonl").write_text('{"success": true}\n')
    (root / "report.json").write_text(json.dumps({"success_left": 0.5, "wall_minutes": wall,
                                                  "checkpoint": f"{root}/checkpoint"}))
    return root


def test_identical_runs_differ_only_in_wall_clock_and_paths(tmp_path, capsys):
    a, b = _run(tmp_path / "a", b"w", 10.0), _run(tmp_path / "b", b"w", 12.5)
    assert compare_reports.main([str(a), str(b)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["differs"] == [] and set(out["ignored"]) == {".wall_minutes", ".checkpoint"}
    assert out["files"]["episodes"] == {"compared": 1, "identical": True, "differ": []}


def test_one_changed_weight_byte_is_found(tmp_path, capsys):
    a, b = _run(tmp_path / "a", b"w", 10.0), _run(tmp_path / "b", b"x", 10.0)
    assert compare_reports.main([str(a), str(b)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["files"]["weights"]["differ"] == ["checkpoint/model.safetensors"]
    assert out["files"]["records"]["identical"]
