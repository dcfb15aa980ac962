"""Sessions and dispatch: what the server does with a message, whatever carried it.

A transport (``serve/websocket.py`` today) hands each connection's messages, as received
bytes, to :class:`Dispatcher` and sends back the :class:`Reply`. The dispatcher owns the
connections' state (authentication, the session: instruction + frame history), turns every
failure into an error reply, and schedules steps on the :class:`StepScheduler`. A second
transport is a new module that calls ``open`` / ``respond`` / ``close``.

Authentication (when a token is set), see ``docs/protocol.md``: the transport passes the
``Authorization: Api-Key <token>`` header it received (if any) to :meth:`Dispatcher.open`;
without it the first message must carry the token, otherwise the reply is an error and the
connection closes (code 1008).
"""

from __future__ import annotations

import dataclasses
import hmac
import itertools
import logging
import time
from typing import Any

from mobile_vla.errors import MobileVLAError
from mobile_vla.serve import protocol
from mobile_vla.serve.batching import Overloaded, StepScheduler
from mobile_vla.serve.config import ServerConfig
from mobile_vla.serve.protocol import ProtocolError

log = logging.getLogger("mobile_vla.serve")

AUTH_SCHEME = "Api-Key"
CLOSE_UNAUTHORIZED = 1008
CLOSE_TRY_AGAIN_LATER = 1013
STAGES = ("decode", "queue", "preprocess", "model", "encode")  # of a step, in order


class Refused(MobileVLAError):
    """A connection the server will not take: close it with ``code`` and ``reason``."""

    def __init__(self, code: int, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


@dataclasses.dataclass
class Connection:
    """Per-connection state: the session lives and dies with the connection."""

    id: int
    peer: str
    authenticated: bool
    first_message: bool = True
    session: Any = None
    prompt: str | None = None  # last openpi-style prompt, to reset when it changes
    busy: bool = False  # a message is being answered


@dataclasses.dataclass
class Reply:
    payload: bytes | str  # a packed map, or a text frame for an openpi-style failure
    close_code: int | None = None  # close the connection after sending
    close_reason: str = ""


class Dispatcher:
    """Serve ``policy`` (``metadata``, ``new_session``, optionally ``step_batch``) to connections."""

    def __init__(self, policy: Any, config: ServerConfig | None = None):
        self.policy = policy
        self.config = (config or ServerConfig()).validate()
        cfg = self.config
        self.scheduler = StepScheduler(policy, cfg.workers, cfg.max_queue, cfg.batch_window_ms / 1e3,
                                       cfg.max_batch)
        self.connections: dict[int, Connection] = {}
        self.draining = False
        self._ids = itertools.count(1)
        self._steps = 0
        self._stage_totals = dict.fromkeys(STAGES, 0.0)  # ms summed over steps served
        self._started = time.monotonic()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Call on the event loop that will run :meth:`respond`."""
        self.scheduler.start()

    async def stop(self) -> None:
        await self.scheduler.stop()

    # ------------------------------------------------------------------ connections

    def open(self, peer: str, authorization: str | None = None) -> Connection:
        """Register a connection (``authorization``: its ``Authorization`` header); raises :class:`Refused`."""
        if self.draining:
            raise Refused(1001, "server shutting down")
        if len(self.connections) >= self.config.max_connections:
            raise Refused(
                CLOSE_TRY_AGAIN_LATER,
                f"server full: {self.config.max_connections} connections (--max-connections); retry later",
            )
        conn = Connection(next(self._ids), peer, self.config.token is None or self.header_ok(authorization))
        self.connections[conn.id] = conn
        log.info("connection %d from %s", conn.id, peer)
        return conn

    def close(self, conn: Connection) -> None:
        self.connections.pop(conn.id, None)
        if conn.session is not None:
            self.scheduler.forget(conn.session)
            end = getattr(conn.session, "close", None)  # a session held elsewhere (serve/inference_process.py)
            if end is not None:
                end()
        log.info("connection %d closed", conn.id)

    def header_ok(self, header: str | None) -> bool:
        if not header or not self.config.token:
            return False
        scheme, _, key = header.partition(" ")
        return scheme == AUTH_SCHEME and _same(key.strip(), self.config.token)

    def handshake(self, conn: Connection) -> bytes:
        """The metadata map sent on connect (also what openpi's ``get_server_metadata`` returns).

        The documented keys are always present; the policy's other metadata rides along.
        """
        meta = self.policy.metadata
        return protocol.pack({
            "type": "handshake",
            "protocol": protocol.PROTOCOL_NAME,
            "protocol_version": protocol.PROTOCOL_VERSION,
            **meta,
            "model_name": model_name(meta),
            "action_names": list(meta["action_names"]),
            "action_units": list(meta.get("action_units", meta.get("units", []))),
            "chunk_size": int(meta["chunk_size"]),
            "window_size": int(meta["window_size"]),
            "image_size": int(meta["image_size"]),
            "instruction_format": str(meta.get("instruction_format", "free text")),
            "channel_orders": list(protocol.CHANNEL_ORDERS),
            "max_message_bytes": self.config.max_message_bytes,
            "auth_required": not conn.authenticated,
        })

    # ------------------------------------------------------------------ messages

    async def respond(self, conn: Connection, data: bytes | str) -> Reply:
        """Answer one message. Never raises for anything the message contains."""
        first, conn.first_message = conn.first_message, False
        conn.busy = True
        openpi_style = False
        try:
            started = time.perf_counter()
            message = protocol.parse_message(data, self.config.max_message_bytes)
            decode_ms = (time.perf_counter() - started) * 1e3
            openpi_style = isinstance(message, protocol.Observation)
            if not conn.authenticated:
                self._authenticate(conn, message, first)
                if isinstance(message, protocol.Auth):
                    return Reply(protocol.pack({"type": "auth", "ok": True}))
            return Reply(await self._dispatch(conn, message, decode_ms))
        except ProtocolError as exc:
            log.info("connection %d: bad message: %s", conn.id, exc)
            text = str(exc)
            close = CLOSE_UNAUTHORIZED if not conn.authenticated else None
            reason = "unauthorized" if close else ""
            payload = text if exc.openpi_style else protocol.pack(protocol.error_reply(text))
            return Reply(payload, close, reason)
        except Overloaded as exc:
            reply = {**protocol.error_reply(str(exc)), "code": "overloaded"}
            return Reply(str(exc) if openpi_style else protocol.pack(reply))
        except Exception as exc:  # a bug of ours: answer it, keep the connection, log the traceback
            log.exception("connection %d: failed to answer a message", conn.id)
            text = f"internal error: {type(exc).__name__}: {exc}"
            return Reply(text if openpi_style else protocol.pack(protocol.error_reply(text)))
        finally:
            conn.busy = False

    def _authenticate(self, conn: Connection, message: protocol.ClientMessage, first: bool) -> None:
        if first and message.token is not None and _same(message.token, self.config.token):
            conn.authenticated = True
            return
        reason = "wrong token" if message.token is not None else "no token"
        raise ProtocolError(
            f"unauthorized ({reason}): send 'Authorization: {AUTH_SCHEME} <token>' on connect, or the token "
            "in the first message ({'type': 'auth', 'token': ...} or a 'token' field)",
            openpi_style=isinstance(message, protocol.Observation),
        )

    async def _dispatch(self, conn: Connection, message: protocol.ClientMessage, decode_ms: float) -> bytes:
        if isinstance(message, protocol.Health):
            return protocol.pack(self.health())
        if isinstance(message, protocol.Auth):
            return protocol.pack({"type": "auth", "ok": True})
        if isinstance(message, protocol.Reset):
            await self._reset(conn, message.instruction)
            conn.prompt = None
            return protocol.pack({"type": "reset", "ok": True, "instruction": message.instruction})
        if isinstance(message, protocol.Observation):
            try:
                if message.prompt is not None and message.prompt != conn.prompt:
                    await self._reset(conn, message.prompt)
                    conn.prompt = message.prompt
                return await self._step(conn, message.image, message.channel_order, None, decode_ms)
            except ProtocolError as exc:
                raise ProtocolError(str(exc), openpi_style=True) from None
        return await self._step(conn, message.image, message.channel_order, message.timestamp, decode_ms)

    async def _reset(self, conn: Connection, instruction: str) -> None:
        def reset() -> None:
            if conn.session is None:
                conn.session = self.policy.new_session(instruction)
            else:
                conn.session.reset(instruction=instruction)

        await _policy_call(self.scheduler.call(reset))

    async def _step(self, conn: Connection, image, order: str, timestamp: float | None, decode_ms: float) -> bytes:
        if conn.session is None:
            raise ProtocolError(
                "step before reset: send {'type': 'reset', 'instruction': ...} first "
                "(or an openpi-style observation with a 'prompt')"
            )
        result = await _policy_call(self.scheduler.step(conn.session, image, order))
        timing = {"decode_ms": decode_ms, **result.timing}
        started = time.perf_counter()
        reply = protocol.pack(protocol.actions_reply(result.actions, timing, timestamp))
        timing["encode_ms"] = (time.perf_counter() - started) * 1e3
        self._count(timing)
        return reply

    def _count(self, timing: dict[str, float]) -> None:
        self._steps += 1
        for stage in STAGES:
            self._stage_totals[stage] += timing.get(f"{stage}_ms", 0.0)

    def health(self) -> dict[str, Any]:
        return {
            "type": "health",
            "status": "draining" if self.draining else "ok",
            "model_name": model_name(self.policy.metadata),
            "connections": len(self.connections),
            "sessions": sum(c.session is not None for c in self.connections.values()),
            "steps_served": self._steps,
            "queued": self.scheduler.queued,
            "computing": self.scheduler.computing,
            "stage_totals_ms": dict(self._stage_totals),
            "uptime_s": time.monotonic() - self._started,
        }


async def _policy_call(awaitable):
    """Await a policy call; what it rejects becomes a ProtocolError carrying its message."""
    try:
        return await awaitable
    except Overloaded:
        raise
    except (MobileVLAError, ValueError) as exc:
        raise ProtocolError(f"policy rejected the input: {exc}") from None
    except Exception as exc:  # keep the connection: report, log the traceback
        log.error("inference failed", exc_info=exc)
        raise ProtocolError(f"internal error: {type(exc).__name__}: {exc}") from None


def model_name(meta: dict[str, Any]) -> str:
    return str(meta.get("model_name", meta.get("model", "policy")))


def _same(given: str, expected: str | None) -> bool:
    return expected is not None and hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
