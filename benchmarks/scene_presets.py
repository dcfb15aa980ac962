"""Check every scene preset of the cup task: the expert solves it and the cup is in view.

Per preset: the expert in closed loop on 200 evaluation scenes (each driven left and right:
``success_rate`` must be ≥ 0.99 and ``side_accuracy`` 1.0), the cup's pixels in the 112-px start
frame of 500 evaluation scenes (each must be ≥ 20), and the ranges the scenes actually span.
The unit tests check fewer scenes to stay fast; this script is the full check. Prints one
JSON object and, with ``--out``, writes it atomically (read by ``scripts/results_tables.py``).

    MUJOCO_GL=egl .venv/bin/python benchmarks/scene_presets.py --out results/scene_presets.json
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

from mobile_vla.jsonio import dumps, write_json  # noqa: E402
from mobile_vla.sim.evaluate import expert_eval  # noqa: E402
from mobile_vla.sim.scene import eval_scene_seed  # noqa: E402
from mobile_vla.sim.scene_varied import LOW_CONTRAST, contrast  # noqa: E402
from mobile_vla.sim.tasks import SCENE_PRESETS  # noqa: E402
from mobile_vla.sim.visibility import cup_pixels  # noqa: E402
from mobile_vla.sim.world import World  # noqa: E402

MIN_CUP_PIXELS = 20


def span(values) -> list[float]:
    return [round(float(np.min(values)), 3), round(float(np.max(values)), 3)]


def check_preset(name: str, scenes: int, expert_scenes: int, seed: int, world: World) -> dict:
    preset = SCENE_PRESETS.get(name)
    specs = [preset.sample(eval_scene_seed(seed, i)) for i in range(scenes)]
    pixels = np.array([int(cup_pixels(world, s).sum()) for s in specs])
    expert = expert_eval(2 * expert_scenes, seed=seed, scenes=name)
    centre_y = [s.obstacle_center[1] - s.start_pose[1] for s in specs]
    return {
        "expert": {k: expert[k] for k in ("episodes", "success_rate", "side_accuracy", "collision_rate", "mean_steps")},
        "cup_pixels": {"scenes": scenes, "min": int(pixels.min()), "p5": float(np.percentile(pixels, 5)),
                       "median": float(np.median(pixels)), "below_min": int((pixels < MIN_CUP_PIXELS).sum()),
                       "required": MIN_CUP_PIXELS},
        "ranges": {
            "cluster_lateral_from_start_m": span(centre_y),
            "cup_lateral_from_cluster_m": span([s.target_xy[1] - s.obstacle_center[1] for s in specs]),
            "cup_behind_cluster_m": span([s.target_xy[0] - s.obstacle_bounds[1] for s in specs]),
            "start_lateral_m": span([s.start_pose[1] for s in specs]),
            "start_heading_deg": span([math.degrees(s.start_pose[2]) for s in specs]),
            "boxes": sorted({s.num_boxes for s in specs}),
            "layouts": sorted({f"{s.num_boxes}box_{s.orientation}" for s in specs}),
            "distractors": sorted({len(s.distractors) for s in specs}),
            "low_contrast_fraction": float(np.mean([contrast(s.boxes[0].rgba, s.floor_rgba) < LOW_CONTRAST
                                                    for s in specs])),
        },
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="*", default=None, help="default: every registered preset of the cup task")
    ap.add_argument("--scenes", type=int, default=500, help="scenes whose start frame is rendered")
    ap.add_argument("--expert-scenes", type=int, default=200, help="scenes the expert drives (left and right)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="also write the JSON here")
    args = ap.parse_args()
    names = args.presets or [n for n in SCENE_PRESETS.names() if SCENE_PRESETS.get(n).task == "cup"]
    with World(112) as world:
        report = {"seed": args.seed, "presets": {n: check_preset(n, args.scenes, args.expert_scenes, args.seed, world)
                                                  for n in names}}
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        write_json(args.out, report)
    print(dumps(report))


if __name__ == "__main__":
    main()
