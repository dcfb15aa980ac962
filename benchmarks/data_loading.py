"""Data-loading throughput of MobileVLAH5Dataset, cold and cached, versus a training step.

Generates episodes in a temporary folder:
- real-format: 720x1280 BGR gzip frames (camera-like noise, so gzip works as hard as on
  real data), 18 frames each, the robot's layout;
- simulator-like: 112x112 frames, 30 frames each, with counterfactual labels.

and reports windows/s (W=8, N=10, batches of 8 through the collater, one process):
- cold: nothing cached (first epoch on fresh data: decode + resize every frame);
- disk_cached: a new dataset object with the on-disk cache present (a new run on the same data);
- in_memory: the second epoch of the same dataset object.

Then measures what the tiny model's training step consumes (forward + backward + AdamW step on
batches of 8 windows) when ``mobile_vla.model`` is importable; otherwise it reports the
environment doc's figure (≈250 frames/s = ≈31 windows/s at W=8).

Usage: ``.venv/bin/python benchmarks/data_loading.py [--real 4] [--sim 40]``; prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from data_fixtures import tiny_processor, write_real_episode, write_sim_episode  # noqa: E402
from mobile_vla.data.cache import CACHE_DIR  # noqa: E402
from mobile_vla.data.dataset import MobileVLAH5Dataset  # noqa: E402

W, N, BATCH = 8, 10, 8
DOC_TRAINING_WINDOWS_PER_S = 250 / W  # environment.md: ≈250 frames/s forward+backward


def epoch(ds: MobileVLAH5Dataset, seed: int = 0) -> float:
    """One shuffled pass in batches through the collater; returns windows/s."""
    order = np.random.default_rng(seed).permutation(len(ds))
    start = time.perf_counter()
    for i in range(0, len(order), BATCH):
        ds.collater([ds[int(j)] for j in order[i : i + BATCH]])
    return len(ds) / (time.perf_counter() - start)


def measure(folder: Path, processor) -> dict:
    shutil.rmtree(folder / CACHE_DIR, ignore_errors=True)
    ds = MobileVLAH5Dataset(folder, processor, window_size=W, fwd_pred_next_n=N, mirror_prob=0.5)
    cold = epoch(ds)
    in_memory = epoch(ds, seed=1)
    disk_cached = epoch(MobileVLAH5Dataset(folder, processor, window_size=W, fwd_pred_next_n=N, mirror_prob=0.5))
    return {
        "episodes": len(ds.records),
        "windows": len(ds),
        "cold_windows_per_s": round(cold, 1),
        "disk_cached_windows_per_s": round(disk_cached, 1),
        "in_memory_windows_per_s": round(in_memory, 1),
        "disk_cache_used": (folder / CACHE_DIR).is_dir(),
    }


def training_windows_per_s(ds: MobileVLAH5Dataset, processor, steps: int = 10) -> tuple[float, str]:
    """Windows/s consumed by the tiny model's training step, or the documented figure."""
    try:
        from mobile_vla.model.config import ModelConfig
        from mobile_vla.model.vla import MobileVLA
    except ImportError as exc:
        return DOC_TRAINING_WINDOWS_PER_S, f"docs/environment.md figure (model not importable: {exc})"
    torch.manual_seed(0)
    model = MobileVLA(ModelConfig(), vocab_size=processor.vocab_size, action_dim=processor.action_dim)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batch = ds.collater([ds[i % len(ds)] for i in range(BATCH)])
    for step in range(steps + 2):  # two warm-up steps
        if step == 2:
            start = time.perf_counter()
        loss = model.loss(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return steps * BATCH / (time.perf_counter() - start), "measured: tiny MobileVLA (default ModelConfig)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--real", type=int, default=4, help="720p real-format episodes (18 frames)")
    parser.add_argument("--sim", type=int, default=40, help="112-px simulator-like episodes (30 frames)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)
    processor = tiny_processor(image_size=112)
    with tempfile.TemporaryDirectory() as tmp:
        real, sim = Path(tmp) / "real", Path(tmp) / "sim"
        texture = np.random.default_rng(0)
        for i in range(args.real):
            write_real_episode(real, side=("left", "right")[i % 2], stamp=f"20251106_{i:06d}", texture=texture)
        for i in range(args.sim):
            write_sim_episode(sim, scene_id=i, side=("left", "right")[i % 2], num_frames=30)
        real_mb = sum(p.stat().st_size for p in real.glob("*.h5")) / 1e6 / max(args.real, 1)
        result = {"benchmark": "data_loading", "window_size": W, "fwd_pred_next_n": N, "batch_size": BATCH,
                  "machine": f"{platform.machine()}, {torch.get_num_threads()} torch threads",
                  "real_720p": {**measure(real, processor), "mb_per_episode": round(real_mb, 1)},
                  "sim_112px": measure(sim, processor)}
        train_rate, source = training_windows_per_s(
            MobileVLAH5Dataset(sim, processor, window_size=W, fwd_pred_next_n=N), processor)
    result["training_windows_per_s"] = round(train_rate, 1)
    result["training_source"] = source
    for name in ("real_720p", "sim_112px"):
        r = result[name]
        r["cached_vs_training"] = round(min(r["disk_cached_windows_per_s"], r["in_memory_windows_per_s"])
                                        / train_rate, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
