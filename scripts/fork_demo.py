"""Start a demo variant from another demo's collection and first training.

Recipe searches change what happens *after* the first training (DAgger rounds, evaluation); the
collection and the first 1200 optimiser steps, two thirds of a demo's time, would be recomputed
identically. This copies ``SRC/data/sim`` and ``SRC/train_0`` into ``DST`` and writes ``DST``'s
fingerprint for the new settings, so that ``mobile-vla demo --out DST`` with the same settings
resumes after the first training::

    python scripts/fork_demo.py outputs/demo outputs/r4_s0 dagger_rounds=4 dagger_steps=200
    mobile-vla demo --seed 0 --out outputs/r4_s0 dagger_rounds=4 dagger_steps=200

It refuses when the new settings would change the first training: the collection settings, the
first training's steps, or its learning-rate schedule (``train_steps + dagger_rounds ×
dagger_steps``). A forked run's ``wall_minutes`` covers only the stages it ran.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from mobile_vla.demo import demo_fingerprint, load_demo_config
from mobile_vla.jsonio import write_json

# Settings the collection and the first training do not read.
AFTER_TRAIN_0 = ("dagger_rounds", "dagger_scenes", "dagger_beta", "dagger_steps", "dagger_strategy", "dagger_recent_weight",
                 "heldout_scenes")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("src", type=Path, help="a finished demo's --out folder")
    p.add_argument("dst", type=Path, help="the new demo's --out folder (must not exist)")
    p.add_argument("overrides", nargs="*", help="demo settings, as `mobile-vla demo` takes them")
    args = p.parse_args(argv)
    if args.dst.exists():
        raise SystemExit(f"{args.dst} exists; fork into a new folder")
    old = json.loads((args.src / "fingerprint.json").read_text())
    cfg = load_demo_config(args.overrides, out=str(args.dst), seed=int(old["seed"]))
    new = demo_fingerprint(cfg)
    changed = sorted(k for k in set(old) | set(new)
                     if old.get(k) != new.get(k) and k.split(".")[0] not in AFTER_TRAIN_0)
    schedule = lambda f: f["train_steps"] + f["dagger_rounds"] * f["dagger_steps"]  # noqa: E731
    if changed or schedule(old) != schedule(new):
        raise SystemExit(f"these settings change the collection or the first training: {changed or 'schedule'}")

    shutil.copytree(args.src / "data" / "sim", args.dst / "data" / "sim")
    shutil.copytree(args.src / "train_0", args.dst / "train_0", ignore=shutil.ignore_patterns("tensorboard"))
    # The first training read the source's data folder; point it at the copy.
    episodes = str(args.dst / "data")
    fp = args.dst / "train_0" / "fingerprint.json"
    write_json(fp, {**json.loads(fp.read_text()), "data.episodes": episodes})
    saved = args.dst / "train_0" / "checkpoint" / "config.json"
    config = json.loads(saved.read_text())
    config["data"]["episodes"] = episodes
    write_json(saved, config)
    write_json(args.dst / "fingerprint.json", new)
    print(f"forked {args.src} -> {args.dst}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
