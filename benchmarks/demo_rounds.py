"""What the demo's DAgger rounds pay beside their optimiser steps, before and after the fixes.

Given a finished demo folder (``mobile-vla demo --out DIR``: ``DIR/data`` holds the first
collection and every DAgger round's, ``DIR/checkpoint`` the published policy), it measures in
one process, so that both sides of each comparison see the same machine minutes apart:

- ``round_setup``: building the last round's training data (split, labels, train and validation
  datasets, every episode's frames decoded) with nothing remembered — what every round paid
  before episode labels and decoded frames were remembered per file version — against the same
  build again, as the next round now does for the files it has seen.
- ``validation_batch``: one validation batch's losses plus its grounding pairs, the pairs from a
  second forward pass (before) against the losses' own mirrored outputs (now).
- ``blind_episode``: the blind replay's closed-loop episodes rendering every frame (before)
  against rendering none (now: the replay never looks).

Seconds are wall-clock and CPU time of this process (``cpu_s``), which is less sensitive to
other jobs on the machine. Usage::

    .venv/bin/python benchmarks/demo_rounds.py --demo outputs/demo [--batches 8] [--episodes 20]

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
sys.path.insert(0, str(Path(__file__).resolve().parent))
from clock import Clock  # noqa: E402


def round_setup(demo: Path) -> dict:
    from mobile_vla.data import cache, formats
    from mobile_vla.policy.checkpoint import load_checkpoint
    from mobile_vla.train.config import load_train_config
    from mobile_vla.train.datamodule import MobileVLADataModule

    _, _, processor = load_checkpoint(demo / "checkpoint")
    config = load_train_config("configs/tiny.yaml", [f"data.episodes={demo / 'data'}"])

    def build() -> int:
        dm = MobileVLADataModule(config, processor)
        dm.setup()
        for ds in (dm.train_set, dm.val_set):
            ds.preload()
        return len(dm.train_paths) + len(dm.val_paths)

    cache.forget_decoded()
    formats._read_labels_version.cache_clear()
    with Clock() as cold:
        episodes = build()
    with Clock() as warm:
        build()
    return {"episodes": episodes, "nothing_remembered": cold.figures(), "remembered": warm.figures(),
            "saved_s": round(cold.wall - warm.wall, 2)}


def validation_batch(demo: Path, batches: int) -> dict:
    import torch

    from mobile_vla.data.dataset import MobileVLAH5Dataset
    from mobile_vla.data.split import split_episodes
    from mobile_vla.eval.offline import paired_arrays, paired_outputs
    from mobile_vla.policy.checkpoint import load_checkpoint

    model, config, processor = load_checkpoint(demo / "checkpoint")
    _, val = split_episodes(sorted((demo / "data").rglob("*.h5")), 0.1, 0)
    ds = MobileVLAH5Dataset(val, processor, window_size=model.config.head.window_size,
                            fwd_pred_next_n=model.config.head.fwd_pred_next_n)
    loader = torch.utils.data.DataLoader(ds, batch_size=32, collate_fn=ds.collater)
    chosen = [b for _, b in zip(range(batches), loader)]
    out = {}
    with torch.no_grad():
        for name, pairs in (("second_forward_pass", lambda b, o: paired_outputs(model, processor, b)),
                            ("losses_outputs", lambda b, o: paired_arrays(processor, b, o, o.mirror))):
            with Clock() as clock:
                for batch in chosen:
                    _, o = model.compute_losses(batch)
                    pairs(batch, o)
            out[name] = clock.figures(per=len(chosen))
    out["batches"] = len(chosen)
    return out


def blind_episode(episodes: int) -> dict:
    from mobile_vla.sim.baselines import BlindReplay, mean_expert_actions
    from mobile_vla.sim.rollout import run_episode
    from mobile_vla.sim.scene import eval_scene_seed
    from mobile_vla.sim.tasks import SCENE_PRESETS
    from mobile_vla.sim.world import World
    from mobile_vla.vocab.instructions import canonical_instruction

    class Looking(BlindReplay):
        needs_frames = True  # as before: a frame rendered at every step, never looked at

    tables = mean_expert_actions(scenes="varied")
    scenes = [SCENE_PRESETS.get("varied").sample(eval_scene_seed(0, i)) for i in range(episodes)]
    out = {}
    with World() as world:
        for name, replay in (("rendering_every_frame", Looking(tables)), ("rendering_none", BlindReplay(tables))):
            with Clock() as clock:
                for scene in scenes:
                    run_episode(world, scene, canonical_instruction("left"), replay, beta=0.0, render=False)
            out[name] = clock.figures(per=episodes)
    out["episodes"] = episodes
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--demo", type=Path, required=True, help="a finished `mobile-vla demo --out` folder")
    parser.add_argument("--batches", type=int, default=8, help="validation batches of 32 windows")
    parser.add_argument("--episodes", type=int, default=20, help="blind replay episodes")
    args = parser.parse_args(argv)
    if not (args.demo / "data").is_dir() or not (args.demo / "checkpoint").is_dir():
        parser.error(f"{args.demo}: expected a finished demo folder (data/ and checkpoint/)")
    logging.basicConfig(level=logging.WARNING)
    import torch

    result = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads()},
        "round_setup": round_setup(args.demo),
        "validation_batch": validation_batch(args.demo, args.batches),
        "blind_episode": blind_episode(args.episodes),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
