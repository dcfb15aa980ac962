"""Where collisions happen: which face of which box, and where the cup lay.

Reads the per-episode records of ``mobile-vla eval-sim --records FILE.jsonl`` (one or more
files) and prints one JSON object: for every collision, the face of the box nearest the final
pose — ``front`` (the robot ended before the box in x: hit on the approach), ``side`` (beside
it: touched from the lane) or ``back`` (past it: clipped when cutting across) — counted over all
collisions and separately for episodes whose cup lay across the cluster's centre line from the
instructed side (``goal_across``, from the records' ``goal_side``) or on it.

    python scripts/collision_faces.py runs/rec_s0.jsonl runs/rec_s1.jsonl > faces.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

FACES = ("front", "side", "back")


def face(obstacles: list[list[float]], x: float, y: float) -> str:
    """The face of the box (``[cx, cy, half_x, half_y]``) nearest to ``(x, y)``."""
    def gap(box: list[float]) -> float:
        cx, cy, hx, hy = box
        return max(abs(x - cx) - hx, 0.0) ** 2 + max(abs(y - cy) - hy, 0.0) ** 2

    cx, _, hx, _ = min(obstacles, key=gap)
    return "front" if x < cx - hx else "back" if x > cx + hx else "side"


def count(records: list[dict]) -> dict:
    faces: dict[str, Counter] = {"all": Counter(), "goal_across": Counter(), "goal_instructed_side": Counter()}
    for r in records:
        if not r["collision"]:
            continue
        x, y = r["trajectory"][-1][:2]
        where = face(r["obstacles"], x, y)
        faces["all"][where] += 1
        # goal_side: eval-sim's sim.suggested.goal_side of the record (the cluster's side the cup is on)
        across = r.get("goal_side") not in (None, r["side"])
        faces["goal_across" if across else "goal_instructed_side"][where] += 1
    return {
        "episodes": len(records),
        "collisions": sum(faces["all"].values()),
        **{group: {f: counts[f] for f in FACES} for group, counts in faces.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="+", type=Path, help="eval-sim --records files (JSON lines)")
    args = ap.parse_args(argv)
    records = []
    for path in args.records:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{n}: not a JSON record ({exc})") from None
    print(json.dumps(count(records), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
