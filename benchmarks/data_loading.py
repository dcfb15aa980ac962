"""Data-loading throughput of MobileVLAH5Dataset, cold and cached, versus a training step.

Generates episodes in a temporary folder:
- real-format: 720x1280 BGR gzip frames (camera-like noise, so gzip works as hard as on
  real data), 18 frames each, the robot's layout;
- simulator-like: 112x112 frames, 30 frames each, with counterfactual labels.

and reports windows/s (W=8, N=10, batches of 8 through the collater, one process):
- cold: nothing cached (first epoch on fresh data: decode + resize every frame);
- disk_cached: a new dataset object with the on-disk cache present (a new run on the same data);
- in_memory: the second epoch of the same dataset object.

The loader runs with 1 torch thread (like a DataLoader worker). Then it measures what the tiny
model's training step consumes (forward + backward + AdamW on batches of 8 windows, 2 torch
threads) when ``mobile_vla.model`` is importable; otherwise it reports the environment doc's
figure (≈250 frames/s = ≈31 windows/s at W=8). Rates are given per wall second and per CPU
second of this process; the latter is robust to other jobs sharing the CPU, and the
loader-vs-training ratios use it.

Usage: ``.venv/bin/python benchmarks/data_loading.py [--real 4] [--sim 40]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from clock import Clock  # noqa: E402
from data_fixtures import tiny_processor, write_real_episode, write_sim_episode  # noqa: E402
from mobile_vla.data.cache import CACHE_DIR, forget_decoded  # noqa: E402
from mobile_vla.data.dataset import MobileVLAH5Dataset  # noqa: E402

W, N, BATCH = 8, 10, 8
DOC_TRAINING_WINDOWS_PER_S = 250 / W  # environment.md: ≈250 frames/s forward+backward


def epoch(ds: MobileVLAH5Dataset, seed: int = 0) -> dict:
    """One shuffled pass in batches through the collater; windows per wall second and per CPU second."""
    order = np.random.default_rng(seed).permutation(len(ds))
    with Clock() as clock:
        for i in range(0, len(order), BATCH):
            ds.collater([ds[int(j)] for j in order[i : i + BATCH]])
    return clock.rates(len(ds))


def measure(folder: Path, processor) -> dict:
    shutil.rmtree(folder / CACHE_DIR, ignore_errors=True)
    ds = MobileVLAH5Dataset(folder, processor, window_size=W, fwd_pred_next_n=N, mirror_prob=0.5)
    cold = epoch(ds)
    in_memory = epoch(ds, seed=1)
    forget_decoded()  # a new run: nothing decoded in memory, the disk entries present
    disk_cached = epoch(MobileVLAH5Dataset(folder, processor, window_size=W, fwd_pred_next_n=N, mirror_prob=0.5))
    return {
        "episodes": len(ds.records),
        "windows": len(ds),
        "cold_windows_per_s": cold,
        "disk_cached_windows_per_s": disk_cached,
        "in_memory_windows_per_s": in_memory,
        "disk_cache_used": (folder / CACHE_DIR).is_dir(),
    }


def training_windows_per_s(ds: MobileVLAH5Dataset, processor, steps: int = 6) -> tuple[dict, str]:
    """Windows/s consumed by the tiny model's training step, or the documented figure."""
    try:
        from mobile_vla.model.config import ModelConfig
        from mobile_vla.model.vla import MobileVLA
    except ImportError as exc:
        doc = round(DOC_TRAINING_WINDOWS_PER_S, 1)
        return {"wall": doc, "per_cpu_s": doc}, f"docs/environment.md figure (model not importable: {exc})"
    torch.manual_seed(0)
    model = MobileVLA(ModelConfig(), vocab_size=processor.vocab_size, action_dim=processor.action_dim)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = ds.collater([ds[i % len(ds)] for i in range(BATCH)])
    def step() -> None:
        loss = model.loss(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()  # warm-up
    with Clock() as clock:
        for _ in range(steps):
            step()
    return clock.rates(steps * BATCH), "measured: tiny MobileVLA (default ModelConfig), forward+backward+AdamW"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=int, default=4, help="720p real-format episodes (18 frames)")
    parser.add_argument("--sim", type=int, default=40, help="112-px simulator-like episodes (30 frames)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(1)
    processor = tiny_processor(image_size=112)
    with tempfile.TemporaryDirectory() as tmp:
        real, sim = Path(tmp) / "real", Path(tmp) / "sim"
        texture = np.random.default_rng(0)
        for i in range(args.real):
            write_real_episode(real, side=("left", "right")[i % 2], stamp=f"20251106_{i:06d}", texture=texture)
        for i in range(args.sim):
            write_sim_episode(sim, scene_id=i, side=("left", "right")[i % 2], num_frames=30)
        real_mb = sum(p.stat().st_size for p in real.glob("*.h5")) / 1e6 / max(args.real, 1)
        result = {"load_average_start": [round(x, 2) for x in os.getloadavg()], "benchmark": "data_loading", "window_size": W, "fwd_pred_next_n": N, "batch_size": BATCH,
                  "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
                  "real_720p": {**measure(real, processor), "mb_per_episode": round(real_mb, 1)},
                  "sim_112px": measure(sim, processor)}
        torch.set_num_threads(2)
        train_rate, source = training_windows_per_s(
            MobileVLAH5Dataset(sim, processor, window_size=W, fwd_pred_next_n=N), processor)
    result["training_windows_per_s"] = train_rate
    result["training_source"] = source
    for name in ("real_720p", "sim_112px"):
        r = result[name]
        # Loader throughput over training consumption, per CPU second (fair on a shared machine).
        for stage in ("cold", "disk_cached", "in_memory"):
            r[f"{stage}_vs_training"] = round(r[f"{stage}_windows_per_s"]["per_cpu_s"] / train_rate["per_cpu_s"], 1)
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
