"""The policy server: one streaming session per websocket connection, inference off the event loop.

Each connection owns its session (instruction + frame history); nothing is shared between
clients except the read-only policy. Inference runs in a thread pool (``workers`` threads,
default 1 so a GPU or the CPU's intra-op threads are not oversubscribed) while the event
loop keeps accepting connections and answering health checks and bad messages.

Authentication (when a token is set), see ``docs/protocol.md``:
- the HTTP upgrade carries ``Authorization: Api-Key <token>`` (openpi's header): accepted,
  or refused with HTTP 401 when the key is wrong; or
- without that header, the first message must carry the token, either as
  ``{"type": "auth", "token": T}`` or as a ``token`` field of any message; otherwise the
  server answers an error and closes the connection (code 1008).

Size cap: a message over ``max_message_bytes`` is answered by an error and dropped (the
connection stays open); one over ``hard_limit_factor`` times the cap closes the connection
(code 1009), since websockets would otherwise have to buffer it whole.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import hmac
import http
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from mobile_vla.errors import MobileVLAError
from mobile_vla.serve import protocol
from mobile_vla.serve.protocol import ProtocolError

log = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"  # openpi's plain-HTTP health check
AUTH_SCHEME = "Api-Key"


@dataclasses.dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8765  # 0 picks a free port (tests)
    token: str | None = None
    max_message_bytes: int = protocol.DEFAULT_MAX_MESSAGE_BYTES
    hard_limit_factor: int = 4
    workers: int = 1


@dataclasses.dataclass
class _Connection:
    """Per-connection state: the session lives and dies with the websocket."""

    id: int
    peer: str
    authenticated: bool
    first_message: bool = True
    session: Any = None
    prompt: str | None = None  # last openpi-style prompt, to reset when it changes
    close_code: int | None = None


class PolicyServer:
    """Serve ``policy`` (anything with ``metadata`` and ``new_session``) over websockets + msgpack."""

    def __init__(self, policy: Any, config: ServerConfig | None = None):
        self.policy = policy
        self.config = config or ServerConfig()
        if self.config.max_message_bytes <= 0:
            raise MobileVLAError(f"max_message_bytes must be positive, got {self.config.max_message_bytes}")
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, self.config.workers), thread_name_prefix="mobile-vla-infer"
        )
        self._ids = itertools.count(1)
        self._connections: dict[int, _Connection] = {}
        self._steps = 0
        self._started = time.monotonic()
        self.port: int | None = None

    # ------------------------------------------------------------------ lifecycle

    async def serve(
        self, on_ready: Callable[[int], Any] | None = None, stop: asyncio.Future | None = None
    ) -> None:
        """Run until ``stop`` resolves (forever when None). ``on_ready`` receives the bound port."""
        cfg = self.config
        async with serve(
            self._handle,
            cfg.host,
            cfg.port,
            compression=None,
            max_size=cfg.max_message_bytes * cfg.hard_limit_factor,
            process_request=self._process_request,
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            log.info(
                "serving %s on ws://%s:%d (auth %s, cap %d bytes, %d worker(s))",
                _model_name(self.policy.metadata),
                cfg.host,
                self.port,
                "on" if cfg.token else "off",
                cfg.max_message_bytes,
                cfg.workers,
            )
            if on_ready is not None:
                on_ready(self.port)
            await (stop if stop is not None else asyncio.get_running_loop().create_future())
        self._pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ HTTP upgrade

    def _process_request(self, connection: ServerConnection, request):
        if request.path == HEALTH_PATH:
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        header = request.headers.get("Authorization")
        if self.config.token and header is not None and not self._header_ok(header):
            log.warning("refused %s: wrong Authorization header", connection.remote_address)
            return connection.respond(
                http.HTTPStatus.UNAUTHORIZED, f"error: Authorization header must be '{AUTH_SCHEME} <token>'\n"
            )
        return None

    def _header_ok(self, header: str | None) -> bool:
        if not header or not self.config.token:
            return False
        scheme, _, key = header.partition(" ")
        return scheme == AUTH_SCHEME and _same(key.strip(), self.config.token)

    # ------------------------------------------------------------------ connection

    def handshake(self, authenticated: bool) -> dict[str, Any]:
        """The metadata map sent on connect (also what openpi's ``get_server_metadata`` returns).

        The documented keys are always present; the policy's other metadata rides along.
        """
        meta = self.policy.metadata
        return {
            "type": "handshake",
            "protocol": protocol.PROTOCOL_NAME,
            "protocol_version": protocol.PROTOCOL_VERSION,
            **meta,
            "model_name": _model_name(meta),
            "action_names": list(meta["action_names"]),
            "action_units": list(meta.get("action_units", meta.get("units", []))),
            "chunk_size": int(meta["chunk_size"]),
            "window_size": int(meta["window_size"]),
            "image_size": int(meta["image_size"]),
            "instruction_format": str(meta.get("instruction_format", "free text")),
            "channel_orders": list(protocol.CHANNEL_ORDERS),
            "max_message_bytes": self.config.max_message_bytes,
            "auth_required": not authenticated,
        }

    async def _handle(self, ws: ServerConnection) -> None:
        header = ws.request.headers.get("Authorization") if ws.request else None
        conn = _Connection(
            id=next(self._ids),
            peer=str(ws.remote_address),
            authenticated=self.config.token is None or self._header_ok(header),
        )
        self._connections[conn.id] = conn
        log.info("connection %d from %s", conn.id, conn.peer)
        try:
            await ws.send(protocol.pack(self.handshake(conn.authenticated)))
            async for data in ws:
                reply = await self._respond(conn, data)
                await ws.send(reply)
                if conn.close_code is not None:
                    await ws.close(conn.close_code, "unauthorized")
                    break
        except ConnectionClosed:
            pass
        finally:
            self._connections.pop(conn.id, None)
            log.info("connection %d closed", conn.id)

    async def _respond(self, conn: _Connection, data: bytes | str) -> bytes | str:
        """Answer one message: a packed reply, or a text frame for a failed openpi-style observation."""
        first, conn.first_message = conn.first_message, False
        try:
            message = protocol.parse_message(data, self.config.max_message_bytes)
            if not conn.authenticated:
                self._authenticate(conn, message, first)
                if isinstance(message, protocol.Auth):
                    return protocol.pack({"type": "auth", "ok": True})
            return protocol.pack(await self._dispatch(conn, message))
        except ProtocolError as exc:
            log.info("connection %d: bad message: %s", conn.id, exc)
            return str(exc) if exc.openpi_style else protocol.pack(protocol.error_reply(str(exc)))

    def _authenticate(self, conn: _Connection, message: protocol.ClientMessage, first: bool) -> None:
        if first and message.token is not None and _same(message.token, self.config.token):
            conn.authenticated = True
            return
        conn.close_code = 1008  # policy violation: refused
        reason = "wrong token" if message.token is not None else "no token"
        raise ProtocolError(
            f"unauthorized ({reason}): send 'Authorization: {AUTH_SCHEME} <token>' on connect, or the token "
            "in the first message ({'type': 'auth', 'token': ...} or a 'token' field)",
            openpi_style=isinstance(message, protocol.Observation),
        )

    async def _dispatch(self, conn: _Connection, message: protocol.ClientMessage) -> dict[str, Any]:
        if isinstance(message, protocol.Health):
            return self.health()
        if isinstance(message, protocol.Auth):
            return {"type": "auth", "ok": True}
        if isinstance(message, protocol.Reset):
            await self._run(self._reset, conn, message.instruction)
            conn.prompt = None
            return {"type": "reset", "ok": True, "instruction": message.instruction}
        if isinstance(message, protocol.Observation):
            try:
                if message.prompt is not None and message.prompt != conn.prompt:
                    await self._run(self._reset, conn, message.prompt)
                    conn.prompt = message.prompt
                return await self._step(conn, message.image, message.channel_order, None)
            except ProtocolError as exc:
                raise ProtocolError(str(exc), openpi_style=True) from None
        return await self._step(conn, message.image, message.channel_order, message.timestamp)

    def _reset(self, conn: _Connection, instruction: str) -> None:
        if conn.session is None:
            conn.session = self.policy.new_session(instruction)
        else:
            conn.session.reset(instruction=instruction)

    async def _step(self, conn: _Connection, image: np.ndarray, order: str, timestamp: float | None) -> dict:
        if conn.session is None:
            raise ProtocolError(
                "step before reset: send {'type': 'reset', 'instruction': ...} first "
                "(or an openpi-style observation with a 'prompt')"
            )
        queued = time.perf_counter()
        actions, infer_s = await self._run(_timed_step, conn.session, image, order)
        total_ms = (time.perf_counter() - queued) * 1e3
        self._steps += 1
        timing = {"infer_ms": infer_s * 1e3, "queue_ms": max(0.0, total_ms - infer_s * 1e3)}
        return protocol.actions_reply(actions, timing, timestamp)

    async def _run(self, fn, *args):
        """Run ``fn`` in the inference pool; user errors become a ProtocolError with their message."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._pool, fn, *args)
        except (MobileVLAError, ValueError) as exc:
            raise ProtocolError(f"policy rejected the input: {exc}") from None
        except Exception as exc:  # keep the connection: report, log the traceback
            log.exception("inference failed")
            raise ProtocolError(f"internal error: {type(exc).__name__}: {exc}") from None

    def health(self) -> dict[str, Any]:
        return {
            "type": "health",
            "status": "ok",
            "model_name": _model_name(self.policy.metadata),
            "connections": len(self._connections),
            "sessions": sum(c.session is not None for c in self._connections.values()),
            "steps_served": self._steps,
            "uptime_s": time.monotonic() - self._started,
        }


def _timed_step(session, image: np.ndarray, order: str) -> tuple[np.ndarray, float]:
    start = time.perf_counter()
    actions = np.asarray(session.step(image, channel_order=order), dtype=np.float32)
    elapsed = time.perf_counter() - start
    if actions.ndim != 2 or not np.isfinite(actions).all():
        raise RuntimeError(
            f"policy returned a bad chunk: shape {actions.shape}, finite={np.isfinite(actions).all()}"
        )
    return actions, elapsed


def _model_name(meta: dict[str, Any]) -> str:
    return str(meta.get("model_name", meta.get("model", "policy")))


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


# ---------------------------------------------------------------------------- running


@dataclasses.dataclass
class RunningServer:
    server: PolicyServer
    url: str


@contextlib.contextmanager
def serve_in_thread(policy: Any, config: ServerConfig | None = None) -> Iterator[RunningServer]:
    """Run a server on a background event loop (tests, benchmarks, in-process eval); stops on exit."""
    server = PolicyServer(policy, config or ServerConfig(port=0))
    loop = asyncio.new_event_loop()
    ready: concurrent.futures.Future = concurrent.futures.Future()
    stop = loop.create_future()
    thread = threading.Thread(
        target=_run_loop,
        args=(loop, server.serve(on_ready=ready.set_result, stop=stop), ready),
        name="mobile-vla-server",
        daemon=True,
    )
    thread.start()
    port = ready.result(timeout=30)
    try:
        yield RunningServer(server, f"ws://{server.config.host}:{port}")
    finally:
        loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
        thread.join(timeout=10)


def _run_loop(loop: asyncio.AbstractEventLoop, coro, ready: concurrent.futures.Future) -> None:
    asyncio.set_event_loop(loop)
    try:
        loop.run_until_complete(coro)
    except BaseException as exc:  # bind failure etc.: surface it to the caller
        if not ready.done():
            ready.set_exception(exc)
    finally:
        loop.close()


def serve_forever(policy: Any, config: ServerConfig, on_ready: Callable[[int], Any] | None = None) -> None:
    """Blocking entry point for ``mobile-vla serve``; Ctrl+C stops it. ``on_ready(port)`` once bound."""
    asyncio.run(PolicyServer(policy, config).serve(on_ready=on_ready))
