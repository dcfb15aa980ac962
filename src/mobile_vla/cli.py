"""The ``mobile-vla`` command: a thin shell over library functions.

Each subcommand lives in ``mobile_vla.commands.<name>`` and exposes ``register(subparsers)``,
which adds its parser and sets ``func(args) -> int`` (the exit code). Heavy imports happen
inside ``func`` so that ``--help`` stays fast.

Conventions shared by all subcommands:
- ``--json`` prints exactly one JSON object on stdout (logs go to stderr);
- user errors (:class:`MobileVLAError`) print one line ``error: ...`` and exit 2;
- ``-v`` raises the log level to DEBUG.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Any

from mobile_vla.errors import MobileVLAError
from mobile_vla.jsonio import dumps

# Order here is the order in `mobile-vla --help`.
COMMANDS = ["data", "sim", "train", "eval", "eval_sim", "diagnose", "demo", "serve", "export", "plugins"]


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    for noisy in ("lightning", "lightning.pytorch", "pytorch_lightning", "urllib3", "PIL", "matplotlib"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def emit(result: dict[str, Any], as_json: bool, text: str | None = None) -> None:
    """Print ``result`` as one JSON object (``--json``) or as human-readable ``text``."""
    if as_json:
        print(dumps(result))
    else:
        print(text if text is not None else dumps(result))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mobile-vla",
        description="Train, evaluate and serve Kosmos-2 Vision-Language-Action policies for mobile robots.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"mobile_vla.commands.{name}").register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    setup_logging(args.verbose)
    try:
        return int(args.func(args) or 0)
    except MobileVLAError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
