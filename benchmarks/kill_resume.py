"""Crash safety: SIGKILL `sim collect` and `train` at random points, rerun, compare.

For each stage: an uninterrupted reference run; then the same command started and killed with
SIGKILL ``--kills`` times (each kill at a random moment after the process has visibly started
working — its output directory changed — within the first half of the reference run's work for
the first kill, a quarter for the second, …, and never later than ``--max-delay`` s, so that kills
land on a fast machine too), rerun after each kill; after every kill
every episode file (``*.h5``) must read back completely and ``<out>/checkpoint`` (when present)
must load. After the final uninterrupted rerun, the episodes must equal the reference's (every
array and attribute) and the weights must be bit-identical.

Usage: ``.venv/bin/python benchmarks/kill_resume.py [--kills 5] [--seed 0]``; prints one JSON object
(``partial_files_seen`` and ``corrupt_checkpoints_seen`` must be 0, ``*_identical`` true).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
COLLECT = ["sim", "collect", "--episodes", "6", "--image-size", "32", "--seed", "3", "--no-progress"]
TRAIN_OVERRIDES = [
    "model.backbone.text_dim=32", "model.backbone.text_layers=1", "model.backbone.text_heads=2",
    "model.backbone.vision_dim=32", "model.backbone.vision_layers=1", "model.backbone.vision_heads=2",
    "model.backbone.image_size=28", "model.backbone.latent_query_num=4", "model.head.window_size=2",
    "model.head.fwd_pred_next_n=3", "model.head.lstm_hidden=16", "model.head.mlp_hidden=16",
    "data.batch_size=4", "data.val_fraction=0.34", "trainer.val_check_interval=5", "trainer.accelerator=cpu",
    "trainer.max_steps=24", "trainer.checkpoint_every_n_steps=2", "trainer.log_every_n_steps=1",
]


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "mobile_vla.cli", *args]


def env() -> dict[str, str]:
    return {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def snapshot(directory: Path) -> set[tuple[str, int]]:
    if not directory.exists():
        return set()
    return {(str(p), p.stat().st_mtime_ns) for p in directory.rglob("*") if p.is_file()}


def start_working(cmd: list[str], watch: Path) -> subprocess.Popen:
    """Start ``cmd`` and return once it has visibly started working (``watch`` changed) or exited."""
    before = snapshot(watch)
    proc = subprocess.Popen(cmd, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while proc.poll() is None and snapshot(watch) == before:
        time.sleep(0.05)
    return proc


def run_and_kill(cmd: list[str], watch: Path, rng: np.random.Generator, max_delay: float) -> bool:
    """Start ``cmd``; once ``watch`` changes, wait a random delay and SIGKILL it. True if killed."""
    proc = start_working(cmd, watch)
    time.sleep(rng.uniform(0.0, max_delay))
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True


def work_seconds(cmd: list[str], watch: Path) -> float:
    """Run ``cmd`` to completion; seconds from its first change of ``watch`` to its exit (its work)."""
    proc = start_working(cmd, watch)
    started = time.perf_counter()
    if proc.wait() != 0:
        raise SystemExit(f"reference run failed: {' '.join(cmd)}")
    return time.perf_counter() - started


def partial_episodes(directory: Path) -> list[str]:
    """Episode files a reader would pick up that do not read back completely."""
    from mobile_vla.data.formats import list_episodes, read_episode

    bad = []
    for path in list_episodes(directory) if directory.exists() else []:
        try:
            ep = read_episode(path, load_images=True)
            assert len(ep.images) == len(ep.actions) > 0
        except Exception as exc:  # noqa: BLE001 - any failure is a partial file
            bad.append(f"{path.name}: {exc}")
    return bad


def corrupt_checkpoint(directory: Path) -> str | None:
    from mobile_vla.policy.checkpoint import load_checkpoint

    if not directory.exists():
        return None
    try:
        load_checkpoint(directory)
    except Exception as exc:  # noqa: BLE001
        return str(exc)
    return None


def episodes_equal(a: Path, b: Path) -> bool:
    from mobile_vla.data.formats import list_episodes, read_episode

    names_a, names_b = [p.name for p in list_episodes(a)], [p.name for p in list_episodes(b)]
    if names_a != names_b:
        return False
    for name in names_a:
        x, y = read_episode(a / name), read_episode(b / name)
        if not (np.array_equal(x.images, y.images) and np.array_equal(x.actions, y.actions)
                and x.instruction == y.instruction and json.dumps(x.attrs, default=str, sort_keys=True)
                == json.dumps(y.attrs, default=str, sort_keys=True)):
            return False
    return True


def stage(name: str, cmd: list[str], out: Path, watch: Path, kills: int, rng, max_delay: float, check,
          work_s: float) -> dict:
    """Kill ``cmd`` ``kills`` times. Each rerun resumes with less work left, so kill k comes within the
    first ``work_s / 2**(k+1)`` s (the reference run's work time), capped at ``max_delay``: on a fast
    machine a fixed window would outlast a short stage and the kill would never land."""
    done, problems = 0, []
    while done < kills:
        if run_and_kill(cmd, watch, rng, min(max_delay, work_s / 2 ** (done + 1))):
            done += 1
            problems += check()
        else:  # it finished before the kill came: nothing left to interrupt
            break
    final = subprocess.run(cmd, env=env(), capture_output=True, text=True)
    return {"stage": name, "kills": done, "rerun_exit_code": final.returncode, "problems": problems,
            "rerun_stderr_tail": final.stderr.strip()[-300:] if final.returncode else ""}


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=5, help="kills per stage (collection, training)")
    ap.add_argument("--seed", type=int, default=0, help="seeds the kill moments")
    ap.add_argument("--max-delay", type=float, default=2.0, help="latest kill, s after work starts")
    ap.add_argument("--work", default=None, help="working directory (default: a temporary one)")
    args = ap.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        ref, killed = work / "reference", work / "killed"
        t = time.perf_counter()
        collect_s = work_seconds(cli(*COLLECT, "--out", str(ref / "sim")), ref / "sim")
        train_s = work_seconds(cli("train", "--config", str(ROOT / "configs" / "tiny.yaml"), "--out", str(ref / "run"),
                                   f"data.episodes={ref / 'sim'}", *TRAIN_OVERRIDES), ref / "run")
        sim, run = killed / "sim", killed / "run"
        collect = stage("collect", cli(*COLLECT, "--out", str(sim)), sim, sim, args.kills, rng, args.max_delay,
                        lambda: partial_episodes(sim), collect_s)
        if not list(sim.glob("*.h5")) or collect["rerun_exit_code"]:
            raise SystemExit(f"collection did not complete: {collect}")
        train = stage("train", cli("train", "--config", str(ROOT / "configs" / "tiny.yaml"), "--out", str(run),
                                   f"data.episodes={sim}", *TRAIN_OVERRIDES), run, run, args.kills, rng,
                      args.max_delay, lambda: [c for c in [corrupt_checkpoint(run / "checkpoint")] if c], train_s)
        weights = [(r / "run" / "checkpoint" / "model.safetensors") for r in (ref, killed)]
        result = {
            "kills": collect["kills"] + train["kills"],
            "stages": [collect, train],
            "partial_files_seen": len(collect["problems"]),
            "corrupt_checkpoints_seen": len(train["problems"]),
            "episodes_identical": episodes_equal(ref / "sim", sim),
            "weights_identical": all(w.is_file() for w in weights) and weights[0].read_bytes() == weights[1].read_bytes(),
            "stray_temporaries": sorted(p.name for p in killed.rglob("*.tmp")),
            "reference_work_seconds": {"collect": round(collect_s, 2), "train": round(train_s, 2)},
            "seconds": round(time.perf_counter() - t, 1),
        }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
