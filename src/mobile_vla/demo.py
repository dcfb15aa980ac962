"""The end-to-end demo on the embedded default: simulate, train, evaluate, report.

Stages (each skipped when its output already exists, so an interrupted demo resumes):

1. collect paired simulator episodes (every scene with a left and a right instruction,
   half of them with perturbed-and-recovered demonstrations);
2. train the tiny offline Kosmos-2 VLA;
3. DAgger rounds: roll the policy out (mixed with the expert), label every visited state
   with the expert, continue training on everything;
4. evaluate offline (fresh held-out scenes: errors + grounding diagnostic) and in closed loop
   (fresh scenes from the evaluation seed stream, training and held-out phrasings);
5. write ``report.json``, ``report.md``, PNG figures, rollout MP4s (``videos/``) and
   ``report.html`` (all of it in one self-contained page), and print a summary table.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import shutil
import time
from pathlib import Path
from typing import Any

from mobile_vla.config import from_dict
from mobile_vla.jsonio import write_json
from mobile_vla.sim.expert import ExpertConfig

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DemoConfig:
    out: str = "outputs/demo"
    seed: int = 0
    train_config: str = "configs/tiny.yaml"  # the model/optimiser recipe; overridden below
    scenes: int = 160  # paired: 2 episodes per scene
    workers: int = 2
    noise_fraction: float = 0.5
    expert: ExpertConfig = ExpertConfig()  # labels every collected state, e.g. expert.clearance=0.45
    train_steps: int = 800
    dagger_rounds: int = 2
    dagger_scenes: int = 60
    dagger_beta: float = 0.3  # probability of executing the expert's action at a step
    dagger_steps: int = 300  # extra optimiser steps per round
    heldout_scenes: int = 20  # fresh paired scenes for offline metrics, never trained on
    eval_episodes: int = 100
    heldout_episodes: int = 40  # closed loop with phrasings no training template contains
    strategy: str = "first"
    train_overrides: list[str] = dataclasses.field(default_factory=list)  # KEY=VALUE on the train config


def run_demo(cfg: DemoConfig, progress: bool = True) -> dict[str, Any]:
    """Run every stage; returns the report dict (also written to ``<out>/report.json``)."""
    from mobile_vla.train.config import load_train_config

    start = time.perf_counter()
    out = Path(cfg.out)
    data_root = out / "data"
    timings: dict[str, float] = {}

    def timed(name: str, fn, *args, **kwargs):
        t = time.perf_counter()
        result = fn(*args, **kwargs)
        timings[name] = round(time.perf_counter() - t, 1)
        log.info("demo: %s done in %.0f s", name, timings[name])
        return result

    timed("collect", _collect, data_root / "sim", 2 * cfg.scenes, cfg.seed, cfg.workers, cfg.noise_fraction,
          cfg.expert, progress=progress)
    train_cfg = load_train_config(cfg.train_config, [
        f"data.episodes={data_root}", f"trainer.max_steps={cfg.train_steps}", f"trainer.seed={cfg.seed}",
        f"data.split_seed={cfg.seed}", *cfg.train_overrides,
    ])
    checkpoint = timed("train", _train, train_cfg, out / "train_0", None, progress)
    total_steps = cfg.train_steps
    for r in range(1, cfg.dagger_rounds + 1):
        dagger_seed = cfg.seed + 7919 * r  # fresh scenes, never the evaluation stream
        timed(f"dagger_{r}_collect", _collect, data_root / f"dagger_{r}", 2 * cfg.dagger_scenes, dagger_seed,
              cfg.workers, 0.0, cfg.expert, policy=checkpoint, beta=cfg.dagger_beta, progress=progress)
        total_steps += cfg.dagger_steps
        train_cfg.trainer.max_steps = total_steps
        checkpoint = timed(f"dagger_{r}_train", _train, train_cfg, out / f"train_{r}", checkpoint, progress)
    final = out / "checkpoint"
    _publish(checkpoint, final)

    from mobile_vla import Policy
    from mobile_vla.eval.closed_loop import evaluate_closed_loop
    from mobile_vla.eval.offline import evaluate_offline
    from mobile_vla.eval.plots import plot_grounding, plot_training_curves

    policy = Policy.from_checkpoint(final)
    # Offline metrics on scenes that no training round saw (the validation split is re-drawn as
    # DAgger adds data, so it is not held out across rounds). Kept outside data_root.
    heldout_dir = out / "heldout"
    timed("collect_heldout", _collect, heldout_dir, 2 * cfg.heldout_scenes, cfg.seed + 104729, cfg.workers, 0.0,
          cfg.expert, progress=progress)
    offline = timed("eval_offline", evaluate_offline, policy, heldout_dir, progress=progress)
    paired = offline.pop("_paired")
    closed = timed("eval_sim", evaluate_closed_loop, policy, cfg.eval_episodes, cfg.seed, cfg.strategy,
                   video_dir=out / "videos", progress=progress)
    heldout = None
    if cfg.heldout_episodes:
        heldout = timed("eval_sim_heldout", evaluate_closed_loop, policy, cfg.heldout_episodes, cfg.seed + 1,
                        cfg.strategy, heldout_phrasings=True, progress=progress)

    figures = {}
    from mobile_vla.sim.plot import plot_trajectories

    figures["rollouts"] = str(plot_trajectories(closed["records"], out / "rollouts.png"))
    curves = plot_training_curves(out, out / "training_curves.png")
    if curves:
        figures["training_curves"] = str(curves)
    m = paired["mask_mirror"]
    if m.any():
        figures["grounding"] = str(plot_grounding(
            (paired["pred"] - paired["pred_mirror"])[m][:, 1], (paired["target"] - paired["target_mirror"])[m][:, 1],
            out / "grounding.png", "held-out episodes: instruction flip"))

    g = offline["grounding"]
    train_windows = _train_windows(train_cfg, policy)
    report = {
        "success_left": closed["left"]["success_rate"],
        "success_right": closed["right"]["success_rate"],
        "collision_rate": closed["overall"]["collision_rate"],
        "side_accuracy": closed["overall"]["side_accuracy"],
        "flip_divergence_ratio": g.get("flip_divergence_ratio"),
        "side_agreement": g.get("side_agreement"),
        "context_cosine": g.get("context_cosine"),
        "action_difference": g.get("action_difference"),
        "rmse_first_action": offline["actions"]["first"]["rmse_overall"],
        "train_windows": train_windows,
        "train_steps": total_steps,
        "wall_minutes": round((time.perf_counter() - start) / 60, 2),
        "seed": cfg.seed,
        "closed_loop": {k: closed[k] for k in ("overall", "left", "right")},
        "closed_loop_heldout_phrasings": {k: heldout[k] for k in ("overall", "left", "right")} if heldout else None,
        "offline": offline,
        "timings_s": timings,
        "figures": figures,
        "checkpoint": str(final),
        "config": dataclasses.asdict(cfg),
    }
    (out / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in closed["records"]))
    write_json(out / "report.json", report)
    (out / "report.md").write_text(render_markdown(report))
    from mobile_vla.eval.report_html import write_report_html

    write_report_html(report, out)
    return report


def _collect(out: Path, episodes: int, seed: int, workers: int, noise_fraction: float, expert: ExpertConfig,
             policy: Path | None = None, beta: float = 0.0, progress: bool = True) -> dict:
    from mobile_vla.sim.collect import CollectConfig, collect

    cfg = CollectConfig(out=out, episodes=episodes, seed=seed, expert=expert, noise_fraction=noise_fraction,
                        beta=beta)
    factory = None
    if policy is not None:
        from mobile_vla.sim.controllers import PolicyControllerFactory

        factory = PolicyControllerFactory(str(policy))
    return collect(cfg, workers=workers, controller_factory=factory, progress=progress)


def _train(train_cfg, out: Path, resume: Path | None, progress: bool) -> Path:
    from mobile_vla.train.api import train

    done = out / "checkpoint"
    if (done / "trainer_state.json").is_file():
        state = json.loads((done / "trainer_state.json").read_text())
        if int(state.get("step", -1)) >= train_cfg.trainer.max_steps:
            log.info("demo: %s already trained (step %s); reusing it", done, state.get("step"))
            return done
    return train(train_cfg, out, resume=resume, trainer_kwargs={"enable_progress_bar": progress})


def _publish(src: Path, dst: Path) -> None:
    """Copy the final checkpoint to ``dst`` atomically."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns("trainer.ckpt"))
    shutil.rmtree(dst, ignore_errors=True)
    tmp.rename(dst)


def _train_windows(train_cfg, policy) -> int:
    from mobile_vla.data.dataset import resolve_episodes
    from mobile_vla.data.formats import read_episode
    from mobile_vla.data.split import split_episodes

    train_paths, _ = split_episodes(resolve_episodes(train_cfg.data.episodes), train_cfg.data.val_fraction,
                                    train_cfg.data.split_seed)
    w, stride = policy.window_size, train_cfg.data.window_stride
    total = 0
    for path in train_paths:
        t = read_episode(path, load_images=False).num_frames
        total += max(0, math.floor((t - w) / stride)) + 1
    return total


def summary_table(report: dict) -> str:
    """The table printed at the end of the demo."""
    from mobile_vla.eval.grounding import REPORT_BASELINE

    rows = [("closed-loop success, left", f"{report['success_left']:.0%}"),
            ("closed-loop success, right", f"{report['success_right']:.0%}"),
            ("collision rate", f"{report['collision_rate']:.0%}"),
            ("passed on the instructed side", f"{report['side_accuracy']:.0%}")]
    h = report.get("closed_loop_heldout_phrasings")
    if h:
        rows.append(("success, held-out phrasings", f"{h['overall']['success_rate']:.0%}"))
    fmt = lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"  # noqa: E731
    rows += [("flip divergence ratio", fmt(report["flip_divergence_ratio"])),
             ("side agreement", fmt(report["side_agreement"])),
             (f"context cosine (report: {REPORT_BASELINE['context_cosine']})", fmt(report["context_cosine"])),
             (f"action difference m/s (report: {REPORT_BASELINE['action_difference']})",
              fmt(report["action_difference"])),
             ("first-action RMSE m/s", fmt(report["rmse_first_action"])),
             ("training windows", str(report["train_windows"])),
             ("wall time", f"{report['wall_minutes']:.1f} min")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def render_markdown(report: dict) -> str:
    lines = ["# Mobile VLA demo report", "",
             f"Seed {report['seed']}, {report['train_steps']} optimiser steps, "
             f"{report['wall_minutes']:.1f} minutes wall time.", "", "```", summary_table(report), "```", ""]
    lines += ["| closed loop | success | collision | timeout | side accuracy | mean steps |",
              "|---|---|---|---|---|---|"]
    for key, r in report["closed_loop"].items():
        lines.append(f"| {key} | {r['success_rate']:.2f} | {r['collision_rate']:.2f} | {r['timeout_rate']:.2f} | "
                     f"{r['side_accuracy']:.2f} | {r['mean_steps']:.1f} |")
    lines.append("")
    for name, path in report["figures"].items():
        lines.append(f"![{name}]({Path(path).name})")
    lines += ["", "Stage timings (s): " + ", ".join(f"{k} {v}" for k, v in report["timings_s"].items()), ""]
    return "\n".join(lines)


def load_demo_config(overrides: list[str], out: str | None = None, seed: int | None = None) -> DemoConfig:
    from mobile_vla.config import apply_overrides

    data = apply_overrides({}, overrides)
    if out is not None:
        data["out"] = out
    if seed is not None:
        data["seed"] = seed
    return from_dict(DemoConfig, data, "demo")
