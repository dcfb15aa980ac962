"""`mobile-vla serve`: serve a checkpoint to robots over websockets + msgpack (docs/protocol.md)."""

from __future__ import annotations

import argparse
import os

TOKEN_ENV = "MOBILE_VLA_TOKEN"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def register(sub) -> None:
    from mobile_vla.vocab.instructions import SIDES

    p = sub.add_parser(
        "serve",
        help="serve a policy checkpoint to robots (websocket + msgpack, openpi-compatible)",
        description="Serve a checkpoint: one streaming session per connection, steps of concurrent sessions "
        "batched. SIGTERM drains open sessions. Protocol: docs/protocol.md; flags: docs/serving.md.",
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
    p.add_argument("--torch-threads", type=int, default=1,
                   help="torch intra-op threads of the server process (default 1: batching, not threads, uses "
                        "the cores for the tiny model; 0 keeps torch's default)")
    limits = p.add_argument_group("limits (docs/serving.md)")
    limits.add_argument("--max-connections", type=int, default=64, help="open connections at most (default 64)")
    limits.add_argument("--auth-timeout", type=float, default=10.0,
                        help="seconds to authenticate when a token is set (default 10; 0: no limit)")
    limits.add_argument("--preauth-max-bytes", type=int, default=4096,
                        help="message cap before authentication when a token is set (default 4096)")
    limits.add_argument("--idle-timeout", type=float, default=300.0,
                        help="seconds without a message that end the session (default 300; 0: never)")
    limits.add_argument("--max-queue", type=int, default=32,
                        help="steps waiting for inference before new ones are answered 'overloaded' (default 32)")
    limits.add_argument("--drain-timeout", type=float, default=10.0,
                        help="on SIGTERM, seconds in-flight steps may take to finish (default 10)")
    batching = p.add_argument_group("batching across sessions")
    batching.add_argument("--batch-window-ms", type=float, default=5.0,
                          help="gather concurrent sessions' steps this long into one forward pass (default 5; 0: off)")
    batching.add_argument("--max-batch", type=int, default=16, help="steps per forward pass at most (default 16)")
    tls = p.add_argument_group("TLS (wss://)")
    tls.add_argument("--tls-cert", help="PEM certificate (chain) file: serve wss://")
    tls.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--inference-process", action=argparse.BooleanOptionalAction, default=False,
                   help="run the policy in a child process of its own, so that the model never waits for the "
                        "event loop's GIL (default: off, in the server process; docs/serving.md)")
    p.add_argument("--no-side-route", choices=SIDES, default=None,
                   help="a request that names no side (\"reach the cup\") is given to the model as that "
                        "side's instruction (default: as written; docs/language.md)")
    p.add_argument("--json", action="store_true", help="print one JSON object {url, ...} once listening")
    p.set_defaults(func=_run)


def _run(args) -> int:
    import functools
    import logging
    import sys
    from pathlib import Path

    from mobile_vla.cli import emit
    from mobile_vla.errors import MobileVLAError
    from mobile_vla.serve.server import host_policy, serve_forever

    log = logging.getLogger("mobile_vla.serve")
    checkpoint = Path(args.checkpoint)
    if not checkpoint.is_dir():
        raise MobileVLAError(f"--checkpoint {checkpoint}: not a directory")
    if args.max_message_mb <= 0 or args.workers < 1:
        raise MobileVLAError("--max-message-mb must be > 0 and --workers >= 1")
    for name in ("tls_cert", "tls_key"):
        path = getattr(args, name)
        if path and not Path(path).is_file():
            raise MobileVLAError(f"--{name.replace('_', '-')} {path}: no such file")
    if args.host not in LOOPBACK and not args.token:
        log.warning("serving on %s without a token: anyone on the network can drive the robot", args.host)
    if args.host not in LOOPBACK and args.token and not args.tls_cert:
        log.warning("serving on %s without TLS: the token and frames travel in clear text", args.host)
    try:
        from mobile_vla.policy.backends import load_policy
    except ImportError as exc:
        raise MobileVLAError(f"inference is unavailable in this install: {exc}") from None
    config = server_config(args)
    load = functools.partial(load_policy, checkpoint, device=args.device, no_side_route=args.no_side_route)
    policy = host_policy(load, config)

    def ready(port: int) -> None:
        url = f"{config.scheme}://{args.host}:{port}"
        emit({"url": url, "checkpoint": str(checkpoint), **policy.metadata}, args.json, f"listening on {url}")
        sys.stdout.flush()

    try:
        serve_forever(policy, config, on_ready=ready)
    finally:
        getattr(policy, "close", lambda: None)()  # the inference process, once sessions have drained
    return 0


def server_config(args):
    """The :class:`~mobile_vla.serve.config.ServerConfig` the flags describe (validated)."""
    from mobile_vla.serve.config import ServerConfig

    return ServerConfig(
        host=args.host,
        port=args.port,
        token=args.token or None,
        max_message_bytes=int(args.max_message_mb * 1024 * 1024),
        workers=args.workers,
        torch_threads=args.torch_threads,
        max_connections=args.max_connections,
        auth_timeout_s=args.auth_timeout,
        preauth_max_bytes=args.preauth_max_bytes,
        idle_timeout_s=args.idle_timeout,
        max_queue=args.max_queue,
        drain_timeout_s=args.drain_timeout,
        batch_window_ms=args.batch_window_ms,
        max_batch=args.max_batch,
        tls_cert=args.tls_cert,
        tls_key=args.tls_key,
        inference_process=args.inference_process,
    ).validate()
