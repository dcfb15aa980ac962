#!/usr/bin/env python3
"""Write the ONNX and LeRobot result sections of the docs from the runs' JSON outputs (never by hand).

    python scripts/render_ecosystem_results.py            # reads docs/runs/*.json, rewrites the marked sections

Sources (each written by a committed command, see the section text):
- ``docs/runs/export_speed.json``      ``benchmarks/export_speed.py --out ...``
- ``docs/runs/export_speed_1thread.json`` the same with ``OMP_NUM_THREADS=1 MOBILE_VLA_ONNX_THREADS=1``
- ``docs/runs/lerobot_roundtrip.json`` ``benchmarks/lerobot_roundtrip.py ... > ...``
- ``docs/runs/lerobot_check.json``     the last line of ``scripts/check_lerobot.sh ...``

Each section lives between ``<!-- NAME:begin -->`` and ``<!-- NAME:end -->`` in its document.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "docs" / "runs"


def _pct(v) -> str:
    return f"{100 * v:.0f} %"


def export_section(run: dict) -> str:
    lat = run["latency"]
    m = run["machine"]
    lines = [
        f"Checkpoint `{Path(run['checkpoint']).name}` at step {run['step']} "
        f"(image {run['image_size']} px, window {run['window_size']}); torch {run['versions']['torch']}, "
        f"ONNX Runtime {run['versions']['onnxruntime']}, {m['cpus']} CPUs ({m['processor']}), "
        f"load average {m['load_average'][0]} before and {m.get('load_average_after', ['?'])[0]} after "
        "(the machine was shared).", "",
        "| backend | step p50 ms | step p90 ms | mean ms | max \\|Δ chunk\\| vs PyTorch (m/s) |",
        "|---|---|---|---|---|",
    ]
    for name, r in lat.items():
        diff = "—" if r["max_abs_diff_vs_pytorch"] is None else f"{r['max_abs_diff_vs_pytorch']:.2e}"
        lines.append(f"| {name} | {r['p50_ms']:.2f} | {r['p90_ms']:.2f} | {r['mean_ms']:.2f} | {diff} |")
    cl = run.get("closed_loop")
    if cl:
        lines += ["", f"Closed loop, the same {cl['episodes']} evaluation episodes (seed {cl['seed']}) for each:", "",
                  "| backend | success | success left | success right | collision | timeout | side accuracy |",
                  "|---|---|---|---|---|---|---|"]
        for name in lat:
            r = cl[name]
            o = r["overall"]
            lines.append(f"| {name} | {_pct(o['success_rate'])} | {_pct(r['left']['success_rate'])} | "
                         f"{_pct(r['right']['success_rate'])} | {_pct(o['collision_rate'])} | "
                         f"{_pct(o['timeout_rate'])} | {_pct(o['side_accuracy'])} |")
    return "\n".join(lines)


def lerobot_section(roundtrip: dict | None, check: dict | None) -> str:
    lines = []
    if roundtrip:
        n = roundtrip["episodes"]
        exact = ", ".join(f"{k} {v}/{n}" for k, v in roundtrip["exact"].items())
        lines += [f"Round trip of {n} episodes ({roundtrip['frames']} frames) through `{roundtrip['codebase_version']}` "
                  f"at {roundtrip['fps']} fps: exact {exact}; frames mean absolute error "
                  f"{roundtrip['frame_mae_mean']} of 255 (worst episode {roundtrip['frame_mae_worst_episode']}); "
                  f"{roundtrip['source_mb']} MB of HDF5 became {roundtrip['dataset_mb']} MB."]
    if check:
        if check.get("ok"):
            lines += ["", f"LeRobot `LeRobotDataset` ({check.get('lerobot', '?')}) loaded the export: "
                      f"{check['episodes']} episodes, {check['frames']} frames, codebase {check['codebase_version']}, "
                      f"{check['frames_checked']} frames decoded (video backend `{check['video_backend']}`) with "
                      f"matching actions and tasks."]
        else:
            lines += ["", "LeRobot check did not pass: `" + json.dumps(check)[:600] + "`"]
    return "\n".join(lines)


def replace_section(doc: Path, name: str, body: str) -> None:
    text = doc.read_text()
    pattern = re.compile(rf"(<!-- {name}:begin -->\n).*?(<!-- {name}:end -->)", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{doc}: no <!-- {name}:begin --> / <!-- {name}:end --> markers")
    doc.write_text(pattern.sub(lambda m: m.group(1) + body.rstrip() + "\n" + m.group(2), text))


def _load(name: str) -> dict | None:
    path = RUNS / name
    return json.loads(path.read_text()) if path.is_file() else None


def main() -> int:
    runs = [(run, title) for run, title in ((_load("export_speed.json"), "Default threads (torch: 2, ONNX Runtime: its own pool)"),
                                            (_load("export_speed_1thread.json"), "One thread each "
                                             "(`OMP_NUM_THREADS=1 MOBILE_VLA_ONNX_THREADS=1`)")) if run]
    if runs:
        body = "\n\n".join(f"**{title}.** {export_section(run)}" for run, title in runs)
        replace_section(ROOT / "docs" / "results.md", "onnx-results", body)
    roundtrip, check = _load("lerobot_roundtrip.json"), _load("lerobot_check.json")
    if roundtrip or check:
        replace_section(ROOT / "docs" / "data.md", "lerobot-check", lerobot_section(roundtrip, check))
    return 0


if __name__ == "__main__":
    sys.exit(main())
