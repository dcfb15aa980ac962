"""The demo's ``report.html``: one self-contained page (no file beside it is needed to view it).

It holds the closed-loop summary table (the policy, and the blind baseline and expert rows when
the report has them), the headline grounding figures, the PNG figures and a few rollout MP4s,
each embedded as a base64 ``data:`` URI. Rebuild it for a finished demo folder with
``python -m mobile_vla.eval.report_html OUT_DIR``.
"""

from __future__ import annotations

import base64
import html
import json
import math
import sys
from pathlib import Path
from typing import Any

REPORT_HTML = "report.html"
#: (row label, report key): the closed-loop sections a report may hold, in table order.
SECTIONS = (("policy", "closed_loop"), ("blind baseline", "closed_loop_blind"), ("expert", "closed_loop_expert"))
MAX_VIDEOS = 4

_STYLE = """
body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child,td:first-child{text-align:left}.videos{display:flex;flex-wrap:wrap;gap:12px}
figure{margin:0}figcaption{font-size:.85em;color:#555}img{max-width:100%}video{width:480px;max-width:100%}
"""


def _data_uri(path: Path, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _pct(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0%}"


def _num(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"


def summary_rows(report: dict[str, Any]) -> list[list[str]]:
    """``[who, instruction, success, collision, timeout, side accuracy, episodes]`` per available section."""
    rows = []
    for label, key in SECTIONS:
        section = report.get(key)
        if not section:
            continue
        for part in ("left", "right", "overall"):
            r = section.get(part)
            if r:
                rows.append([label, part, _pct(r["success_rate"]), _pct(r["collision_rate"]),
                             _pct(r["timeout_rate"]), _pct(r["side_accuracy"]), str(r.get("episodes", ""))])
    return rows


def render_html(report: dict[str, Any], out_dir: str | Path, videos: list[Path] | None = None) -> str:
    out_dir = Path(out_dir)
    esc = html.escape
    parts = ["<!doctype html><html lang='en'><head><meta charset='utf-8'>",
             "<title>Mobile VLA demo report</title>", f"<style>{_STYLE}</style></head><body>",
             "<h1>Mobile VLA demo report</h1>",
             f"<p>Seed {esc(str(report.get('seed')))}, {esc(str(report.get('train_steps')))} optimiser steps, "
             f"{esc(str(report.get('wall_minutes')))} minutes wall time.</p>",
             "<h2>Closed loop</h2><table><tr><th>who</th><th>instruction</th><th>success</th><th>collision</th>"
             "<th>timeout</th><th>side accuracy</th><th>episodes</th></tr>"]
    for row in summary_rows(report):
        parts.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>")
    parts.append("</table>")
    heldout = report.get("closed_loop_heldout_phrasings")
    if heldout:
        parts.append(f"<p>Held-out phrasings: success {_pct(heldout['overall']['success_rate'])}.</p>")
    grounding = [("flip divergence ratio", report.get("flip_divergence_ratio")),
                 ("side agreement", report.get("side_agreement")),
                 ("context cosine (original report: 0.74)", report.get("context_cosine")),
                 ("action difference m/s (original report: 0.001)", report.get("action_difference")),
                 ("first-action RMSE m/s", report.get("rmse_first_action"))]
    parts.append("<h2>Instruction grounding (held-out episodes)</h2><table>")
    parts += [f"<tr><td>{esc(k)}</td><td>{_num(v)}</td></tr>" for k, v in grounding]
    parts.append("</table>")
    videos = sorted(videos if videos is not None else (out_dir / "videos").glob("*.mp4"))[:MAX_VIDEOS]
    if videos:
        parts.append("<h2>Rollouts</h2><p>Camera (left) beside the top-down path, coloured by the instructed "
                     "side (blue left, orange right).</p><div class='videos'>")
        for v in videos:
            parts.append(f"<figure><video controls autoplay muted loop playsinline preload='auto' "
                         f"src='{_data_uri(v, 'video/mp4')}'></video><figcaption>{esc(v.stem)}</figcaption></figure>")
        parts.append("</div>")
    figures = report.get("figures") or {}
    if figures:
        parts.append("<h2>Figures</h2>")
    for name, path in figures.items():
        p = Path(path)
        p = p if p.is_file() else out_dir / p.name
        if p.is_file():
            parts.append(f"<figure><img alt='{esc(name)}' src='{_data_uri(p, 'image/png')}'>"
                         f"<figcaption>{esc(name)}</figcaption></figure>")
    timings = report.get("timings_s") or {}
    if timings:
        parts.append("<p>Stage timings (s): " + esc(", ".join(f"{k} {v}" for k, v in timings.items())) + "</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report_html(report: dict[str, Any], out_dir: str | Path) -> Path:
    """Write ``out_dir/report.html`` atomically."""
    out_dir = Path(out_dir)
    target = out_dir / REPORT_HTML
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(render_html(report, out_dir))
    tmp.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m mobile_vla.eval.report_html DEMO_OUT_DIR", file=sys.stderr)
        return 2
    out = Path(args[0])
    print(write_report_html(json.loads((out / "report.json").read_text()), out))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
