"""The end-to-end demo on the embedded default: simulate, train, evaluate, report.

Every stage draws its scenes from one scene preset (``scenes``, default: the cup task's
default, ``varied``); ``num_scenes`` is how many paired scenes are collected for training.

Stages (a rerun with the same settings reuses finished stages and continues an interrupted one;
other settings stop with an error naming them unless ``--force-restart``; see fingerprint.py):

1. collect paired simulator episodes (every scene with a left and a right instruction,
   half of them with perturbed-and-recovered demonstrations);
2. train the tiny offline Kosmos-2 VLA;
3. DAgger rounds: roll the policy out (mixed with the expert), label every visited state
   with the expert, continue training on everything; publish the average of the rounds'
   weights (``average_rounds``) or the round best on validation (``select_episodes``);
4. evaluate offline (fresh held-out scenes: errors + grounding diagnostic) and in closed loop
   (fresh scenes from the evaluation seed stream: training instructions, each instruction
   family's held-out part, instructions that name no side; with several tasks, each task and
   scenes holding every task's objects, where the confusion between tasks is counted), and run
   the image-blind baseline and the expert on the same evaluation scenes;
5. write ``report.json``, ``report.md``, PNG figures, rollout MP4s (``videos/``) and
   ``report.html`` (all of it in one self-contained page), and print a summary table.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from mobile_vla.config import from_dict
from mobile_vla.errors import ConfigError
from mobile_vla.jsonio import write_json, write_text_atomic
from mobile_vla.policy.executor import DEFAULT_DECAY, DEFAULT_STRATEGY
from mobile_vla.provenance import environment
from mobile_vla.sim.expert import ExpertConfig

log = logging.getLogger(__name__)


@dataclasses.dataclass
class DemoConfig:
    out: str = "outputs/demo"
    seed: int = 0
    train_config: str = "configs/tiny.yaml"  # the model/optimiser recipe; overridden below
    num_scenes: int = 240  # paired: 2 episodes per scene
    scenes: str | None = None  # scene preset (sim.tasks.SCENE_PRESETS); None: the cup task's default
    workers: int = 2
    noise_fraction: float = 0.5
    # Labels every collected state. A wider lane entered earlier than `sim collect`'s default
    # (0.6 m, 0.3 m): the policy under-steers when the cup lies across the cluster, and the margin
    # absorbs it (fresh scenes, five seeds: 90.8 % against 87.2 %, `lane075-front06` in docs/results.md).
    expert: ExpertConfig = ExpertConfig(clearance=0.75, front_margin=0.6)
    train_steps: int = 1200
    # Four short rounds rather than two long ones (the same optimiser steps): the policy's own
    # failure states are relabelled more often (docs/results.md, `varied-w1-big15-r4-ensemble`).
    dagger_rounds: int = 4
    dagger_scenes: int = 120
    dagger_beta: float = 0.3  # probability of executing the expert's action at a step
    dagger_steps: int = 200  # extra optimiser steps per round
    dagger_strategy: str = "first"  # chunk execution of the policy's steps in DAgger rollouts
    # How much more often a round's own new episodes are drawn than each earlier one in that
    # round's training (1: all episodes pooled). Aggregated data grows each round while the
    # round's steps do not, so the states just relabelled would otherwise be seen about once.
    dagger_recent_weight: float = 1.0
    # DAgger returns the best of its policies on validation (Ross et al., 2011): with N > 0, every
    # round's checkpoint (the first training's included) drives N closed-loop episodes per task on
    # validation scenes of their own seed stream (never the evaluation's), and the one with the
    # highest success is published (ties: the later). 0: no selection (average_rounds decides).
    # 40 from the `...-select40-...` measurement until the `...-avg5-...` one (docs/results.md).
    select_episodes: int = 0
    # With K > 1 the published checkpoint is instead the uniform average of the weights of the last
    # K training rounds (the first training is round 0; at most all of them): no validation
    # episodes, one pass over the weights (policy.checkpoint.average_checkpoints). The default
    # averages all five rounds: on the five seeds' runs it matched or beat selection on eight of
    # the ten seed-sides (`...-avg5-...` in docs/results.md). It and select_episodes are two ways
    # to pick what is published: set one of them.
    average_rounds: int = 5
    heldout_scenes: int = 20  # fresh paired scenes for offline metrics, never trained on
    eval_episodes: int = 100
    heldout_episodes: int = 40  # closed loop with phrasings no training template contains
    strategy: str = DEFAULT_STRATEGY  # chunk execution in every evaluation
    # The ensemble's weight decay per step of a chunk's age in every evaluation (eval-sim's
    # --ensemble-decay): the basket task's final approach wants the newest chunk weighed more.
    ensemble_decay: float = DEFAULT_DECAY
    tasks: list[str] = dataclasses.field(default_factory=lambda: ["cup"])  # simulator tasks one policy learns
    no_side_fraction: float = 0.1  # collected episodes whose instruction names no side
    # How often each instruction family is drawn for collected episodes; None: uniformly.
    family_weights: dict[str, float] | None = None
    family_episodes: int = 10  # closed loop per instruction family's held-out part (and no-side), per task
    mixed_episodes: int = 20  # with several tasks: per task, in scenes holding every task's objects
    # With several tasks, the share of each task's collected episodes (first collection and DAgger
    # rounds) drawn from scenes holding every task's objects, from a seed stream of their own:
    # without them no training frame shows a cup beside a basket, and nothing but the sentence
    # can teach which one to reach there.
    mixed_fraction: float = 0.0
    train_overrides: list[str] = dataclasses.field(default_factory=list)  # KEY=VALUE on the train config


# What the demo writes under ``out`` (deleted by force_restart).
OUTPUTS = ("data", "train_*", "heldout", "checkpoint", ".checkpoint.*", "report.json", "report.md",
           "records.jsonl", "*.png", "videos", "report.html")
# Settings that do not shape what a rerun would resume, and why:
FINGERPRINT_EXEMPT = (
    "out",  # where, not what
    "workers",  # collection output is independent of the number of processes
    "eval_episodes", "heldout_episodes", "strategy", "ensemble_decay",  # evaluation only; rerun every time
    "family_episodes", "mixed_episodes",
)


def demo_fingerprint(cfg: DemoConfig) -> dict[str, Any]:
    from mobile_vla.fingerprint import fingerprint

    return fingerprint(dataclasses.asdict(cfg), FINGERPRINT_EXEMPT)


def demo_train_config(cfg: DemoConfig, data_root: Path):
    """The first training's ``TrainConfig``: ``cfg.train_config`` with the demo's budget, seeds and
    data, then ``cfg.train_overrides`` (DAgger rounds raise ``trainer.max_steps``)."""
    from mobile_vla.train.config import load_train_config

    return load_train_config(cfg.train_config, [
        f"data.episodes={data_root}", f"trainer.max_steps={cfg.train_steps}", f"trainer.seed={cfg.seed}",
        f"data.split_seed={cfg.seed}",
        # one warm-up + cosine over the whole job, so DAgger rounds continue its decay
        f"optim.schedule_steps={cfg.train_steps + cfg.dagger_rounds * cfg.dagger_steps}",
        "trainer.checkpoint_every_n_steps=100",  # an interrupted demo loses at most 100 steps
        # Validation only draws the curves (the closed loop selects the round): by default at 600,
        # 1200 and 1800 steps, not every 400; a pass over the last round's split costs ~20 s.
        f"trainer.val_check_interval={max(1, cfg.train_steps // 2)}",
        # A fixed no-side convention is resolved by the processor: "reach the cup" reads as the
        # convention side's instruction, in training and wherever the checkpoint is used.
        *([f"processor.no_side_route={cfg.expert.no_side_route}"] if cfg.expert.no_side_route != "view" else []),
        *cfg.train_overrides,
    ])


def run_demo(cfg: DemoConfig, progress: bool = True, force_restart: bool = False) -> dict[str, Any]:
    """Run every stage; returns the report dict (also written to ``<out>/report.json``).

    A rerun with the same settings resumes (finished stages are reused, an interrupted one
    continues); with other settings it raises FingerprintMismatch unless ``force_restart``.
    """
    from mobile_vla.fingerprint import claim

    start = time.perf_counter()
    out = Path(cfg.out)
    claim(out, demo_fingerprint(cfg), OUTPUTS, force_restart, defaults=demo_fingerprint(DemoConfig()))
    data_root = out / "data"
    timings: dict[str, float] = {}

    def timed(name: str, fn, *args, **kwargs):
        t = time.perf_counter()
        result = fn(*args, **kwargs)
        timings[name] = round(time.perf_counter() - t, 1)
        log.info("demo: %s done in %.0f s", name, timings[name])
        return result

    from mobile_vla.sim.tasks import mixed_preset, resolve

    main_task = cfg.tasks[0]
    # The scene preset names scenes of the first task; the other tasks draw their own default scenes.
    presets = {task: resolve(task, cfg.scenes if task == main_task else None)[2] for task in cfg.tasks}
    preset = presets[main_task]

    def task_dir(stage: str, task: str) -> Path:
        return data_root / (stage if len(cfg.tasks) == 1 else f"{stage}_{task}")

    def parts(stage: str, task: str, scenes: int, seed: int) -> list[tuple[Path, str, int, int, str]]:
        """Where a stage's episodes of ``task`` go: ``(folder, preset, episodes, seed, name)``, the
        mixed-scene share (``cfg.mixed_fraction``, several tasks only) in a folder of its own."""
        mixed = 2 * round(cfg.mixed_fraction * scenes) if len(cfg.tasks) > 1 else 0
        out = [(task_dir(stage, task), presets[task], 2 * scenes - mixed, seed, task)]
        if mixed:
            out.append((task_dir(f"{stage}_mixed", task), mixed_preset(task), mixed, seed + MIXED_SEED_OFFSET,
                        f"{task}_mixed"))
        return [p for p in out if p[2] > 0]

    for task in cfg.tasks:
        for folder, scenes, episodes, seed, name in parts("sim", task, cfg.num_scenes, cfg.seed):
            timed(f"collect_{name}", _collect, folder, episodes, seed, cfg.workers, cfg.noise_fraction,
                  cfg.expert, progress=progress, task=task, scenes=scenes, no_side_fraction=cfg.no_side_fraction,
                  family_weights=cfg.family_weights)
    train_cfg = demo_train_config(cfg, data_root)
    checkpoint = timed("train", _train, train_cfg, out / "train_0", None, progress)
    checkpoints = [checkpoint]
    total_steps = cfg.train_steps
    for r in range(1, cfg.dagger_rounds + 1):
        dagger_seed = cfg.seed + 7919 * r  # fresh scenes, never the evaluation stream
        for task in cfg.tasks:
            for folder, scenes, episodes, seed, name in parts(f"dagger_{r}", task, cfg.dagger_scenes, dagger_seed):
                timed(f"dagger_{r}_collect_{name}", _collect, folder, episodes,
                      seed, cfg.workers, 0.0, cfg.expert, policy=checkpoint, beta=cfg.dagger_beta,
                      strategy=cfg.dagger_strategy, progress=progress, task=task, scenes=scenes,
                      no_side_fraction=cfg.no_side_fraction, family_weights=cfg.family_weights)
        total_steps += cfg.dagger_steps
        train_cfg.trainer.max_steps = total_steps
        round_cfg = train_cfg
        if cfg.dagger_recent_weight != 1.0:
            round_cfg = copy.deepcopy(train_cfg)
            round_cfg.data.episodes = dagger_sources(
                [p[0] for stage in ["sim", *(f"dagger_{i}" for i in range(1, r + 1))] for task in cfg.tasks
                 for p in parts(stage, task, 1, 0)],
                recent=[p[0] for task in cfg.tasks for p in parts(f"dagger_{r}", task, 1, 0)],
                recent_weight=cfg.dagger_recent_weight)
        checkpoint = timed(f"dagger_{r}_train", _train, round_cfg, out / f"train_{r}", checkpoint, progress)
        checkpoints.append(checkpoint)
    selection = average = None
    if cfg.select_episodes:
        checkpoint, selection = timed("select", select_checkpoint, checkpoints, cfg, presets,
                                      out / "selection_rounds.json")
    elif cfg.average_rounds > 1 and len(checkpoints) > 1:
        from mobile_vla.policy.checkpoint import average_checkpoints

        first = max(0, len(checkpoints) - cfg.average_rounds)
        checkpoint = timed("average", average_checkpoints, checkpoints[first:], out / "train_average" / "checkpoint")
        average = {"rounds": list(range(first, len(checkpoints)))}
    final = out / "checkpoint"
    _publish(checkpoint, final)

    from mobile_vla import Policy
    from mobile_vla.eval.closed_loop import evaluate_closed_loop
    from mobile_vla.eval.offline import evaluate_offline
    from mobile_vla.eval.plots import plot_grounding, plot_training_curves

    policy = Policy.from_checkpoint(final)
    # Offline metrics on fresh scenes from their own seed stream, kept outside data_root (the
    # validation split is stable across DAgger rounds, but it only covers a tenth of the scenes).
    heldout_dir = out / "heldout"
    timed("collect_heldout", _collect, heldout_dir, 2 * cfg.heldout_scenes, cfg.seed + 104729, cfg.workers, 0.0,
          cfg.expert, progress=progress, scenes=preset)
    offline = timed("eval_offline", evaluate_offline, policy, heldout_dir, progress=progress)
    paired = offline.pop("_paired")
    closed = timed("eval_sim", evaluate_closed_loop, policy, cfg.eval_episodes, cfg.seed, cfg.strategy,
                   decay=cfg.ensemble_decay,
                   video_dir=out / "videos", progress=progress, task=main_task, scenes=preset)
    # The same evaluation scenes without a glance at the camera: what the policy's figures stand
    # next to (the mean actions of the expert it was trained on) ...
    blind = timed("eval_sim_blind", evaluate_closed_loop, None, cfg.eval_episodes, cfg.seed,
                  progress=progress, task=main_task, scenes=preset, baseline="blind", expert=cfg.expert)
    # ... and that expert driving them: the ceiling the policy's figures aim at.
    expert = timed("eval_sim_expert", evaluate_closed_loop, None, cfg.eval_episodes, cfg.seed,
                   progress=progress, task=main_task, scenes=preset, baseline="expert", expert=cfg.expert)
    heldout = None
    if cfg.heldout_episodes:
        heldout = timed("eval_sim_heldout", evaluate_closed_loop, policy, cfg.heldout_episodes, cfg.seed + 1,
                        cfg.strategy, heldout_phrasings=True, progress=progress, task=main_task, scenes=preset,
                        decay=cfg.ensemble_decay)
    per_task = {task: timed(f"eval_sim_{task}_language", _evaluate_task, policy, cfg, task, presets[task],
                            closed if task == main_task else None, progress)
                for task in cfg.tasks}

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
    # What the published checkpoint trained on: the first training and DAgger rounds 1..its own.
    published = selection["selected_round"] if selection else cfg.dagger_rounds
    stages = ["sim", *(f"dagger_{i}" for i in range(1, published + 1))]
    train_windows = _train_windows(train_cfg, policy, [p[0] for stage in stages for task in cfg.tasks
                                                       for p in parts(stage, task, 1, 0)])
    report = {
        "success_left": closed["left"]["success_rate"],
        "success_right": closed["right"]["success_rate"],
        "blind_success_left": blind["left"]["success_rate"],
        "blind_success_right": blind["right"]["success_rate"],
        "expert_success_left": expert["left"]["success_rate"],
        "expert_success_right": expert["right"]["success_rate"],
        "scenes": preset,
        "collision_rate": closed["overall"]["collision_rate"],
        "side_accuracy": closed["overall"]["side_accuracy"],
        "flip_divergence_ratio": g.get("flip_divergence_ratio"),
        "side_agreement": g.get("side_agreement"),
        "context_cosine": g.get("context_cosine"),
        "action_difference": g.get("action_difference"),
        "rmse_first_action": offline["actions"]["first"]["rmse_overall"],
        "train_windows": train_windows,
        "train_steps": cfg.train_steps + published * cfg.dagger_steps,
        "wall_minutes": round((time.perf_counter() - start) / 60, 2),
        "seed": cfg.seed,
        "closed_loop": {k: closed[k] for k in ("overall", "left", "right")},
        "ensemble_decay": closed["ensemble_decay"],  # as the evaluation ran it (None: not the ensemble)
        "closed_loop_failure_phases": closed["failure_phases"],  # where the failed episodes ended
        # The goal on the instructed side of the cluster, or across it: where the failures gather.
        "closed_loop_by_goal_side": closed["by_goal_side"],
        "closed_loop_blind": {k: blind[k] for k in ("overall", "left", "right")},
        "closed_loop_expert": {k: expert[k] for k in ("overall", "left", "right")},
        "eval_scene_seeds": closed["scene_seeds"],
        "closed_loop_heldout_phrasings": {k: heldout[k] for k in ("overall", "left", "right")} if heldout else None,
        "success_by_family": per_task[main_task]["success_by_family"],
        "no_side": per_task[main_task]["no_side"],
        "tasks": per_task,
        "offline": offline,
        "selection": selection,
        "average": average,  # which rounds' weights the published checkpoint averages (None: one round's)
        "timings_s": timings,
        "figures": figures,
        "checkpoint": str(final),
        "config": dataclasses.asdict(cfg),
        "environment": environment(),  # versions, CPU capability, threads: what else the figures depend on
    }
    write_text_atomic(out / "records.jsonl", "".join(json.dumps(r) + "\n" for r in closed["records"]))
    write_json(out / "report.json", report)
    write_text_atomic(out / "report.md", render_markdown(report))
    from mobile_vla.eval.report_html import write_report_html

    write_report_html(report, out)
    return report


def _evaluate_task(policy, cfg: DemoConfig, task: str, scenes: str, closed: dict | None, progress: bool
                   ) -> dict[str, Any]:
    """One task's closed loop: training instructions (``closed`` when already run), every family's
    held-out part, no-side instructions and, with several tasks, the scenes holding all their objects."""
    from mobile_vla.eval.closed_loop import evaluate_closed_loop, success_by_family
    from mobile_vla.sim.tasks import mixed_preset

    if closed is None:
        closed = evaluate_closed_loop(policy, cfg.eval_episodes, cfg.seed, cfg.strategy, decay=cfg.ensemble_decay,
                                      progress=progress, task=task,
                                      scenes=scenes)
    families, _ = success_by_family(policy, cfg.family_episodes, cfg.seed + 2, cfg.strategy, task=task, scenes=scenes,
                                    decay=cfg.ensemble_decay)
    no_side = evaluate_closed_loop(policy, cfg.family_episodes, cfg.seed + 2, cfg.strategy, task=task, scenes=scenes,
                                   decay=cfg.ensemble_decay,
                                   instructions="no-side", progress=False)
    out: dict[str, Any] = {
        "closed_loop": {k: closed[k] for k in ("overall", "left", "right")},
        "success_by_family": families,
        "no_side": {"success_rate": no_side["overall"]["success_rate"], "sides_taken": no_side["sides_taken"],
                    "episodes": no_side["overall"]["episodes"]},
    }
    if len(cfg.tasks) > 1:
        mixed_scenes = mixed_preset(task)
        mixed = evaluate_closed_loop(policy, cfg.mixed_episodes, cfg.seed + 3, cfg.strategy, decay=cfg.ensemble_decay,
                                     task=task,
                                     scenes=mixed_scenes, progress=False)
        out["mixed"] = {"scenes": mixed_scenes, "success_left": mixed["left"]["success_rate"],
                        "success_right": mixed["right"]["success_rate"], "confusion": mixed["confusion"],
                        "episodes": mixed["overall"]["episodes"]}
    return out


# The mixed-scene collection's seed offset from its stage's (first collection, DAgger round):
# its scenes are not the stage's other scenes with the cup or the baskets added.
MIXED_SEED_OFFSET = 65537


def _collect(out: Path, episodes: int, seed: int, workers: int, noise_fraction: float, expert: ExpertConfig,
             policy: Path | None = None, beta: float = 0.0, strategy: str = "first", progress: bool = True,
             task: str = "cup",
             scenes: str | None = None, no_side_fraction: float = 0.0,
             family_weights: dict[str, float] | None = None) -> dict:
    from mobile_vla.sim.collect import CollectConfig, collect

    cfg = CollectConfig(out=out, episodes=episodes, seed=seed, expert=expert, noise_fraction=noise_fraction,
                        beta=beta, task=task, scenes=scenes, no_side_fraction=no_side_fraction,
                        family_weights=family_weights)
    factory = None
    if policy is not None:
        from mobile_vla.sim.controllers import PolicyControllerFactory

        factory = PolicyControllerFactory(str(policy), strategy)
    return collect(cfg, workers=workers, controller_factory=factory, progress=progress)


def dagger_sources(dirs: list[Path], recent: list[Path], recent_weight: float) -> list[dict[str, Any]]:
    """Weighted ``data.episodes`` sources (:mod:`mobile_vla.data.sources`) for a DAgger round:
    each folder's share is its number of episodes, times ``recent_weight`` for ``recent``."""
    from mobile_vla.data.dataset import resolve_episodes

    return [{"path": str(d), "name": d.name,
             "weight": float(len(resolve_episodes(d))) * (recent_weight if d in recent else 1.0)}
            for d in dirs]


# Validation scenes' seed offset: far from every other stream the demo derives from its seed
# (evaluation +0..3, DAgger +7919·r, offline held-out +104729), so no seed's validation is
# another seed's evaluation.
SELECT_SEED_OFFSET = 15485863


def select_checkpoint(checkpoints: list[Path], cfg: DemoConfig, presets: dict[str, str],
                      memo: Path | None = None) -> tuple[Path, dict[str, Any]]:
    """The checkpoint (one per training round, in order) with the highest closed-loop success on
    validation scenes, and what was measured: ``{"episodes", "seed", "rounds": [{round,
    success_left, success_right, success}], "selected_round"}``.

    ``memo`` (a JSON file) keeps each round's figures as soon as they are measured, keyed by
    the checkpoint's resolved directory (unique per write) and the validation settings, so a
    resumed demo does not evaluate a round again."""
    from mobile_vla import Policy
    from mobile_vla.eval.closed_loop import evaluate_closed_loop

    seed = cfg.seed + SELECT_SEED_OFFSET
    known = _read_memo(memo)
    rounds = []
    for r, checkpoint in enumerate(checkpoints):
        key = json.dumps([str(Path(checkpoint).resolve()), cfg.select_episodes, seed, cfg.strategy, cfg.ensemble_decay,
                          list(cfg.tasks), [presets[t] for t in cfg.tasks]])
        if key not in known:
            policy = Policy.from_checkpoint(checkpoint)
            runs = [evaluate_closed_loop(policy, cfg.select_episodes, seed, cfg.strategy, decay=cfg.ensemble_decay,
                                         progress=False, task=task,
                                         scenes=presets[task]) for task in cfg.tasks]
            left, right = (sum(run[side]["success_rate"] for run in runs) / len(runs) for side in ("left", "right"))
            known[key] = {"success_left": left, "success_right": right,
                          "success": sum(run["overall"]["success_rate"] for run in runs) / len(runs)}
            if memo is not None:
                write_json(memo, known)
        rounds.append({"round": r, **known[key]})
        log.info("demo: round %d on %d validation episodes: %.0f %% left, %.0f %% right", r,
                 cfg.select_episodes, 100 * rounds[-1]["success_left"], 100 * rounds[-1]["success_right"])
    best = max(range(len(rounds)), key=lambda r: (rounds[r]["success"], r))
    return checkpoints[best], {"episodes": cfg.select_episodes, "seed": seed, "rounds": rounds,
                               "selected_round": best}


def _read_memo(memo: Path | None) -> dict[str, dict[str, float]]:
    """The figures a memo file holds; a missing or unreadable one (an interrupted write cannot
    leave one half-written, but a hand edit can) holds none, and the rounds are measured again."""
    if memo is None or not memo.exists():
        return {}
    try:
        known = json.loads(memo.read_text())
    except (OSError, ValueError) as err:
        log.warning("demo: ignoring the selection memo %s (%s); measuring every round", memo, err)
        return {}
    return known if isinstance(known, dict) else {}


def _train(train_cfg, out: Path, resume: Path | None, progress: bool) -> Path:
    from mobile_vla.train.api import train

    # train() reuses a finished checkpoint in ``out`` and continues an interrupted one.
    return train(train_cfg, out, resume=resume, trainer_kwargs={"enable_progress_bar": progress})


def _publish(src: Path, dst: Path) -> None:
    """Copy the final checkpoint (without its training state) to ``dst`` atomically."""
    from mobile_vla.policy.checkpoint import publish_directory

    version = Path(tempfile.mkdtemp(prefix=f".{dst.name}.", dir=dst.parent))
    shutil.copytree(src, version, ignore=shutil.ignore_patterns("trainer.ckpt"), dirs_exist_ok=True)
    publish_directory(version, dst)


def _train_windows(train_cfg, policy, folders: list[Path]) -> int:
    """Training windows of the episodes in ``folders`` (the split is stable as rounds add data)."""
    from mobile_vla.data.dataset import resolve_episodes
    from mobile_vla.data.formats import read_labels
    from mobile_vla.data.split import split_episodes

    paths = sorted(p for folder in folders for p in resolve_episodes(folder))
    train_paths, _ = split_episodes(paths, train_cfg.data.val_fraction, train_cfg.data.split_seed)
    w, stride = policy.window_size, train_cfg.data.window_stride
    total = 0
    for path in train_paths:
        t = read_labels(path).num_frames
        total += max(0, math.floor((t - w) / stride)) + 1
    return total


def summary_table(report: dict) -> str:
    """The table printed at the end of the demo."""
    from mobile_vla.eval.grounding import REPORT_BASELINE

    rows = [("scene preset", str(report.get("scenes"))),
            ("closed-loop success, left", f"{report['success_left']:.0%}"),
            ("closed-loop success, right", f"{report['success_right']:.0%}"),
            ("blind baseline success, left", f"{report['blind_success_left']:.0%}"),
            ("blind baseline success, right", f"{report['blind_success_right']:.0%}"),
            ("expert success, left / right",
             f"{report['expert_success_left']:.0%} / {report['expert_success_right']:.0%}"
             if "expert_success_left" in report else "n/a"),
            ("collision rate", f"{report['collision_rate']:.0%}"),
            ("passed on the instructed side", f"{report['side_accuracy']:.0%}")]
    goal = report.get("closed_loop_by_goal_side") or {}
    if goal.get("instructed") and goal.get("other"):
        rows.append(("success (collisions), goal on the instructed / other side",
                     " / ".join(f"{goal[g]['success_rate']:.0%} ({goal[g]['collision_rate']:.0%})"
                                for g in ("instructed", "other"))))
    h = report.get("closed_loop_heldout_phrasings")
    if h:
        # Reaching the cup by the other side is not obeying: the instructed-side rate comes first.
        rows.append(("success on the instructed side, held-out phrasings (any side)",
                     f"{h['overall']['success_on_side_rate']:.0%} ({h['overall']['success_rate']:.0%})"))
    for task, t in (report.get("tasks") or {}).items():
        for family, r in t["success_by_family"].items():
            rows.append((f"{task}: held-out {family}, left / right", f"{r['left']:.0%} / {r['right']:.0%}"))
        n = t["no_side"]
        rows.append((f"{task}: no side named (took left / right)",
                     f"{n['success_rate']:.0%} ({n['sides_taken']['left']:.0%} / {n['sides_taken']['right']:.0%})"))
        if "mixed" in t:
            m = t["mixed"]
            rows.append((f"{task}: all objects in view, left / right, confusion",
                         f"{m['success_left']:.0%} / {m['success_right']:.0%}, {m['confusion']:.0%}"))
    fmt = lambda v: "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"  # noqa: E731
    rows += [("flip divergence ratio", fmt(report["flip_divergence_ratio"])),
             ("side agreement", fmt(report["side_agreement"])),
             (f"context cosine (report: {REPORT_BASELINE['context_cosine']})", fmt(report["context_cosine"])),
             (f"action difference m/s (report: {REPORT_BASELINE['action_difference']})",
              fmt(report["action_difference"])),
             ("first-action RMSE m/s", fmt(report["rmse_first_action"])),
             ("training windows", str(report["train_windows"])),
             ("published checkpoint", published_checkpoint(report)),
             ("wall time", f"{report['wall_minutes']:.1f} min")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {k:<{width}}  {v}" for k, v in rows)


def published_checkpoint(report: dict) -> str:
    """Which training round(s) the published checkpoint is, in words."""
    average, selection = report.get("average"), report.get("selection")
    if average:
        rounds = average["rounds"]
        return f"average of rounds {rounds[0]}-{rounds[-1]}" if len(rounds) > 1 else f"round {rounds[0]}"
    if selection:
        r = selection["selected_round"]
        return f"round {r} (best of {len(selection['rounds'])} on {selection['episodes']} validation episodes)"
    return f"round {report['config']['dagger_rounds']} (the last)" if "config" in report else "the last round"


def render_markdown(report: dict) -> str:
    lines = ["# Mobile VLA demo report", "",
             f"Seed {report['seed']}, {report['train_steps']} optimiser steps, "
             f"{report['wall_minutes']:.1f} minutes wall time.", "", "```", summary_table(report), "```", ""]
    lines += ["| closed loop | success | collision | timeout | side accuracy | mean steps |",
              "|---|---|---|---|---|---|"]
    for name, section in (("policy", "closed_loop"), ("blind baseline", "closed_loop_blind"),
                          ("expert", "closed_loop_expert")):
        for key, r in report.get(section, {}).items():
            lines.append(f"| {name}, {key} | {r['success_rate']:.2f} | {r['collision_rate']:.2f} | "
                         f"{r['timeout_rate']:.2f} | {r['side_accuracy']:.2f} | {r['mean_steps']:.1f} |")
    lines.append("")
    for name, path in report["figures"].items():
        lines.append(f"![{name}]({Path(path).name})")
    lines += ["", "Stage timings (s): " + ", ".join(f"{k} {v}" for k, v in report["timings_s"].items()), ""]
    return "\n".join(lines)


def load_demo_config(overrides: list[str], out: str | None = None, seed: int | None = None,
                     tasks: list[str] | None = None, scenes: str | None = None) -> DemoConfig:
    from mobile_vla.config import apply_overrides

    data = apply_overrides({}, overrides)
    if isinstance(data.get("scenes"), int):
        raise ConfigError(f"demo.scenes={data['scenes']}: scenes is a scene preset name (e.g. varied); "
                          f"the number of training scenes is num_scenes={data['scenes']}")
    if out is not None:
        data["out"] = out
    if seed is not None:
        data["seed"] = seed
    if tasks is not None:
        data["tasks"] = tasks
    if scenes is not None:  # --scenes NAME: the same setting as scenes=NAME
        data["scenes"] = scenes
    cfg = from_dict(DemoConfig, data, "demo")
    from mobile_vla.sim.tasks import TASKS

    if not cfg.tasks:
        raise ConfigError("demo: tasks must name at least one simulator task")
    for task in cfg.tasks:
        TASKS.get(task)  # an unknown name fails here, listing the registered ones
    from mobile_vla.policy.executor import STRATEGIES

    if cfg.select_episodes < 0:
        raise ConfigError(f"demo.select_episodes={cfg.select_episodes!r}: expected a number of episodes >= 0")
    if cfg.average_rounds < 1:
        raise ConfigError(f"demo.average_rounds={cfg.average_rounds!r}: expected a number of rounds >= 1 "
                          "(1: the last round's checkpoint alone)")
    if cfg.select_episodes and cfg.average_rounds > 1:
        raise ConfigError(f"demo: select_episodes={cfg.select_episodes} picks one round's checkpoint and "
                          f"average_rounds={cfg.average_rounds} averages several; set one of them "
                          "(select_episodes=0 or average_rounds=1)")
    if not (math.isfinite(cfg.ensemble_decay) and cfg.ensemble_decay >= 0):
        raise ConfigError(f"demo.ensemble_decay={cfg.ensemble_decay!r}: expected a finite number >= 0")
    if not 0.0 <= cfg.mixed_fraction <= 1.0:
        raise ConfigError(f"demo.mixed_fraction={cfg.mixed_fraction!r}: expected a share between 0 and 1")
    if not cfg.dagger_recent_weight > 0:
        raise ConfigError(f"demo.dagger_recent_weight={cfg.dagger_recent_weight!r}: expected a number > 0")
    for key in ("strategy", "dagger_strategy"):
        if getattr(cfg, key) not in STRATEGIES:  # fail before the first stage, not after training
            raise ConfigError(f"demo.{key}={getattr(cfg, key)!r}: expected one of {', '.join(STRATEGIES)}")
    from mobile_vla.vocab.instructions import check_family_weights

    try:
        check_family_weights(cfg.family_weights, "demo.family_weights")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    return cfg
