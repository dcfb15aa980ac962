"""Round trip of episode files through the ``lerobot`` format: what survives exactly, what within tolerance.

    python benchmarks/lerobot_roundtrip.py EPISODES_DIR [--dataset DIR]

Exports ``EPISODES_DIR`` (e.g. the demo's ``outputs/demo/data``) to a LeRobotDataset v3.0
directory (or reads ``--dataset`` if given), reads every episode back and compares it with its
source file. Prints one JSON object: counts of exact matches (actions, counterfactual actions,
instructions, scene ids) and the frames' mean / worst-episode mean absolute error (of 255).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("episodes", type=Path)
    ap.add_argument("--dataset", type=Path, help="an existing export of EPISODES_DIR (default: export now)")
    args = ap.parse_args()

    from mobile_vla.data.formats import EPISODE_FORMATS, list_episodes, read_episode

    sources = [p for p in list_episodes(args.episodes) if p.suffix == ".h5"]
    with tempfile.TemporaryDirectory() as tmp:
        dataset = args.dataset
        export_s = None
        if dataset is None:
            dataset = Path(tmp) / "lerobot"
            start = time.perf_counter()
            EPISODE_FORMATS.get("lerobot").export(sources, dataset, lambda p: read_episode(p, True))
            export_s = round(time.perf_counter() - start, 1)
        info = json.loads((dataset / "meta/info.json").read_text())
        size_mb = sum(f.stat().st_size for f in dataset.rglob("*") if f.is_file()) / 2**20
        start = time.perf_counter()
        counts = {"actions": 0, "counterfactual_actions": 0, "instruction": 0, "scene_id": 0}
        maes = []
        for src in sources:
            a, b = read_episode(src), read_episode(dataset / src.stem)
            counts["actions"] += bool(np.array_equal(a.actions, b.actions))
            counts["counterfactual_actions"] += bool(
                (a.counterfactual_actions is None and b.counterfactual_actions is None)
                or np.array_equal(a.counterfactual_actions, b.counterfactual_actions))
            counts["instruction"] += a.instruction == b.instruction
            counts["scene_id"] += a.attrs.get("scene_id") == b.attrs.get("scene_id")
            maes.append(float(np.abs(a.images.astype(np.int16) - b.images.astype(np.int16)).mean()))
        read_s = round(time.perf_counter() - start, 1)
    print(json.dumps({
        "episodes": len(sources), "codebase_version": info["codebase_version"], "fps": info["fps"],
        "frames": info["total_frames"], "exact": counts, "frame_mae_mean": round(float(np.mean(maes)), 3),
        "frame_mae_worst_episode": round(float(np.max(maes)), 3), "dataset_mb": round(size_mb, 1),
        "source_mb": round(sum(p.stat().st_size for p in sources) / 2**20, 1), "export_s": export_s, "read_s": read_s,
    }, indent=2))


if __name__ == "__main__":
    main()
