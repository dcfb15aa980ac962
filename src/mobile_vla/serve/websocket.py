"""The websocket transport: connections, limits, TLS and draining around a :class:`Dispatcher`.

What this module enforces (flags of ``mobile-vla serve``, documented in ``docs/serving.md``):

- every message over ``max_message_bytes`` is refused by websockets itself before it is
  buffered, closing the connection with code 1009; with a token set, a connection that has not
  authenticated gets ``preauth_max_bytes`` instead (set before the upgrade completes, so
  nothing larger is parsed);
- ``max_connections`` open at once; the next is closed with code 1013 and a reason;
- ``auth_timeout_s``: with a token set, a connection that has not authenticated by then is
  closed (1008); ``idle_timeout_s``: no message for that long ends the session (code 1000);
- TLS (``wss://``) when ``tls_cert`` and ``tls_key`` are set;
- draining: when ``stop`` resolves, the server stops accepting connections, lets every
  in-flight step finish and send its reply, then closes each connection with code 1001
  (waiting at most ``drain_timeout_s``).
"""

from __future__ import annotations

import asyncio
import http
import logging
import ssl
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from mobile_vla.serve.dispatch import (
    AUTH_SCHEME,
    CLOSE_UNAUTHORIZED,
    Connection,
    Dispatcher,
    Refused,
    model_name,
)

log = logging.getLogger("mobile_vla.serve")

HEALTH_PATH = "/healthz"  # openpi's plain-HTTP health check
CLOSE_NORMAL = 1000
CLOSE_GOING_AWAY = 1001


def server_ssl_context(cert: str, key: str) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert, key)
    return context


class WebsocketTransport:
    """Serve a dispatcher's connections over websockets (``ws://`` or ``wss://``)."""

    def __init__(self, dispatcher: Dispatcher):
        self.dispatcher = dispatcher
        self.config = dispatcher.config
        self.port: int | None = None
        self._sockets: dict[int, ServerConnection] = {}

    async def serve(self, on_ready: Callable[[int], Any] | None = None, stop: asyncio.Future | None = None) -> None:
        """Run until ``stop`` resolves (forever when None), then drain. ``on_ready`` gets the bound port."""
        cfg = self.config
        tls = server_ssl_context(cfg.tls_cert, cfg.tls_key) if cfg.tls_cert else None
        self.dispatcher.start()
        try:
            async with serve(
                self._handle,
                cfg.host,
                cfg.port,
                compression=None,
                max_size=cfg.max_message_bytes,
                max_queue=4,  # frames buffered per connection while one is answered
                process_request=self._process_request,
                ssl=tls,
            ) as server:
                self.port = server.sockets[0].getsockname()[1]
                log.info(
                    "serving %s on %s://%s:%d (auth %s, cap %d bytes, %d worker(s), batch window %g ms)",
                    model_name(self.dispatcher.policy.metadata), cfg.scheme, cfg.host, self.port,
                    "on" if cfg.token else "off", cfg.max_message_bytes, cfg.workers, cfg.batch_window_ms,
                )
                if on_ready is not None:
                    on_ready(self.port)
                await (stop if stop is not None else asyncio.get_running_loop().create_future())
                await self._drain(server)
        finally:
            await self.dispatcher.stop()

    async def _drain(self, server) -> None:
        """Stop accepting; close idle connections now and busy ones once their reply is sent."""
        log.info("draining %d connection(s)", len(self._sockets))
        self.dispatcher.draining = True
        server.close(close_connections=False)
        for conn_id, ws in list(self._sockets.items()):
            conn = self.dispatcher.connections.get(conn_id)
            if conn is None or not conn.busy:
                asyncio.create_task(ws.close(CLOSE_GOING_AWAY, "server shutting down"))
        try:
            await asyncio.wait_for(asyncio.shield(server.wait_closed()), self.config.drain_timeout_s or None)
        except asyncio.TimeoutError:
            log.warning("drain timeout: closing %d connection(s) with steps in flight", len(self._sockets))
            await self.dispatcher.stop()  # their steps fail, so their handlers answer and return
            for ws in list(self._sockets.values()):
                asyncio.create_task(ws.close(CLOSE_GOING_AWAY, "server shutting down"))

    # ------------------------------------------------------------------ HTTP upgrade

    def _process_request(self, connection: ServerConnection, request):
        if request.path == HEALTH_PATH:
            return connection.respond(http.HTTPStatus.OK, "OK\n")
        if not self.config.token:
            return None
        header = request.headers.get("Authorization")
        if header is not None and not self.dispatcher.header_ok(header):
            log.warning("refused %s: wrong Authorization header", connection.remote_address)
            return connection.respond(
                http.HTTPStatus.UNAUTHORIZED, f"error: Authorization header must be '{AUTH_SCHEME} <token>'\n"
            )
        if header is None:
            # Until authenticated, frames over this are refused by the parser, unread (code 1009).
            connection.protocol.max_message_size = self.config.preauth_max_bytes
        return None

    # ------------------------------------------------------------------ connection

    async def _handle(self, ws: ServerConnection) -> None:
        try:
            conn = self.dispatcher.open(str(ws.remote_address), ws.request.headers.get("Authorization"))
        except Refused as exc:
            log.warning("refused %s: %s", ws.remote_address, exc.reason)
            await ws.close(exc.code, exc.reason)
            return
        self._sockets[conn.id] = ws
        loop = asyncio.get_running_loop()
        timer = None
        if not conn.authenticated and self.config.auth_timeout_s:
            timer = loop.call_later(self.config.auth_timeout_s, self._auth_expired, conn, ws)
        try:
            await ws.send(self.dispatcher.handshake(conn))
            await self._serve_messages(conn, ws)
        except ConnectionClosed:
            pass
        finally:
            if timer is not None:
                timer.cancel()
            self._sockets.pop(conn.id, None)
            self.dispatcher.close(conn)

    async def _serve_messages(self, conn: Connection, ws: ServerConnection) -> None:
        idle = self.config.idle_timeout_s or None
        while True:
            try:
                data = await asyncio.wait_for(ws.recv(), idle)
            except asyncio.TimeoutError:
                await ws.close(CLOSE_NORMAL, f"idle for {idle:g} s: session ended")
                return
            was_authenticated = conn.authenticated
            reply = await self.dispatcher.respond(conn, data)
            await ws.send(reply.payload)
            if reply.close_code is not None:
                await ws.close(reply.close_code, reply.close_reason)
                return
            if conn.authenticated and not was_authenticated:
                ws.protocol.max_message_size = self.config.max_message_bytes
            if self.dispatcher.draining:
                await ws.close(CLOSE_GOING_AWAY, "server shutting down")
                return

    def _auth_expired(self, conn: Connection, ws: ServerConnection) -> None:
        if not conn.authenticated:
            reason = f"authentication timeout: no token within {self.config.auth_timeout_s:g} s"
            log.info("connection %d: %s", conn.id, reason)
            asyncio.ensure_future(ws.close(CLOSE_UNAUTHORIZED, reason))
