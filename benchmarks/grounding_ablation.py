"""The grounding ablation (docs/grounding.md): which mechanism makes the policy obey the instruction?

Every row trains the same recipe (``configs/tiny.yaml``: tiny Kosmos-2, reactive window, scene
auxiliary loss) for the same number of steps on simulator data, then measures the grounding
diagnostic on held-out scenes and closed-loop success per instruction on unseen scenes.

Rows: no mechanism on *unpaired* data (one side per scene, like the original robot data), no
mechanism on paired data, each mechanism alone, all together. Prints one JSON object and writes
``<out>/ablation.json`` (per row: mean and spread over seeds) and ``<out>/ablation.md`` (the table of
docs/grounding.md). Finished runs are reused.

    MUJOCO_GL=egl .venv/bin/python benchmarks/grounding_ablation.py --out outputs/ablation --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

NONE = ["model.grounding.film=false", "model.grounding.counterfactual=false",
        "model.grounding.direction_aux=false", "model.grounding.contrastive=false"]
ROWS = {
    "unpaired, no mechanism": ("unpaired", NONE),
    "paired, no mechanism": ("paired", NONE),
    "paired, FiLM": ("paired", [*NONE, "model.grounding.film=true"]),
    "paired, direction classifier": ("paired", [*NONE, "model.grounding.direction_aux=true"]),
    "paired, counterfactual loss": ("paired", [*NONE, "model.grounding.counterfactual=true"]),
    "paired, contrastive loss": ("paired", [*NONE, "model.grounding.contrastive=true"]),
    "paired, all four": ("paired", ["model.grounding.film=true", "model.grounding.counterfactual=true",
                                   "model.grounding.direction_aux=true", "model.grounding.contrastive=true"]),
}
FIGURES = ("context_cosine", "action_difference", "flip_divergence_ratio", "side_agreement", "side_agreement_any")


def collect_data(out: Path, scenes: int, heldout_scenes: int, preset: str | None = None) -> tuple[Path, Path, Path]:
    from mobile_vla.data.episode import read_episode
    from mobile_vla.sim.collect import CollectConfig, collect

    paired, heldout, unpaired = out / "data" / "paired", out / "data" / "heldout", out / "data" / "unpaired"
    collect(CollectConfig(out=paired, episodes=2 * scenes, seed=0, scenes=preset), workers=2)
    collect(CollectConfig(out=heldout, episodes=2 * heldout_scenes, seed=99, noise_fraction=0.0, scenes=preset),
            workers=2)
    unpaired.mkdir(parents=True, exist_ok=True)
    for path in sorted(paired.glob("*.h5")):  # one side per scene, alternating like a 50/50 robot dataset
        attrs = read_episode(path, load_images=False).attrs
        keep = "left" if int(str(attrs["scene_id"]).rsplit("-", 1)[-1]) % 2 == 0 else "right"
        link = unpaired / path.name
        if attrs["side"] == keep and not link.exists():
            link.symlink_to(path.resolve())
    return paired, heldout, unpaired


def run_row(name: str, data: Path, overrides: list[str], seed: int, steps: int, out: Path, heldout: Path,
            episodes: int, preset: str | None = None) -> dict:
    from mobile_vla import Policy
    from mobile_vla.eval.closed_loop import evaluate_closed_loop
    from mobile_vla.eval.offline import evaluate_offline
    from mobile_vla.jsonio import write_json
    from mobile_vla.train.api import train
    from mobile_vla.train.config import load_train_config

    result_file = out / "result.json"
    if result_file.is_file():
        return json.loads(result_file.read_text())
    start = time.perf_counter()
    cfg = load_train_config("configs/tiny.yaml", [f"data.episodes={data}", f"trainer.max_steps={steps}",
                                                  f"trainer.seed={seed}", "trainer.checkpoint_every_n_steps=0",
                                                  "trainer.val_check_interval=100000", *overrides])
    checkpoint = train(cfg, out, trainer_kwargs={"enable_progress_bar": False})
    policy = Policy.from_checkpoint(checkpoint)
    grounding = evaluate_offline(policy, heldout, progress=False)["grounding"]
    # `first`: the chunk execution every recorded row of the ablation used.
    closed = evaluate_closed_loop(policy, episodes, seed=seed, strategy="first", progress=False, scenes=preset)
    closed.pop("records")
    (out / "closed_loop").mkdir(parents=True, exist_ok=True)
    write_json(out / "closed_loop" / "report.json", {**closed, "episodes": episodes, "row": name})
    result = {"row": name, "seed": seed, **{k: grounding[k] for k in FIGURES},
              "success_left": closed["left"]["success_rate"], "success_right": closed["right"]["success_rate"],
              "collision_rate": closed["overall"]["collision_rate"],
              "side_accuracy": closed["overall"]["side_accuracy"],
              "minutes": round((time.perf_counter() - start) / 60, 2)}
    result_file.write_text(json.dumps(result, indent=2))
    return result


def instruction_only(rows: dict, name: str, reference: str = "paired, no mechanism") -> bool:
    """Flip ratio above the reference row's while closed-loop success for an instruction falls below it."""
    if name == reference or reference not in rows:
        return False
    row, ref = rows[name], rows[reference]
    fell = any(row[k]["mean"] < ref[k]["mean"] for k in ("success_left", "success_right"))
    return row["flip_divergence_ratio"]["mean"] > ref["flip_divergence_ratio"]["mean"] and fell


def render_markdown(report: dict) -> str:
    """One table row per ablation row: mean ± spread (max − min over seeds)."""
    cols = [*FIGURES, "success_left", "success_right", "collision_rate"]
    pct = {"success_left", "success_right", "collision_rate"}
    lines = ["| row | " + " | ".join(cols) + " | note |", "|---" * (len(cols) + 2) + "|"]
    for name, row in report["rows"].items():
        cells = []
        for k in cols:
            m, d = row[k]["mean"], row[k]["spread"]
            cells.append(f"{m:.0%} ± {d:.0%}" if k in pct else f"{m:.3f} ± {d:.3f}")
        note = "instruction-only: flip ratio up, one side's success down" if instruction_only(report["rows"], name) else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {note} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="outputs/ablation")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=800, help="optimiser steps per run (the same for every row)")
    parser.add_argument("--scenes", type=int, default=160, help="training scenes (paired: 2 episodes each)")
    parser.add_argument("--heldout-scenes", type=int, default=20)
    parser.add_argument("--episodes", type=int, default=40, help="closed-loop episodes per run")
    parser.add_argument("--rows", nargs="*", help="subset of row names (default: all)")
    parser.add_argument("--scene-preset", default=None,
                        help="scene preset of the cup task for data and evaluation (default: the task's default)")
    args = parser.parse_args()

    out = Path(args.out)
    paired, heldout, unpaired = collect_data(out, args.scenes, args.heldout_scenes, args.scene_preset)
    rows = {}
    for name, (kind, overrides) in ROWS.items():
        if args.rows and name not in args.rows:
            continue
        runs = [run_row(name, paired if kind == "paired" else unpaired, overrides, seed, args.steps,
                        out / "runs" / name.replace(", ", "_").replace(" ", "-") / f"seed{seed}", heldout,
                        args.episodes, args.scene_preset) for seed in args.seeds]
        keys = [*FIGURES, "success_left", "success_right", "collision_rate", "side_accuracy"]
        rows[name] = {k: {"mean": float(np.nanmean([r[k] for r in runs])),
                          "spread": float(np.nanmax([r[k] for r in runs]) - np.nanmin([r[k] for r in runs]))}
                      for k in keys}
        rows[name]["seeds"] = args.seeds
    from mobile_vla.sim.tasks import resolve

    report = {"steps": args.steps, "scenes": args.scenes, "scene_preset": resolve("cup", args.scene_preset)[2],
              "episodes": args.episodes, "rows": rows}
    (out / "ablation.json").write_text(json.dumps(report, indent=2))
    (out / "ablation.md").write_text(render_markdown(report))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
