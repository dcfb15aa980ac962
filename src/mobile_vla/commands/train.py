"""`mobile-vla train --config configs/tiny.yaml [KEY=VALUE ...] [--resume DIR] [--out DIR]`."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a policy (Lightning); writes <out>/checkpoint",
        description="Train a Mobile VLA policy. Overrides use dotted keys, e.g. trainer.max_steps=100 "
        "model.lora.rank=16; unknown keys are an error.",
    )
    p.add_argument("--config", help="YAML config (e.g. configs/tiny.yaml)")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    p.add_argument("--resume", metavar="DIR", help="checkpoint directory to continue from")
    p.add_argument("--out", metavar="DIR", help="output directory (default: trainer.out_dir)")
    p.add_argument("--force-restart", action="store_true",
                   help="delete what --out holds from earlier runs with other settings and start over")
    p.add_argument("--json", action="store_true", help="print one JSON object with the result")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import contextlib
    import os
    import sys

    from mobile_vla.cli import emit
    from mobile_vla.policy.checkpoint import read_state
    from mobile_vla.train.api import train
    from mobile_vla.train.config import load_train_config

    config = load_train_config(args.config, args.overrides)
    # Lightning's summary and progress bar print to stdout; keep stdout for the one result.
    with contextlib.redirect_stdout(sys.stderr):
        checkpoint = train(config, out_dir=args.out, resume=args.resume, force_restart=args.force_restart)
    if int(os.environ.get("LOCAL_RANK", "0")) != 0 or int(os.environ.get("NODE_RANK", "0")) != 0:
        return 0  # DDP worker processes: rank 0 reports
    state = read_state(checkpoint)
    result = {"checkpoint": str(checkpoint), "step": state.get("step"), "metrics": state.get("metrics", {})}
    emit(result, args.json, f"checkpoint: {checkpoint} (step {state.get('step')})")
    return 0
