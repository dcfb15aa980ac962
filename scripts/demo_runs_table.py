"""Write the per-seed demo table of docs/results.md from demo reports (never by hand).

Inputs: ``results/demo_runs/<recipe>_seed<S>.json``, each the ``report.json`` of one
``mobile-vla demo`` run, copied unchanged (``scripts/keep_demo_report.sh`` or ``cp``). Runs are
grouped by ``<recipe>``; each group gets one row per seed and a mean ± sd row, so every figure
comes with its spread over seeds. The table replaces the text between
``<!-- demo-runs:begin -->`` and ``<!-- demo-runs:end -->``; where the document also has a
``<!-- demo-tasks:begin -->`` … ``<!-- demo-tasks:end -->`` block, the demos that trained one policy
on several tasks get one row per task there. ``--check`` exits 1 when the document is stale.

    python scripts/demo_runs_table.py            # rewrite docs/results.md
    python scripts/demo_runs_table.py --check
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from pathlib import Path

from mobile_vla.jsonio import write_text_atomic

BEGIN, END = "<!-- demo-runs:begin -->", "<!-- demo-runs:end -->"
# The demos that trained one policy on several tasks, one row per task (optional in a document).
TASKS_BEGIN, TASKS_END = "<!-- demo-tasks:begin -->", "<!-- demo-tasks:end -->"
# Settings named in a recipe's line only where they differ from the default (older reports lack the keys).
EXTRA_SETTINGS = {"family_weights": None, "tasks": ["cup"], "dagger_beta": 0.3, "dagger_strategy": "first",
                  "dagger_recent_weight": 1.0, "select_episodes": 0, "average_rounds": 1, "no_side_fraction": 0.1,
                  "expert.no_side_route": "view", "expert.clearance": 0.6, "expert.front_margin": 0.3,
                  "expert.exit_margin": 0.05, "mixed_fraction": 0.0}
NAME = re.compile(r"^(?P<recipe>.+)_seed(?P<seed>\d+)$")
# (header, how to read it from a report, format): rates as percentages, the rest as numbers.
COLUMNS = (
    ("success left", lambda r: r["success_left"], "pct"),
    ("success right", lambda r: r["success_right"], "pct"),
    ("blind left", lambda r: r["blind_success_left"], "pct"),
    ("blind right", lambda r: r["blind_success_right"], "pct"),
    # n/a for reports written before the demo scored the expert on its evaluation scenes
    ("expert, both sides", lambda r: (r["expert_success_left"] + r["expert_success_right"]) / 2, "pct"),
    ("successes on the instructed side", lambda r: r["closed_loop"]["overall"]["success_side_accuracy"], "pct"),
    ("collision", lambda r: r["collision_rate"], "pct"),
    ("held-out phrasings, instructed side", lambda r: r["closed_loop_heldout_phrasings"]["overall"]["success_on_side_rate"], "pct"),
    ("flip ratio", lambda r: r["flip_divergence_ratio"], "num"),
    ("side agreement", lambda r: r["side_agreement"], "num"),
    ("side agreement beside", lambda r: r["offline"]["grounding"]["side_agreement_by_phase"]["beside"], "num"),
    ("wall min", lambda r: r["wall_minutes"], "min"),
)
PHASES = ("approach", "beside", "after")


def phase_failures(report: dict, path: Path) -> dict[str, float] | None:
    """Failed episodes by the phase where they ended, summed over outcomes (fractions of all episodes).

    From the report (``closed_loop_failure_phases``) or, for reports written before the demo
    recorded it, from the run's ``records.jsonl`` kept beside it as ``<name>.records.jsonl``.
    """
    phases = report.get("closed_loop_failure_phases")
    if phases is None:
        records = path.with_name(path.stem + ".records.jsonl")
        if not records.is_file():
            return None
        from mobile_vla.eval.failures import failure_phases

        phases = failure_phases(json.loads(line) for line in records.read_text().splitlines() if line.strip())
    return {p: sum(by_phase[p] for by_phase in phases.values()) for p in PHASES}


def _setting(cfg: dict, key: str, default):
    """A demo setting by its dotted name (``expert.no_side_route``); ``default`` where a report lacks it."""
    for part in key.split("."):
        if not isinstance(cfg, dict) or part not in cfg:
            return default
        cfg = cfg[part]
    return cfg


def _value(report: dict, read) -> float | None:
    try:
        v = read(report)
    except (KeyError, TypeError):
        return None
    return None if v is None else float(v)


def _fmt(v: float | None, kind: str) -> str:
    if v is None or v != v:
        return "n/a"
    return f"{v:.0%}".replace("%", " %") if kind == "pct" else f"{v:.1f}" if kind == "min" else f"{v:.3f}"


def _spread(values: list[float | None], kind: str) -> str:
    vals = [v for v in values if v is not None and v == v]
    if kind == "min":  # wall time depends on the machine's load and on resumes, not on the seed
        return "–"
    if not vals:
        return "n/a"
    if len(vals) == 1:  # one report of the group has it: no spread to give
        return _fmt(vals[0], kind) + " (1 run)"
    mean, sd = statistics.fmean(vals), statistics.stdev(vals)
    if kind == "pct":
        return f"{mean:.0%} ± {sd:.0%}".replace("%", " %")
    return f"{mean:.1f} ± {sd:.1f}" if kind == "min" else f"{mean:.3f} ± {sd:.3f}"


def load_runs(folder: Path) -> dict[str, list[tuple[int, dict]]]:
    groups: dict[str, list[tuple[int, dict]]] = {}
    for path in sorted(folder.glob("*_seed*.json")):
        m = NAME.match(path.stem)
        if not m:
            raise SystemExit(f"{path}: expected a name <recipe>_seed<S>.json")
        try:
            report = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise SystemExit(f"{path}: not JSON ({e})") from None
        for key in ("success_left", "success_right", "seed", "config"):
            if key not in report:
                raise SystemExit(f"{path}: missing {key!r}; expected a demo report.json")
        if int(report["seed"]) != int(m["seed"]):
            raise SystemExit(f"{path}: the name says seed {m['seed']}, the report says {report['seed']}")
        report["_failures"] = phase_failures(report, path)
        groups.setdefault(m["recipe"], []).append((int(m["seed"]), report))
    return {k: sorted(v, key=lambda x: x[0]) for k, v in sorted(groups.items())}


def table(groups: dict[str, list[tuple[int, dict]]]) -> str:
    if not groups:
        return "No demo run has been recorded yet."
    head = "| recipe | seed | " + " | ".join(c[0] for c in COLUMNS) + " | failed: approach / beside / after |"
    lines = [head, "|" + "---|" * (len(COLUMNS) + 3)]

    def where(r: dict) -> str:
        f = r["_failures"]
        return "n/a" if f is None else " / ".join(_fmt(f[p], "pct") for p in PHASES)

    for recipe, runs in groups.items():
        for seed, r in runs:
            lines.append(f"| {recipe} | {seed} | " + " | ".join(_fmt(_value(r, read), kind) for _, read, kind in COLUMNS)
                         + f" | {where(r)} |")
        if len(runs) > 1:
            cells = [_spread([_value(r, read) for _, r in runs], kind) for _, read, kind in COLUMNS]
            fails = [r["_failures"] for _, r in runs if r["_failures"] is not None]
            mean_where = " / ".join(_fmt(sum(f[p] for f in fails) / len(fails), "pct") for p in PHASES) if fails else "n/a"
            lines.append(f"| **{recipe}** | mean ± sd ({len(runs)}) | " + " | ".join(cells) + f" | {mean_where} |")
    settings = []
    for recipe, runs in groups.items():
        cfg = runs[0][1]["config"]
        settings.append(f"- `{recipe}`: scenes `{cfg.get('scenes') or 'varied'}`, {cfg['num_scenes']} paired scenes, "
                        f"{cfg['train_steps']} steps + {cfg['dagger_rounds']} DAgger rounds × {cfg['dagger_scenes']} "
                        f"scenes × {cfg['dagger_steps']} steps, train overrides `{cfg.get('train_overrides') or []}`, "
                        f"chunk execution `{cfg.get('strategy', 'first')}`"
                        + "".join(f", {key} `{_setting(cfg, key, default)}`" for key, default in EXTRA_SETTINGS.items()
                                  if _setting(cfg, key, default) != default))
    return "\n".join(lines + ["", "Settings of each recipe (from the reports' `config`):", *settings])


def task_table(groups: dict[str, list[tuple[int, dict]]]) -> str:
    """One row per task of every demo that trained one policy on several tasks: the task's own
    closed loop (training templates), each held-out family and no side (the demo's small samples:
    ``family_episodes`` per family), and the scenes holding every task's objects."""
    rows = [(recipe, seed, task, t, r["config"]) for recipe, runs in groups.items() for seed, r in runs
            if len(r.get("tasks") or {}) > 1 for task, t in r["tasks"].items()]
    if not rows:
        return "No demo with several tasks has been recorded yet."
    families = list(dict.fromkeys(f for *_, t, _ in rows for f in t["success_by_family"]))
    lines = ["| recipe | seed | task | training templates, left / right | "
             + " | ".join(f"`{f}`, left / right" for f in families)
             + " | no side named | mixed scenes, left / right | confusion | episodes per family and side |",
             "|" + "---|" * (len(families) + 8)]

    def pair(d: dict | None, left: str = "left", right: str = "right") -> str:
        return "n/a" if not d else f"{_fmt(d[left], 'pct')} / {_fmt(d[right], 'pct')}"

    for recipe, seed, task, t, cfg in rows:
        closed = {side: t["closed_loop"][side]["success_rate"] for side in ("left", "right")}
        mixed = t.get("mixed")
        cells = [pair(closed), *(pair(t["success_by_family"].get(f)) for f in families),
                 _fmt(t["no_side"]["success_rate"], "pct"),
                 pair(mixed, "success_left", "success_right"), _fmt(mixed["confusion"], "pct") if mixed else "n/a",
                 str(cfg.get("family_episodes", 10) // 2)]
        lines.append(f"| {recipe} | {seed} | `{task}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def fill(doc: str, text: str, begin: str = BEGIN, end: str = END) -> str:
    if begin not in doc or end not in doc:
        raise SystemExit(f"the document has no {begin} ... {end} block")
    start, stop = doc.index(begin) + len(begin), doc.index(end)
    return doc[:start] + "\n" + text + "\n" + doc[stop:]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, default=Path("results/demo_runs"))
    ap.add_argument("--doc", type=Path, default=Path("docs/results.md"))
    ap.add_argument("--check", action="store_true", help="exit 1 if the document is not up to date")
    args = ap.parse_args(argv)
    doc = args.doc.read_text()
    groups = load_runs(args.runs)
    new = fill(doc, table(groups))
    if TASKS_BEGIN in new:
        new = fill(new, task_table(groups), TASKS_BEGIN, TASKS_END)
    if args.check:
        if new != doc:
            print(f"{args.doc} is stale: run python scripts/demo_runs_table.py", file=sys.stderr)
            return 1
        return 0
    write_text_atomic(args.doc, new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
