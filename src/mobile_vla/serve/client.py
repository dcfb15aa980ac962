"""The robot-side client: a remote policy with the same interface as :class:`mobile_vla.Policy`.

    policy = RemotePolicy("ws://robot-server:8765", token=...)
    session = policy.new_session("go around the box on the left and reach the cup")
    chunk = session.step(frame_rgb)          # (N, 2) float32, m/s

Each session is its own websocket connection, so its history is isolated on the server
exactly as an in-process session is. :class:`PolicyClient` adds the chunk execution
strategies of ``eval-sim`` (the shared :class:`~mobile_vla.policy.executor.ChunkExecutor`)
and speaks the closed-loop controller protocol (``reset(instruction)``,
``act(rgb) -> [linear_x, linear_y, angular_z]``), so a simulator rollout or a robot loop can
use it unchanged.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, WebSocketException
from websockets.sync.client import ClientConnection, connect

from mobile_vla.errors import MobileVLAError
from mobile_vla.policy.controller import PolicyController
from mobile_vla.serve import protocol
from mobile_vla.serve.dispatch import AUTH_SCHEME

TOKEN_PLACES = ("header", "message")


class RemoteError(MobileVLAError):
    """The server answered an error, refused the connection, or stopped answering."""


def client_ssl_context(url: str, ca_file: str | None = None) -> ssl.SSLContext | None:
    """For ``wss://`` URLs: verify the server against ``ca_file`` (PEM) or the system's CAs."""
    if not url.startswith("wss://"):
        if ca_file:
            raise MobileVLAError(f"a CA file is for wss:// URLs, got {url}")
        return None
    try:
        return ssl.create_default_context(cafile=ca_file)
    except (OSError, ssl.SSLError) as exc:
        raise MobileVLAError(f"cannot read the CA file {ca_file}: {exc}") from None


class _Channel:
    """One websocket connection: handshake on open, then strict request → reply.

    A reply that does not come within ``timeout_s`` marks the channel ``broken`` and closes
    it: a late reply would otherwise be read as the answer to the next request.
    """

    def __init__(self, url: str, token: str | None, token_in: str, timeout_s: float, ca_file: str | None = None):
        if token_in not in TOKEN_PLACES:
            raise MobileVLAError(f"token_in must be one of {TOKEN_PLACES}, got {token_in!r}")
        self.url = url
        self.timeout_s = timeout_s
        self.broken = False
        headers = {"Authorization": f"{AUTH_SCHEME} {token}"} if token and token_in == "header" else None
        try:
            try:
                self._ws: ClientConnection = self._open(url, headers, ca_file)
            except ConnectionClosed:
                # The socket closed mid-handshake: under TLS a server's refusal (e.g. HTTP 401) can
                # race its close and be lost. A second try reads the refusal (or connects).
                self._ws = self._open(url, headers, ca_file)
        except InvalidStatus as exc:
            body = exc.response.body.decode("utf-8", "replace").strip() if exc.response.body else ""
            raise RemoteError(
                f"{url} refused the connection (HTTP {exc.response.status_code}): {body}"
            ) from None
        except InvalidHandshake as exc:
            raise RemoteError(f"{url} refused the connection: {exc}") from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise RemoteError(f"cannot connect to {url}: {exc}") from None
        self.handshake = self._receive()
        if self.handshake.get("type") != "handshake":
            raise RemoteError(f"{url}: expected a handshake, got {self.handshake!r}")
        if token and token_in == "message":
            self.request({"type": "auth", "token": token})

    def request(self, message: dict[str, Any]) -> dict[str, Any]:
        if self.broken:
            raise RemoteError(f"{self.url}: connection is closed after an earlier failure")
        try:
            self._ws.send(protocol.pack(message))
        except WebSocketException as exc:
            self._break()
            raise RemoteError(f"{self.url}: connection lost while sending: {exc}") from None
        reply = self._receive()
        if reply.get("type") == "error":
            raise RemoteError(f"{self.url}: server error: {reply.get('message')}")
        return reply

    def _open(self, url: str, headers: dict[str, str] | None, ca_file: str | None) -> ClientConnection:
        return connect(url, compression=None, max_size=None, additional_headers=headers, open_timeout=self.timeout_s,
                       ssl=client_ssl_context(url, ca_file))

    def _receive(self) -> dict[str, Any]:
        try:
            data = self._ws.recv(timeout=self.timeout_s)
        except TimeoutError:
            self._break()
            raise RemoteError(f"{self.url}: no reply within {self.timeout_s} s") from None
        except WebSocketException as exc:
            self._break()
            raise RemoteError(f"{self.url}: connection closed: {exc}") from None
        if isinstance(data, str):  # openpi convention: a text frame is an error
            raise RemoteError(f"{self.url}: server error: {data}")
        reply = protocol.unpack(data)
        if not isinstance(reply, dict):
            raise RemoteError(f"{self.url}: reply is not a map: {reply!r}")
        return reply

    def _break(self) -> None:
        self.broken = True
        self._ws.close()

    def close(self) -> None:
        self._ws.close()


class RemoteSession:
    """A server-side session: the same ``step`` / ``reset`` as an in-process session.

    After a timeout or a lost connection, the next call reconnects and restarts the session
    (the server-side history starts again from that frame).
    """

    def __init__(self, open_channel: Callable[[], _Channel], instruction: str):
        self._open = open_channel
        self._channel = open_channel()
        self.instruction = instruction
        self.last_timing: dict[str, float] = {}
        self.reset(instruction)

    def reset(self, instruction: str | None = None) -> None:
        """Clear the frame history (optionally switching instruction)."""
        if instruction is not None:
            self.instruction = instruction
        if self._channel.broken:
            self._channel = self._open()
        self._channel.request({"type": "reset", "instruction": self.instruction})

    def step(self, frame: np.ndarray, channel_order: str = "rgb") -> np.ndarray:
        """``frame``: ``(H, W, 3)`` uint8 of any size → chunk ``(N, 2)`` float32 in m/s."""
        frame = np.ascontiguousarray(frame)
        if self._channel.broken:
            self.reset()
        sent = time.perf_counter()
        reply = self._channel.request(
            {"type": "step", "image": frame, "channel_order": channel_order, "timestamp": time.time()}
        )
        actions = reply.get("actions")
        if not isinstance(actions, np.ndarray) or actions.ndim != 2:
            raise RemoteError(f"{self._channel.url}: reply has no (N, D) 'actions' array: {reply!r}")
        self.last_timing = {
            **reply.get("server_timing", {}),
            "round_trip_ms": (time.perf_counter() - sent) * 1e3,
        }
        return actions.astype(np.float32)  # copies: decoded arrays are read-only views

    def close(self) -> None:
        self._channel.close()


class RemotePolicy:
    """A policy served by ``mobile-vla serve``: ``metadata``, ``new_session``, ``health``.

    ``token_in`` picks where the token travels: ``"header"`` (``Authorization: Api-Key``,
    as openpi's client does) or ``"message"`` (an ``auth`` message first). ``wss://`` URLs
    verify the server's certificate against ``ca_file`` (PEM) or the system's trusted CAs.
    """

    processor = None  # the processor stays on the server

    def __init__(self, url: str, token: str | None = None, token_in: str = "header", timeout_s: float = 10.0,
                 ca_file: str | None = None):
        self.url, self._token, self._token_in, self.timeout_s = url, token, token_in, timeout_s
        self._ca_file = ca_file
        self._control = self._open()
        self.metadata: dict[str, Any] = self._control.handshake
        self._sessions: list[RemoteSession] = []

    def _open(self) -> _Channel:
        return _Channel(self.url, self._token, self._token_in, self.timeout_s, self._ca_file)

    def new_session(self, instruction: str) -> RemoteSession:
        session = RemoteSession(self._open, instruction)
        self._sessions.append(session)
        return session

    def health(self) -> dict[str, Any]:
        return self._control.request({"type": "health"})

    def close(self) -> None:
        for session in self._sessions:
            session.close()
        self._sessions.clear()
        self._control.close()

    def __enter__(self) -> RemotePolicy:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# The robot-side name of the shared closed-loop controller (chunk execution like ``eval-sim``).
PolicyClient = PolicyController
