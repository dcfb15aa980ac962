"""Example robot loop: camera → policy server → chunk execution → velocity limits → base.

    # against a running server (mobile-vla serve --checkpoint DIR; wss:// with --tls-ca CA.pem)
    python examples/robot_loop.py --server ws://127.0.0.1:8765 \
        --instruction "go around the box on the left and reach the cup" --rate 5 --steps 50
    # self-contained demo with a fake policy served in-process
    python examples/robot_loop.py --fake-server --steps 20

Replace ``Camera`` and ``Base`` with your drivers. Safety lives on the robot: every command
is bounded by :class:`VelocityLimiter`, and the base is stopped whenever no good reply came
within ``--reply-timeout`` (a dead server, network or model must never leave it moving).
docs/serving.md shows the same loop as a ROS 2 node publishing ``cmd_vel``.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import time

import numpy as np

from mobile_vla.policy.executor import DEFAULT_STRATEGY, STRATEGIES
from mobile_vla.serve.client import PolicyClient, RemoteError, RemotePolicy
from mobile_vla.serve.safety import VelocityLimiter, VelocityLimits, Watchdog

log = logging.getLogger("robot_loop")


class Camera:
    """Stand-in camera: a moving gradient, RGB uint8 (480, 640, 3)."""

    def __init__(self) -> None:
        self._t = 0

    def read(self) -> np.ndarray:
        self._t += 1
        x = np.linspace(0, 255, 640, dtype=np.float32)[None, :, None]
        frame = np.broadcast_to((x + 7 * self._t) % 256, (480, 640, 3))
        return frame.astype(np.uint8)


class Base:
    """Stand-in omni-wheel base: records commands [linear_x, linear_y, angular_z]."""

    def __init__(self) -> None:
        self.commands: list[np.ndarray] = []

    def send(self, command: np.ndarray) -> None:
        self.commands.append(np.asarray(command, np.float32))

    def stop(self) -> None:
        self.send(np.zeros(3, np.float32))


def run(
    url: str,
    instruction: str,
    steps: int,
    rate: float = 5.0,
    strategy: str = DEFAULT_STRATEGY,
    token: str | None = None,
    limits: VelocityLimits = VelocityLimits(),
    reply_timeout: float = 0.5,
    ca_file: str | None = None,
    camera: Camera | None = None,
    base: Base | None = None,
) -> Base:
    """Drive ``base`` for ``steps`` control ticks at ``rate`` Hz; returns the base."""
    camera, base = camera or Camera(), base or Base()
    limiter, watchdog = VelocityLimiter(limits), Watchdog(reply_timeout)
    remote = RemotePolicy(url, token=token, timeout_s=reply_timeout, ca_file=ca_file)
    client = PolicyClient(remote, strategy=strategy)
    client.reset(instruction)
    period, last = 1.0 / rate, time.monotonic()
    try:
        for _ in range(steps):
            tick = time.monotonic()
            try:
                command = client.act(camera.read())
                watchdog.feed()
            except RemoteError as exc:  # no reply in time, or the server said no
                log.warning("no command this tick: %s", exc)
                command = None
            if command is None or watchdog.expired:
                base.stop()
                limiter.reset()
            else:
                base.send(limiter(command, dt=tick - last))
                log.info("cmd %s  (server %s)", np.round(base.commands[-1], 3), client.last_timing)
            last = tick
            time.sleep(max(0.0, period - (time.monotonic() - tick)))
    finally:
        base.stop()
        remote.close()
    return base


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server", default="ws://127.0.0.1:8765")
    parser.add_argument("--fake-server", action="store_true", help="serve a fake policy in-process (demo)")
    parser.add_argument("--instruction", default="go around the box on the left and reach the cup")
    parser.add_argument("--token", default=os.environ.get("MOBILE_VLA_TOKEN"))
    parser.add_argument("--tls-ca", help="CA certificate (PEM) of a wss:// server")
    parser.add_argument("--strategy", default=DEFAULT_STRATEGY, choices=STRATEGIES)
    parser.add_argument("--rate", type=float, default=5.0, help="control rate, Hz")
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--max-speed", type=float, default=0.5, help="m/s")
    parser.add_argument("--max-accel", type=float, default=1.0, help="m/s^2")
    parser.add_argument("--reply-timeout", type=float, default=0.5, help="stop the base after this many s")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with contextlib.ExitStack() as stack:
        url = args.server
        if args.fake_server:
            from mobile_vla.serve.fake import FakePolicy
            from mobile_vla.serve.server import ServerConfig, serve_in_thread

            url = stack.enter_context(
                serve_in_thread(FakePolicy(), ServerConfig(port=0, token=args.token))
            ).url
        base = run(
            url,
            args.instruction,
            args.steps,
            rate=args.rate,
            strategy=args.strategy,
            token=args.token,
            limits=VelocityLimits(max_speed=args.max_speed, max_accel=args.max_accel),
            reply_timeout=args.reply_timeout,
            ca_file=args.tls_ca,
        )
    log.info("sent %d commands", len(base.commands))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
