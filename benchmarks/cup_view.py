"""Where routes lose sight of the cup: the expert's, or a policy's from closed-loop records.

A window-1 policy acts on the current frame only; where the cup is out of view it has to act on
what it can no longer see, which is where a window of history can help. This counts, per
outcome, the episodes in which the cup leaves the camera's field of view
(:func:`mobile_vla.sim.visibility.cup_in_view`: geometry only, occlusion not counted), the steps
out of view, and the phase (approaching, beside or after the cluster) of those steps.

    MUJOCO_GL=egl python benchmarks/cup_view.py --scenes varied --episodes 200     # the expert
    MUJOCO_GL=egl python benchmarks/cup_view.py --scenes varied --records outputs/demo/records.jsonl

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json

from mobile_vla.jsonio import dumps
from mobile_vla.sim.rollout import run_episode
from mobile_vla.sim.scene import eval_scene_seed
from mobile_vla.sim.tasks import resolve
from mobile_vla.sim.visibility import route_view_summary
from mobile_vla.sim.world import World
from mobile_vla.vocab.instructions import SIDES, canonical_instruction


def _outcome(success: bool, collision: bool, timeout: bool) -> str:
    return "success" if success else "collision" if collision else "timeout" if timeout else "other"


def expert_routes(scenes: str | None, episodes: int, seed: int) -> list:
    """The expert's routes on ``episodes // 2`` evaluation scenes, each driven left and right."""
    _, spec, _, preset = resolve("cup", scenes)
    routes = []
    with World() as world:
        for i in range(episodes // 2):
            scene = preset.sample(eval_scene_seed(seed, i))
            for side in SIDES:
                r = run_episode(world, scene, canonical_instruction(side), render=False, task=spec)
                routes.append((scene, r.poses, _outcome(r.success, r.collision, r.timeout)))
    return routes


def recorded_routes(path: str, scenes: str | None) -> list:
    """The routes of a closed-loop ``records.jsonl`` (``eval-sim --records``, the demo's)."""
    _, _, _, preset = resolve("cup", scenes)
    routes = []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            rec = json.loads(line)
            if "trajectory" not in rec or "scene_seed" not in rec:
                raise SystemExit(f"{path}:{line_no}: a closed-loop record needs 'trajectory' and 'scene_seed'")
            routes.append((preset.sample(int(rec["scene_seed"])), rec["trajectory"],
                           _outcome(rec["success"], rec["collision"], rec["timeout"])))
    return routes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", default=None, help="scene preset (default: the cup task's)")
    ap.add_argument("--records", help="closed-loop records.jsonl to analyse instead of the expert")
    ap.add_argument("--episodes", type=int, default=200, help="expert episodes (half per side)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    routes = recorded_routes(args.records, args.scenes) if args.records else expert_routes(
        args.scenes, args.episodes, args.seed)
    print(dumps({"source": args.records or "expert", "scenes": args.scenes, "by_outcome": route_view_summary(routes)}))


if __name__ == "__main__":
    main()
