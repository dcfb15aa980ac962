"""Simulator speed: physics steps/s, rendered frames/s at 112 and 224 px, `sim collect` episodes/min.

Usage: MUJOCO_GL=egl python benchmarks/sim_speed.py [--episodes 40]   (prints one JSON object)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np

from mobile_vla.sim.collect import CollectConfig, collect
from mobile_vla.sim.scene import sample_scene
from mobile_vla.sim.world import World


def physics_steps_per_s(world: World, control_steps: int = 300) -> float:
    world.reset(sample_scene(0))
    start = time.perf_counter()
    for i in range(control_steps):
        if i % 10 == 0:
            world.reset(sample_scene(0))  # keep the robot away from the boxes
        world.step(np.array([0.5, 0.2 * np.sin(i), 0.0]))
    return control_steps * world.substeps / (time.perf_counter() - start)


def render_ms(size: int, frames: int = 300) -> float:
    world = World(size)
    world.reset(sample_scene(1))
    world.render()  # first frame builds the context
    start = time.perf_counter()
    for _ in range(frames):
        world.render()
    ms = 1000 * (time.perf_counter() - start) / frames
    world.close()
    return ms


def collect_rate(episodes: int, workers: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        s = collect(CollectConfig(Path(tmp), episodes, seed=0), workers=workers, progress=False)
    return s["episodes_per_minute"]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--episodes", type=int, default=40)
    args = parser.parse_args()
    world = World(112)
    result = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "physics_steps_per_s": round(physics_steps_per_s(world)),
        "physics_dt_s": world.control_dt / world.substeps,
    }
    world.close()
    for size in (112, 224):
        ms = render_ms(size)
        result[f"render_ms_{size}px"] = round(ms, 2)
        result[f"render_frames_per_s_{size}px"] = round(1000 / ms, 1)
    for workers in (1, 2):
        result[f"collect_episodes_per_min_{workers}_worker{'s' if workers > 1 else ''}"] = collect_rate(
            args.episodes, workers)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
