"""scripts/collision_faces.py: collisions placed on the face they hit, split by where the cup lay."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "scripts" / "collision_faces.py"
spec = importlib.util.spec_from_file_location("collision_faces", SCRIPT)
collision_faces = importlib.util.module_from_spec(spec)
spec.loader.exec_module(collision_faces)

BOXES = [[3.0, 0.0, 0.2, 0.3], [3.4, 0.0, 0.2, 0.3]]  # a row along x: [cx, cy, half_x, half_y]


def record(end, side="left", target_y=-0.5, collision=True):
    return {"obstacles": BOXES, "trajectory": [[0.0, 0.0, 0.0], [*end, 0.0]], "side": side,
            "target_xy": [5.0, target_y], "collision": collision,
            "goal_side": "left" if target_y > 0 else "right"}  # as eval-sim's records carry it


def test_faces_and_goal_side(tmp_path, capsys):
    records = [
        record((2.6, 0.0)),                   # before the first box: front, cup across (left, cup right)
        record((3.2, 0.55)),                  # beside the row on the left: side
        record((3.85, 0.4), target_y=0.5),    # past the last box: back, cup on the instructed side
        record((3.2, -0.55), side="right", target_y=0.5),  # side, cup across for a right pass
        record((1.0, 0.0), collision=False),  # not a collision: not counted
    ]
    counts = collision_faces.count(records)
    assert counts["episodes"] == 5 and counts["collisions"] == 4
    assert counts["all"] == {"front": 1, "side": 2, "back": 1}
    assert counts["goal_across"] == {"front": 1, "side": 2, "back": 0}
    assert counts["goal_instructed_side"] == {"front": 0, "side": 0, "back": 1}
    path = tmp_path / "rec.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    assert collision_faces.main([str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == counts
