#!/usr/bin/env python3
"""Compare two demo ``report.json`` files key by key; print what differs, as JSON.

    python scripts/compare_reports.py A/report.json B/report.json

Wall-clock durations (``wall_minutes``, ``timings_s``) and output paths differ between any two
runs; they are listed under ``ignored`` and everything else under ``differs``. Exit 0 when
nothing else differs, 1 otherwise.
"""

from __future__ import annotations

import json
import sys
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


def main(argv: list[str]) -> int:
    a, b = (json.loads(open(p).read()) for p in argv[:2])
    paths = diff(a, b)
    ignored = [p for p in paths if is_volatile(p, a, b)]
    result = {"ignored": ignored, "differs": [p for p in paths if p not in ignored]}
    print(json.dumps(result, indent=2))
    return 1 if result["differs"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
