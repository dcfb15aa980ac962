"""Start a demo variant from another demo's collection and first training (or every round).

Recipe searches change what happens *after* the first training (DAgger rounds, evaluation); the
collection and the first 1200 optimiser steps, two thirds of a demo's time, would be recomputed
identically. This copies ``SRC/data/sim`` and ``SRC/train_0`` into ``DST`` and writes ``DST``'s
fingerprint for the new settings, so that ``mobile-vla demo --out DST`` with the same settings
resumes after the first training::

    python scripts/fork_demo.py outputs/demo outputs/r4_s0 dagger_rounds=4 dagger_steps=200
    mobile-vla demo --seed 0 --out outputs/r4_s0 dagger_rounds=4 dagger_steps=200

When the new settings change nothing any training round reads either (``select_episodes``, ``average_rounds``,
``heldout_scenes``), every round's data and checkpoint are copied too, and the demo resumes at
the checkpoint selection and evaluation.

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

from mobile_vla.demo import DemoConfig, demo_fingerprint, load_demo_config
from mobile_vla.jsonio import write_json

# Settings no training round reads: with only these changed, every round is copied.
AFTER_ROUNDS = ("select_episodes", "average_rounds", "heldout_scenes")
# Settings the collection and the first training do not read.
AFTER_TRAIN_0 = ("dagger_rounds", "dagger_scenes", "dagger_beta", "dagger_steps", "dagger_strategy",
                 "dagger_recent_weight", *AFTER_ROUNDS)


def _rebase(value, src: str, dst: str):
    """Every string in a JSON value that is a path under ``src``, moved under ``dst``."""
    if isinstance(value, dict):
        return {k: _rebase(v, src, dst) for k, v in value.items()}
    if isinstance(value, list):
        return [_rebase(v, src, dst) for v in value]
    if isinstance(value, str) and (value == src or value.startswith(src + "/")):
        return dst + value[len(src):]
    return value


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
    new, default = demo_fingerprint(cfg), demo_fingerprint(DemoConfig())
    # a key the source's fingerprint lacks (a setting added since) held its default there
    changed = sorted(k for k in set(old) | set(new) if old.get(k, default.get(k)) != new.get(k))
    schedule = lambda f: f["train_steps"] + f["dagger_rounds"] * f["dagger_steps"]  # noqa: E731
    before_train_0 = [k for k in changed if k.split(".")[0] not in AFTER_TRAIN_0]
    if before_train_0 or schedule(old) != schedule(new):
        raise SystemExit(f"these settings change the collection or the first training: {before_train_0 or 'schedule'}")

    every_round = all(k.split(".")[0] in AFTER_ROUNDS for k in changed)
    stages = [("data/sim", "train_0")]
    if every_round:
        stages += [(f"data/dagger_{r}", f"train_{r}") for r in range(1, int(old["dagger_rounds"]) + 1)]
    for data, train in stages:
        shutil.copytree(args.src / data, args.dst / data)
        shutil.copytree(args.src / train, args.dst / train, ignore=shutil.ignore_patterns("tensorboard"))
    # The copies' fingerprints and saved configs name the source's folders; point them at the copies.
    for saved in [*args.dst.glob("**/fingerprint.json"), *args.dst.glob("train_*/checkpoint/config.json")]:
        write_json(saved, _rebase(json.loads(saved.read_text()), str(args.src), str(args.dst)))
    write_json(args.dst / "fingerprint.json", new)
    print(f"forked {args.src} -> {args.dst} ({'every round' if every_round else 'collection and first training'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
