"""`mobile-vla sim` (not yet implemented)."""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("sim", help="(not yet implemented)")
    p.set_defaults(func=_run)


def _run(args) -> int:
    from mobile_vla.errors import MobileVLAError

    raise MobileVLAError("'sim' is not implemented yet")
