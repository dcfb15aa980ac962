"""The real-data workflow rehearsed without a robot: one-sided episodes alone vs co-trained.

1. collect one-sided episodes like the robot's (`sim collect --unpaired`: each scene once, on the
   side it suggests), paired simulator episodes, and held-out one-sided episodes;
2. train two policies at the same budget with configs/real.yaml: on the one-sided episodes alone,
   and on them co-trained with the paired episodes (half the batches each);
3. evaluate both: `diagnose` on the held-out one-sided episodes, and `eval-sim` on unseen scenes
   with the instruction the scene suggests and with the opposite one; the expert driving the
   instructed side and a scene follower (the expert driving the suggested side, whatever the
   instruction: what a policy that ignores the instruction at best does) on the same scenes.

Every stage writes its JSON under --out and is skipped when that exists (a training run when its
checkpoint has reached --steps), so a rerun resumes. Stages run by importance: both trainings,
then both diagnoses, then the closed loop where scene and instruction disagree, then where they
agree; <out>/report.json is rewritten after each, so a cut-short run still reports what it did.
Prints the final JSON object; `scripts/robot_data_results.py` renders it into docs/results.md.

    python benchmarks/robot_data_rehearsal.py --out outputs/rehearsal --steps 500 --eval-episodes 20
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "mobile_vla.cli"]


def run(args: list[str], out: Path | None = None) -> dict:
    """Run ``mobile-vla ARGS --json``; cache its JSON in ``out``."""
    if out is not None and out.is_file():
        return json.loads(out.read_text())
    t = time.perf_counter()
    proc = subprocess.run([*CLI, *args, "--json"], cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"failed: mobile-vla {' '.join(args)}")
    result = json.loads(proc.stdout)
    result["_seconds"] = round(time.perf_counter() - t, 1)
    if out is not None:
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(json.dumps(result, indent=2))
        os.replace(tmp, out)
    return result


def train_run(args: list[str], run_dir: Path, steps: int) -> dict:
    """``mobile-vla train``, skipped when ``run_dir``'s checkpoint has reached ``steps``."""
    state = run_dir / "checkpoint" / "trainer_state.json"
    if not (run_dir / "train.json").is_file() and state.is_file():
        done = json.loads(state.read_text())
        if int(done.get("step", -1)) >= steps:
            return {"step": done["step"], "metrics": done.get("metrics", {}), "_seconds": None}
    return run(args, run_dir / "train.json")


def write_report(out: Path, report: dict) -> None:
    tmp = out / "report.json.tmp"
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, out / "report.json")


def instructed_side_success(records: Path) -> dict:
    """Per instructed side: the fraction of episodes that reached the cup having passed on that side."""
    rows = [json.loads(line) for line in records.read_text().splitlines() if line.strip()]
    out = {}
    for side in ("left", "right", None):
        sel = [r for r in rows if side is None or r["side"] == side]
        if sel:
            out[side or "overall"] = sum(r["success"] and r["passed_side"] == r["side"] for r in sel) / len(sel)
    return out


def expert_references(episodes: int, seed: int, instruction_side: str, scenes: str | None = None) -> dict:
    """The expert on the same eval-sim scenes: driving the instructed side, and driving the suggested
    side whatever the instruction (a scene follower), judged against the instruction."""
    from mobile_vla.eval.closed_loop import instruction_sides
    from mobile_vla.sim.rollout import run_episode
    from mobile_vla.sim.scene import eval_scene_seed
    from mobile_vla.sim.suggested import suggested_side
    from mobile_vla.sim.tasks import resolve
    from mobile_vla.sim.world import World
    from mobile_vla.vocab.instructions import canonical_instruction

    _, spec, _, preset = resolve(None, scenes)
    per_scene = 2 if instruction_side == "both" else 1
    rows = {"expert": [], "scene_follower": []}
    with World() as world:
        for i in range((episodes + per_scene - 1) // per_scene):
            scene = preset.sample(eval_scene_seed(seed, i))
            for side in instruction_sides(scene, instruction_side):
                for name, drive in (("expert", side), ("scene_follower", suggested_side(scene))):
                    r = run_episode(world, scene, canonical_instruction(drive, spec.target), render=False, task=spec)
                    rows[name].append({"side": side, "success": r.success, "passed_side": r.passed_side})
    out = {}
    for name, rs in rows.items():
        out[name] = {s: sum(r["success"] and r["passed_side"] == r["side"] for r in sel) / len(sel)
                     for s in ("left", "right", "overall")
                     if (sel := [r for r in rs if s == "overall" or r["side"] == s])}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="outputs/rehearsal")
    ap.add_argument("--robot-episodes", type=int, default=200, help="one-sided training episodes (scenes)")
    ap.add_argument("--sim-episodes", type=int, default=240, help="paired simulator episodes (2 per scene)")
    ap.add_argument("--heldout-episodes", type=int, default=40, help="held-out one-sided episodes for diagnose")
    ap.add_argument("--steps", type=int, default=500, help="optimiser steps of each training run")
    ap.add_argument("--eval-episodes", type=int, default=20, help="eval-sim episodes per instruction side setting")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--scenes", default=None, metavar="NAME",
                    help="scene preset of every collection and evaluation (default: the cup task's, varied)")
    ap.add_argument("--runs", nargs="+", choices=("one_sided", "co_trained"), default=["one_sided", "co_trained"],
                    help="which training runs to do (default both; one alone when time is short)")
    ap.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                    help="a training-config override for both runs (repeatable), e.g. to fit a busy CPU")
    args = ap.parse_args()
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    s = args.seed
    scenes = ["--scenes", args.scenes] if args.scenes else []
    report: dict = {"config": vars(args), "started": time.strftime("%Y-%m-%dT%H:%M:%S")}

    report["collect"] = {
        "robot": run(["sim", "collect", "--unpaired", "--out", str(out / "robot"), "--episodes",
                      str(args.robot_episodes), "--seed", str(s), "--no-progress", *scenes]),
        "sim": run(["sim", "collect", "--out", str(out / "sim"), "--episodes", str(args.sim_episodes),
                    "--seed", str(s + 1), "--no-progress", *scenes]),
        "robot_heldout": run(["sim", "collect", "--unpaired", "--out", str(out / "robot_heldout"), "--episodes",
                              str(args.heldout_episodes), "--seed", str(s + 104729), "--noise", "0",
                              "--no-progress", *scenes]),
    }
    runs = {
        "one_sided": f"data.episodes={out / 'robot'}",
        "co_trained": f"data.episodes=[{{path: {out / 'robot'}, weight: 1, name: robot}}, "
                      f"{{path: {out / 'sim'}, weight: 1, name: sim}}]",
    }
    runs = {name: runs[name] for name in args.runs}
    report["references"] = {side: expert_references(args.eval_episodes, s, side, args.scenes)
                            for side in ("opposite", "suggested")}
    report["runs"] = {name: {"eval_sim": {}} for name in runs}
    for name, episodes in runs.items():
        run_dir = out / name
        train = train_run(["train", "--config", "configs/real.yaml", "--out", str(run_dir), episodes,
                           f"trainer.max_steps={args.steps}",
                           # Lightning stops at max_steps before a validation due on that step
                           f"trainer.val_check_interval={max(1, args.steps - 1)}",
                           f"trainer.checkpoint_every_n_steps={args.steps}", f"trainer.seed={s}", *args.override],
                          run_dir, args.steps)
        report["runs"][name].update({"train_seconds": train.get("_seconds"), "val": train.get("metrics", {})})
        write_report(out, report)
    for name in runs:
        report["runs"][name]["diagnose"] = run(
            ["diagnose", "--checkpoint", str(out / name / "checkpoint"), "--data", str(out / "robot_heldout")],
            out / name / "diagnose.json")
        write_report(out, report)
    for side in ("opposite", "suggested"):
        for name in runs:
            records = out / name / f"eval_sim_{side}.jsonl"
            e = run(["eval-sim", "--checkpoint", str(out / name / "checkpoint"), "--episodes", str(args.eval_episodes),
                     "--seed", str(s), "--instruction-side", side, "--records", str(records), *scenes],
                    out / name / f"eval_sim_{side}.json")
            e["instructed_side_success"] = instructed_side_success(records)
            report["runs"][name]["eval_sim"][side] = e
            write_report(out, report)
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
