"""Run inside LeRobot's environment (scripts/check_lerobot.sh): load an export with LeRobotDataset.

Checks what a LeRobot user relies on: the metadata loads (v3.0), every frame row is there, each
episode's first and last frame decode from the video at its timestamp, the task is the
instruction, and ``action`` equals the data file's rows. Prints one JSON object; exit 1 on a mismatch.
"""

import json
import sys
from pathlib import Path

import lerobot
import numpy as np
import pyarrow.parquet as pq
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

root = Path(sys.argv[1])
camera = "observation.images.front"
result = {"dataset": str(root), "lerobot": lerobot.__version__, "torch": torch.__version__}
for backend in ("pyav", "torchcodec"):
    try:
        ds = LeRobotDataset("local/mobile_vla_export", root=root, video_backend=backend)
        ds[0]
        result["video_backend"] = backend
        break
    except Exception as exc:  # try the next decoder; report why this one failed
        result[f"{backend}_error"] = f"{type(exc).__name__}: {exc}"[:300]
else:
    print(json.dumps(result))
    sys.exit(1)
data = pq.read_table(root / "data/chunk-000/file-000.parquet").to_pydict()
meta = ds.meta
result.update(codebase_version=meta.info["codebase_version"], fps=ds.fps, episodes=ds.num_episodes,
              frames=ds.num_frames, rows=len(data["index"]))
problems = []
if ds.num_frames != len(data["index"]):
    problems.append("frame count")
checked = 0
for ep in range(ds.num_episodes):
    start = meta.episodes[ep]["dataset_from_index"]
    end = meta.episodes[ep]["dataset_to_index"]
    for i in (start, end - 1):
        item = ds[i]
        image = item[camera]
        if tuple(image.shape) != (3, *meta.info["features"][camera]["shape"][:2]):
            problems.append(f"frame {i}: image shape {tuple(image.shape)}")
        if not np.allclose(item["action"].numpy(), np.asarray(data["action"][i], np.float32)):
            problems.append(f"frame {i}: action differs")
        if item["task"] != meta.tasks.index[int(data["task_index"][i])]:
            problems.append(f"frame {i}: task differs")
        checked += 1
result.update(frames_checked=checked, problems=problems[:10], ok=not problems,
              first_task=ds[0]["task"], image_dtype=str(ds[0][camera].dtype))
print(json.dumps(result))
sys.exit(0 if not problems else 1)
