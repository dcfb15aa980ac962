#!/usr/bin/env python3
"""Compare two demo ``report.json`` files key by key; print what differs, as JSON.

    python scripts/compare_reports.py A/report.json B/report.json
    python scripts/compare_reports.py A B        # two demo output folders: the whole run

Given two demo output folders it also compares, byte for byte, every episode file (``*.h5``:
collection, DAgger rounds, held-out), every round's weights (``train_*/checkpoint`` and the final
``checkpoint``) and ``records.jsonl``; each is listed under ``files`` with the count compared and
whether all were identical.

Wall-clock durations (``wall_minutes``, ``timings_s``) and output paths differ between any two
runs; they are listed under ``ignored`` and everything else under ``differs``. Exit 0 when
nothing else differs, 1 otherwise.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

WALL_CLOCK = ("wall_minutes", "timings_s")


def diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for key in sorted(set(a) | set(b)):
            where = f"{path}.{key}"
            out += [where] if (key in a) != (key in b) else diff(a[key], b[key], where)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in diff(x, y, f"{path}[{i}]")]
    return [] if a == b else [path]


def is_volatile(path: str, a: dict, b: dict) -> bool:
    top = path.split(".")[1].split("[")[0]
    if top in WALL_CLOCK:
        return True
    value = lambda r: eval_path(r, path)  # noqa: E731
    return isinstance(value(a), str) and isinstance(value(b), str) and "/" in value(a)  # an output path


def eval_path(report: dict, path: str) -> Any:
    node: Any = report
    for part in path.strip(".").replace("[", ".[").split("."):
        if part.startswith("["):
            node = node[int(part[1:-1])]
        elif isinstance(node, dict) and part in node:
            node = node[part]
        else:
            return None
    return node


def digests(root: Path, pattern: str) -> dict[str, str]:
    """``{path relative to root: sha256}`` of the files matching ``pattern`` (symlinks resolved)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.glob(pattern)) if p.is_file()}


def compare_files(a: Path, b: Path) -> dict[str, dict[str, Any]]:
    out = {}
    for name, pattern in (("episodes", "**/*.h5"), ("weights", "**/checkpoint/model.safetensors"),
                          ("records", "records.jsonl")):
        da, db = digests(a, pattern), digests(b, pattern)
        out[name] = {"compared": len(da), "identical": bool(da) and da == db,
                     "differ": sorted(k for k in set(da) | set(db) if da.get(k) != db.get(k))}
    return out


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    paths_in = [Path(p) for p in argv]
    folders = all(p.is_dir() for p in paths_in)
    a, b = (json.loads((p / "report.json" if folders else p).read_text()) for p in paths_in)
    paths = diff(a, b)
    ignored = [p for p in paths if is_volatile(p, a, b)]
    result: dict[str, Any] = {"ignored": ignored, "differs": [p for p in paths if p not in ignored]}
    if folders:
        result["files"] = compare_files(*paths_in)
    print(json.dumps(result, indent=2))
    same_files = not folders or all(f["identical"] for f in result["files"].values())
    return 1 if result["differs"] or not same_files else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
