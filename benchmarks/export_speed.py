"""Step latency and closed-loop success of one checkpoint in PyTorch, ONNX fp32 and ONNX int8, in one run.

    python benchmarks/export_speed.py --checkpoint outputs/demo/checkpoint [--steps 200] [--episodes 100] \
        [--out outputs/export_speed/report.json]

Exports the checkpoint (``--quantize int8``) unless ``--export DIR`` names an existing export.
Latency: one streaming session per backend on the same camera frames, stepped in turn (one step
of each, then the next frame), so load from other processes falls on all three alike; the
first ``--warmup`` steps are dropped. Parity: the largest difference of each ONNX chunk from the
torch chunk over the same steps. Closed loop (``--episodes``): ``evaluate_closed_loop`` on the
same evaluation scenes for each backend. Prints one JSON object (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

BACKENDS = ("pytorch", "onnx-fp32", "onnx-int8")
INSTRUCTION = "Go around the box on the left and reach the cup"


def _policies(checkpoint: Path, export: Path) -> dict:
    from mobile_vla.policy.onnx_backend import OnnxPolicy
    from mobile_vla.policy.streaming import Policy

    return {"pytorch": Policy.from_checkpoint(checkpoint), "onnx-fp32": OnnxPolicy(export, "fp32"),
            "onnx-int8": OnnxPolicy(export, "int8")}


def _frames(policy, steps: int, seed: int) -> list[np.ndarray]:
    """Camera frames the expert sees while driving simulator scenes (realistic images, not noise)."""
    from mobile_vla.sim.rollout import run_episode
    from mobile_vla.sim.scene import eval_scene_seed, sample_scene
    from mobile_vla.sim.world import World

    frames: list[np.ndarray] = []
    with World(image_size=int(policy.metadata["image_size"])) as world:
        i = 0
        while len(frames) < steps:
            result = run_episode(world, sample_scene(eval_scene_seed(seed + 1000, i)), INSTRUCTION, render=True)
            frames += list(result.frames)
            i += 1
    return frames[:steps]


def latency(policies: dict, frames: list[np.ndarray], warmup: int) -> dict:
    sessions = {name: p.new_session(INSTRUCTION) for name, p in policies.items()}
    times: dict[str, list[float]] = {name: [] for name in policies}
    worst = {name: 0.0 for name in policies if name != "pytorch"}
    for t, frame in enumerate(frames):
        chunks = {}
        for name, session in sessions.items():
            start = time.perf_counter()
            chunks[name] = session.step(frame)
            if t >= warmup:
                times[name].append((time.perf_counter() - start) * 1000)
        for name in worst:
            worst[name] = max(worst[name], float(np.abs(chunks[name] - chunks["pytorch"]).max()))
    out = {}
    for name, ms in times.items():
        a = np.asarray(ms)
        out[name] = {"p50_ms": round(float(np.percentile(a, 50)), 3), "p90_ms": round(float(np.percentile(a, 90)), 3),
                     "mean_ms": round(float(a.mean()), 3), "steps": len(a),
                     "max_abs_diff_vs_pytorch": None if name == "pytorch" else worst[name]}
    return out


def closed_loop(policies: dict, episodes: int, seed: int) -> dict:
    from mobile_vla.eval.closed_loop import evaluate_closed_loop

    out = {}
    for name, policy in policies.items():
        start = time.perf_counter()
        report = evaluate_closed_loop(policy, episodes, seed, progress=False)
        out[name] = {k: report[k] for k in ("overall", "left", "right")}
        out[name]["wall_s"] = round(time.perf_counter() - start, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", required=True, type=Path)
    ap.add_argument("--export", type=Path, help="an existing export with an int8 variant (default: export now)")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--episodes", type=int, default=0, help="closed-loop episodes per backend (0: skip)")
    ap.add_argument("--seed", type=int, default=0, help="evaluation scene stream")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args()

    from mobile_vla.policy.onnx_export import export_onnx

    with tempfile.TemporaryDirectory() as tmp:
        export = args.export
        if export is None:
            export = Path(tmp) / "export"
            export_onnx(args.checkpoint, export, "int8")
        policies = _policies(args.checkpoint, export)
        frames = _frames(policies["pytorch"], args.steps + args.warmup, args.seed)
        import onnxruntime
        import torch

        result = {
            "checkpoint": str(args.checkpoint.resolve()),
            "step": policies["pytorch"].metadata["step"],
            "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                        "processor": platform.processor() or platform.machine(),
                        "load_average": [round(x, 2) for x in os.getloadavg()]},
            "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__},
            "image_size": policies["pytorch"].metadata["image_size"],
            "window_size": policies["pytorch"].window_size,
            "latency": latency(policies, frames, args.warmup),
        }
        if args.episodes:
            result["closed_loop"] = {"episodes": args.episodes, "seed": args.seed,
                                     **closed_loop(policies, args.episodes, args.seed)}
        result["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        tmp_out = args.out.with_name(args.out.name + ".tmp")
        tmp_out.write_text(text)
        tmp_out.replace(args.out)
    print(text)


if __name__ == "__main__":
    main()
