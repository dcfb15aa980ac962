"""Write the results tables of docs/results.md from the runs' report.json files (never by hand).

Inputs, under ``--results`` (default ``results/``, committed):

- ``scene_presets.json`` — ``benchmarks/scene_presets.py --out``: the expert on every preset and
  the cup's pixels in the start frame;
- ``<preset>/<run>/report.json`` — ``mobile-vla eval-sim ... --out <preset>/<run>`` (the expert
  and blind baselines, policies, ``--blank-frames``) or the grounding ablation's closed-loop
  reports. Runs are grouped by their evaluation scenes (``scene_seeds``): one table per preset and
  scene list, so every row of a table was scored on the same scenes;
- ``ablation_<preset>.json`` — ``benchmarks/grounding_ablation.py``'s ``ablation.json``;
- ``grounding/<name>_seed<S>.json`` — ``mobile-vla diagnose --json`` of one checkpoint family's
  seed-S checkpoint on ``mobile-vla sim collect --episodes 40 --seed S`` episodes;
- ``sweeps/<sweep>/<setting>_seed<S>.json`` — ``mobile-vla eval-sim --json`` of one setting on
  seed S's checkpoint and scenes (``blind`` and ``expert``: the baselines on the same scenes). Each
  sweep is one table, a row per setting with its mean over the seeds beside the per-seed figures;
  every seed's reports must share their scenes.

Each table replaces the text between ``<!-- generated: NAME -->`` and ``<!-- end generated: NAME -->``
in the document. Rates carry their 95 % Wilson interval. ``--check`` exits 1 when the document
differs from what the reports give (the tests run it).

    python scripts/results_tables.py            # rewrite docs/results.md
    python scripts/results_tables.py --check    # is it up to date?
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from pathlib import Path

Z95 = 1.959964
CONTROLLER_ORDER = {"expert": 0, "blind": 1}
TARGETS = {"varied": 0.30, "cluttered": 0.20}  # the blind baseline's ceiling per side


def wilson(successes: int, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a rate ``successes / n``."""
    if n <= 0:
        raise ValueError("a rate needs at least one episode")
    p = successes / n
    denom = 1 + Z95**2 / n
    centre = (p + Z95**2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(r: float, n: int) -> str:
    """``"62 % [52–71]"``: the rate over ``n`` episodes with its 95 % Wilson interval."""
    k = round(r * n)
    lo, hi = wilson(k, n)
    return f"{100 * r:.0f} % [{100 * lo:.0f}–{100 * hi:.0f}]"


def _load(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"{path}: cannot read a JSON report ({exc})") from None


def _require(report: dict, path: Path, *keys: str, what: str = "an eval-sim report (--out DIR writes one)") -> None:
    missing = [k for k in keys if k not in report]
    if missing:
        raise SystemExit(f"{path}: missing {missing}; expected {what}")


def row_label(report: dict, run: str) -> str:
    controller = report.get("controller", "policy")
    if controller == "expert":
        return "expert"
    if controller == "blind":
        return "blind baseline (mean expert action per step, never looks)"
    name = report.get("row", run)
    return f"policy: {name}" + (" — blank frames" if report.get("blank_frames") else "")


def closed_loop_tables(results: Path) -> dict[str, str]:
    """``{preset}_seed{base seed}_{episodes per side}`` → a markdown table of every run on those scenes."""
    groups: dict[tuple[str, tuple[int, ...]], list[tuple[str, dict]]] = {}
    for path in sorted(results.glob("*/*/report.json")):
        report = _load(path)
        _require(report, path, "scenes", "scene_seeds", "left", "right", "overall")
        groups.setdefault((report["scenes"], tuple(report["scene_seeds"])), []).append((path.parent.name, report))
    tables = {}
    for (preset, seeds), runs in sorted(groups.items()):
        runs.sort(key=lambda x: (CONTROLLER_ORDER.get(x[1].get("controller", "policy"), 2), x[0]))
        n_left = runs[0][1]["left"]["episodes"]
        lines = [f"Preset `{preset}`, {len(seeds)} evaluation scenes (evaluation seed stream of base seed "
                 f"{runs[0][1].get('seed')}, scene seeds {seeds[0]}, {seeds[1] if len(seeds) > 1 else ''}…), "
                 f"{n_left} episodes per side:", "",
                 "| run | success, left | success, right | passed on the instructed side | collision | "
                 "report |", "|---|---|---|---|---|---|"]
        for run, r in runs:
            lines.append(f"| {row_label(r, run)} | {rate(r['left']['success_rate'], r['left']['episodes'])} | "
                         f"{rate(r['right']['success_rate'], r['right']['episodes'])} | "
                         f"{rate(r['overall']['side_accuracy'], r['overall']['episodes'])} | "
                         f"{rate(r['overall']['collision_rate'], r['overall']['episodes'])} | "
                         f"`results/{preset}/{run}/report.json` |")
        if not any(r.get("controller", "policy") == "policy" for _, r in runs):
            lines += ["", "No policy has been evaluated on these scenes yet."]
        name = f"{preset}_seed{runs[0][1].get('seed')}_{n_left}"
        if name in tables:
            raise SystemExit(f"two different scene lists would both be table {name!r}: "
                             f"{[run for run, _ in runs]} and an earlier group")
        tables[name] = "\n".join(lines)
    return tables


def targets_table(results: Path) -> str:
    """The issue's targets against the 100-episodes-per-side runs."""
    lines = ["| preset | target | measured | met |", "|---|---|---|---|"]
    for path in sorted(results.glob("*/*/report.json")):
        r = _load(path)
        if r["left"]["episodes"] < 100 or r.get("controller") not in ("expert", "blind"):
            continue
        preset = r["scenes"]
        if r["controller"] == "expert":
            ok = min(r["left"]["success_rate"], r["right"]["success_rate"]) >= 0.99 and \
                r["overall"]["side_accuracy"] == 1.0
            lines.append(f"| {preset} | expert ≥ 99 % success per side, 100 % on the instructed side | "
                         f"left {rate(r['left']['success_rate'], r['left']['episodes'])}, right "
                         f"{rate(r['right']['success_rate'], r['right']['episodes'])}; instructed side "
                         f"{rate(r['overall']['side_accuracy'], r['overall']['episodes'])} | {'yes' if ok else 'no'} |")
        elif preset in TARGETS:
            worst = max(r["left"]["success_rate"], r["right"]["success_rate"])
            over = round(100 * (worst - TARGETS[preset]))
            verdict = "yes" if worst <= TARGETS[preset] else f"no: {over} point{'s' if over != 1 else ''} over"
            lines.append(f"| {preset} | blind baseline ≤ {100 * TARGETS[preset]:.0f} % success per side | "
                         f"left {rate(r['left']['success_rate'], r['left']['episodes'])}, right "
                         f"{rate(r['right']['success_rate'], r['right']['episodes'])} | {verdict} |")
    return "\n".join(lines)


def presets_table(results: Path) -> str:
    path = results / "scene_presets.json"
    data = _load(path)
    lines = ["| preset | expert success (episodes) | expert on the instructed side | cup pixels in the start "
             "frame: min / 5th pct / median (scenes) | scenes below 20 px |", "|---|---|---|---|---|"]
    for name, p in data["presets"].items():
        e, c = p["expert"], p["cup_pixels"]
        lines.append(f"| {name} | {rate(e['success_rate'], e['episodes'])} ({e['episodes']}) | "
                     f"{100 * e['side_accuracy']:.0f} % | {c['min']} / {c['p5']:.0f} / {c['median']:.0f} ({c['scenes']}) | "
                     f"{c['below_min']} |")
    return "\n".join(lines)


def ablation_tables(results: Path) -> dict[str, str]:
    tables = {}
    for path in sorted(results.glob("ablation_*.json")):
        data = _load(path)
        n = data["episodes"] // 2
        lines = [f"{data['steps']} optimiser steps, {data['scenes']} paired training scenes of `{data['scene_preset']}`, "
                 f"seeds {sorted({s for r in data['rows'].values() for s in r['seeds']})}; closed loop on "
                 f"{data['episodes']} episodes ({n} per side):", "",
                 "| row | flip divergence ratio | side agreement | side agreement (any) | success, left | "
                 "success, right | collision |", "|---|---|---|---|---|---|---|"]
        for name, r in data["rows"].items():
            lines.append(f"| {name} | {r['flip_divergence_ratio']['mean']:.3f} | {r['side_agreement']['mean']:.3f} | "
                         f"{r['side_agreement_any']['mean']:.3f} | {rate(r['success_left']['mean'], n)} | "
                         f"{rate(r['success_right']['mean'], n)} | "
                         f"{rate(r['collision_rate']['mean'], 2 * n)} |")
        tables[path.stem] = "\n".join(lines)
    return tables


def grounding_tables(results: Path) -> dict[str, str]:
    """One table per checkpoint family from ``grounding/<name>_seed<S>.json``: ``mobile-vla diagnose
    --json`` on ``sim collect --episodes 40 --seed S`` episodes, the grounding issue's targets."""
    runs: dict[str, list[tuple[int, Path, dict]]] = {}
    for path in sorted((results / "grounding").glob("*_seed*.json")):
        name, _, seed = path.stem.rpartition("_seed")
        report = _load(path)
        _require(report, path, "flip_divergence_ratio", "side_agreement", "side_agreement_by_phase", "action_difference",
                 what="the output of mobile-vla diagnose --json")
        runs.setdefault(name, []).append((int(seed), path, report))
    tables = {}
    for name, rows in runs.items():
        lines = ["| seed | `flip_divergence_ratio` (≥ 0.9) | `side_agreement` (≥ 0.98) | beside (≥ 0.9) | approach | "
                 "after | action difference m/s | JSON |", "|---|---|---|---|---|---|---|---|"]
        for seed, path, r in sorted(rows, key=lambda row: row[0]):
            phase = r["side_agreement_by_phase"]
            cells = [f"{r['flip_divergence_ratio']:.3f}", f"{r['side_agreement']:.3f}",
                     *("n/a" if phase.get(p) is None else f"{phase[p]:.3f}" for p in ("beside", "approach", "after")),
                     f"{r['action_difference']:.3f}", f"`{results.name}/grounding/{path.name}`"]
            lines.append(f"| {seed} | " + " | ".join(cells) + " |")
        tables[f"grounding_{name}"] = "\n".join(lines)
    return tables


def _sweep_mean(rows: dict[int, dict]):
    """``mean(side, metric)`` over one setting's seeds, as a percentage."""
    return lambda side, metric: f"{100 * sum(r[side][metric] for r in rows.values()) / len(rows):.1f} %"


GOAL_SIDES = ("instructed", "other")  # eval-sim's by_goal_side: the goal on the instructed side, or across


def _goal_mean(rows: dict[int, dict], group: str, metric: str) -> str:
    return f"{100 * sum(r['by_goal_side'][group][metric] for r in rows.values()) / len(rows):.1f} %"


def _phase_means(rows: dict[int, dict]) -> str:
    """Failed episodes by the phase where they ended (summed over outcomes), mean over seeds."""
    share = lambda r, p: sum(o.get(p, 0.0) for o in r["failure_phases"].values())  # noqa: E731
    return " / ".join(f"{100 * sum(share(r, p) for r in rows.values()) / len(rows):.1f} %"
                      for p in ("approach", "beside", "after")) + " | "


def _taken_means(rows: dict[int, dict]) -> str:
    """Episodes that passed the cluster on the left / on the right (no-side evaluations), mean over seeds."""
    return " / ".join(f"{100 * sum(r['sides_taken'][side] for r in rows.values()) / len(rows):.1f} %"
                      for side in ("left", "right")) + " | "


def sweep_tables(results: Path) -> dict[str, str]:
    """``sweep_<sweep>`` → settings against seeds, from ``sweeps/<sweep>/<setting>_seed<S>.json``."""
    tables = {}
    for folder in sorted(p for p in (results / "sweeps").glob("*") if p.is_dir()):
        runs: dict[str, dict[int, dict]] = {}
        scenes: dict[int, tuple[str, list[int]]] = {}
        for path in sorted(folder.glob("*_seed*.json")):
            setting, _, seed = path.stem.rpartition("_seed")
            report = _load(path)
            _require(report, path, "scenes", "scene_seeds", "left", "right", "overall", what="the output of eval-sim --json")
            key = (report["scenes"], report["scene_seeds"])
            if scenes.setdefault(int(seed), key) != key:
                raise SystemExit(f"{path}: its scenes differ from another seed-{seed} report of sweep {folder.name!r}")
            runs.setdefault(setting, {})[int(seed)] = report
        seeds = sorted(scenes)
        # Reports written since eval-sim split episodes by the goal's side: two more columns.
        by_goal = all((r.get("by_goal_side") or {}).get(g) for rows in runs.values() for r in rows.values()
                      for g in GOAL_SIDES)
        goal_head = "".join(f"goal {g}: success / collision | " for g in GOAL_SIDES) if by_goal else ""
        phased = all("failure_phases" in r for rows in runs.values() for r in rows.values())
        phase_head = "failed: approach / beside / after | " if phased else ""
        # No-side evaluations say which side the robot passed on.
        taken = all(r.get("sides_taken") for rows in runs.values() for r in rows.values())
        taken_head = "passed left / right | " if taken else ""
        lines = [f"| setting | success, mean | left | right | collision | timeout | {goal_head}{phase_head}"
                 f"{taken_head}per seed, left / right | seeds |",
                 "|---|---|---|---|---|---|---|---|" + "---|" * (2 * by_goal + phased + taken)]
        order = sorted(runs, key=lambda name: (CONTROLLER_ORDER.get(name, 2), name))
        for setting in order:
            rows = runs[setting]
            mean = _sweep_mean(rows)
            per_seed = ", ".join(f"{100 * rows[s]['left']['success_rate']:.0f} / {100 * rows[s]['right']['success_rate']:.0f}"
                                 if s in rows else "–" for s in seeds)
            goal = "".join(f"{_goal_mean(rows, g, 'success_rate')} / {_goal_mean(rows, g, 'collision_rate')} | "
                           for g in GOAL_SIDES) if by_goal else ""
            lines.append(f"| {setting} | {mean('overall', 'success_rate')} | {mean('left', 'success_rate')} | "
                         f"{mean('right', 'success_rate')} | "
                         f"{mean('overall', 'collision_rate')} | {mean('overall', 'timeout_rate')} | {goal}"
                         f"{_phase_means(rows) if phased else ''}{_taken_means(rows) if taken else ''}{per_seed} | "
                         f"{', '.join(map(str, sorted(rows)))} |")
        episodes = {r["left"]["episodes"] for rows in runs.values() for r in rows.values()}
        lines += ["", f"{'/'.join(map(str, sorted(episodes)))} episodes per side and seed; reports in "
                      f"`{results.name}/sweeps/{folder.name}/`."]
        tables[f"sweep_{folder.name}"] = "\n".join(lines)
    return tables


def all_tables(results: Path) -> dict[str, str]:
    tables = {"targets": targets_table(results), **closed_loop_tables(results), **ablation_tables(results),
              **grounding_tables(results), **sweep_tables(results)}
    if (results / "scene_presets.json").is_file():
        tables["scene_presets"] = presets_table(results)
    return tables


def fill(doc: str, tables: dict[str, str]) -> str:
    """Replace each generated block of ``doc`` with its table; every block must have one."""
    def replace(m: re.Match) -> str:
        name = m.group(1)
        if name not in tables:
            raise SystemExit(f"the document has a block {name!r} but no report produces it; have {sorted(tables)}")
        return f"<!-- generated: {name} -->\n{tables[name]}\n<!-- end generated: {name} -->"

    return re.sub(r"<!-- generated: (\S+) -->.*?<!-- end generated: \1 -->", replace, doc, flags=re.S)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", default="results", help="folder of run reports")
    ap.add_argument("--doc", default="docs/results.md", help="document whose generated blocks are rewritten")
    ap.add_argument("--check", action="store_true", help="exit 1 if the document is not up to date")
    args = ap.parse_args(argv)
    doc_path = Path(args.doc)
    doc = doc_path.read_text()
    new = fill(doc, all_tables(Path(args.results)))
    if args.check:
        if new != doc:
            print(f"{doc_path}: tables differ from the reports in {args.results}; run scripts/results_tables.py",
                  file=sys.stderr)
            return 1
        return 0
    if new != doc:
        tmp = doc_path.with_name(doc_path.name + ".tmp")
        tmp.write_text(new)
        tmp.replace(doc_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
