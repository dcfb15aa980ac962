"""`mobile-vla serve`: serve a checkpoint to robots over websockets + msgpack (docs/protocol.md)."""

from __future__ import annotations

import os

TOKEN_ENV = "MOBILE_VLA_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(sub) -> None:
    p = sub.add_parser(
        "serve",
        help="serve a policy checkpoint to robots (websocket + msgpack, openpi-compatible)",
        description="Serve a checkpoint: one streaming session per connection. Protocol: docs/protocol.md.",
    )
    p.add_argument(
        "--checkpoint", required=True,
        help="checkpoint directory, or any path a registered policy backend reads (e.g. an ONNX export)"
    )
    p.add_argument("--host", default="127.0.0.1", help="bind address (default: localhost only)")
    p.add_argument("--port", type=int, default=8765, help="TCP port (0 picks a free one)")
    p.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"require this token from clients (default: ${TOKEN_ENV}; prefer the variable: argv is visible in ps)",
    )
    p.add_argument("--device", default="cpu", help="torch device for inference, e.g. cpu or cuda")
    p.add_argument("--max-message-mb", type=float, default=16.0, help="messages over this are refused")
    p.add_argument("--workers", type=int, default=1, help="inference threads (1 serialises model calls)")
    p.add_argument("--json", action="store_true", help="print one JSON object {url, ...} once listening")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import logging
    import sys
    from pathlib import Path

    from mobile_vla.cli import emit
    from mobile_vla.errors import MobileVLAError
    from mobile_vla.serve.server import ServerConfig, serve_forever

    log = logging.getLogger("mobile_vla.serve")
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_dir():
        raise MobileVLAError(f"--checkpoint {checkpoint}: not a directory")
    if args.max_message_mb <= 0 or args.workers < 1:
        raise MobileVLAError("--max-message-mb must be > 0 and --workers >= 1")
    if args.host not in LOOPBACK and not args.token:
        log.warning("serving on %s without a token: anyone on the network can drive the robot", args.host)
    from mobile_vla.policy.backends import load_policy  # a training checkpoint, an ONNX export, ...

    try:
        policy = load_policy(checkpoint, device=args.device)
    except ImportError as exc:
        raise MobileVLAError(f"inference is unavailable in this install: {exc}") from None
    config = ServerConfig(
        host=args.host,
        port=args.port,
        token=args.token or None,
        max_message_bytes=int(args.max_message_mb * 1024 * 1024),
        workers=args.workers,
    )

    def ready(port: int) -> None:
        url = f"ws://{args.host}:{port}"
        emit({"url": url, "checkpoint": str(checkpoint), **policy.metadata}, args.json, f"listening on {url}")
        sys.stdout.flush()

    serve_forever(policy, config, on_ready=ready)
    return 0
