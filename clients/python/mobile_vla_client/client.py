"""One connection to the policy server = one robot session (instruction + the server's frame history)."""

from __future__ import annotations

import inspect
import ssl
import time
from typing import Any

import numpy as np
from websockets.exceptions import ConnectionClosed, InvalidHandshake, WebSocketException
from websockets.sync.client import connect

from mobile_vla_client.msgpack_numpy import pack, unpack

AUTH_SCHEME = "Api-Key"
# websockets 14 renamed the sync client's TLS argument from ssl_context to ssl.
_SSL_ARG = "ssl" if "ssl" in inspect.signature(connect).parameters else "ssl_context"


class RemoteError(Exception):
    """The server answered an error, refused or closed the connection, or did not answer in time.

    ``code`` is the error reply's ``code`` when it has one (``"overloaded"``: retry later).
    """

    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


def ssl_context(url: str, ca_file: str | None = None) -> ssl.SSLContext | None:
    """``wss://``: verify the server against ``ca_file`` (PEM) or the system's trusted CAs."""
    if not url.startswith("wss://"):
        if ca_file:
            raise ValueError(f"a CA file is for wss:// URLs, got {url}")
        return None
    return ssl.create_default_context(cafile=ca_file)


class PolicyClient:
    """``reset(instruction)``, ``step(frame) -> (N, 2)``, openpi-style ``infer(obs)``, ``health()``.

    Strict request → reply on one websocket. After a timeout or a lost connection the client is
    closed (a late reply must never be read as the answer to the next request): make a new one.
    """

    def __init__(self, url: str, token: str | None = None, ca_file: str | None = None,
                 timeout_s: float = 10.0):
        self.url = url
        self.timeout_s = timeout_s
        self.last_timing: dict[str, float] = {}
        headers = {"Authorization": f"{AUTH_SCHEME} {token}"} if token else None
        options = {_SSL_ARG: ssl_context(url, ca_file)}
        def open_connection():
            return connect(url, compression=None, max_size=None, additional_headers=headers,
                           open_timeout=timeout_s, **options)

        try:
            try:
                self._ws = open_connection()
            except ConnectionClosed:
                # Closed mid-handshake: under TLS a server's refusal (e.g. HTTP 401) can race its
                # close and be lost. A second try reads the refusal (or connects).
                self._ws = open_connection()
        except InvalidHandshake as exc:
            raise RemoteError(f"{url} refused the connection: {exc}") from None
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise RemoteError(f"cannot connect to {url}: {exc}") from None
        self._broken = False
        self.metadata: dict[str, Any] = self._receive()
        if self.metadata.get("type") != "handshake":
            raise RemoteError(f"{url}: expected a handshake, got {self.metadata!r}")

    # ------------------------------------------------------------------ messages

    def reset(self, instruction: str) -> None:
        """Start (or restart, clearing the history) this connection's session under ``instruction``."""
        self._request({"type": "reset", "instruction": instruction})

    def step(self, frame: np.ndarray, channel_order: str = "rgb") -> np.ndarray:
        """``frame``: ``(H, W, 3)`` uint8, any size → chunk ``(N, 2)`` float32 in m/s."""
        reply = self._request({"type": "step", "image": np.ascontiguousarray(frame, dtype=np.uint8),
                               "channel_order": channel_order})
        return self._actions(reply)

    def infer(self, obs: dict[str, Any]) -> dict[str, Any]:
        """openpi-style: ``obs`` is a map without ``type`` (``image``, optional ``prompt``) → the reply map."""
        reply = self._request(dict(obs))
        reply["actions"] = self._actions(reply)
        return reply

    def health(self) -> dict[str, Any]:
        return self._request({"type": "health"})

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> PolicyClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _actions(self, reply: dict[str, Any]) -> np.ndarray:
        actions = reply.get("actions")
        if not isinstance(actions, np.ndarray) or actions.ndim != 2:
            raise RemoteError(f"{self.url}: reply has no (N, D) 'actions' array: {reply!r}")
        return actions.astype(np.float32)  # a copy: decoded arrays are read-only views

    def _request(self, message: dict[str, Any]) -> dict[str, Any]:
        if self._broken:
            raise RemoteError(f"{self.url}: connection is closed after an earlier failure")
        sent = time.perf_counter()
        try:
            self._ws.send(pack(message))
        except WebSocketException as exc:
            self._break()
            raise RemoteError(f"{self.url}: connection lost while sending: {exc}") from None
        reply = self._receive()
        if reply.get("type") == "error":
            raise RemoteError("{}: server error: {}".format(self.url, reply.get("message")), reply.get("code"))
        timing = reply.get("server_timing")
        if isinstance(timing, dict):
            self.last_timing = dict(timing, round_trip_ms=(time.perf_counter() - sent) * 1e3)
        return reply

    def _receive(self) -> dict[str, Any]:
        try:
            data = self._ws.recv(timeout=self.timeout_s)
        except TimeoutError:
            self._break()
            raise RemoteError(f"{self.url}: no reply within {self.timeout_s} s") from None
        except ConnectionClosed as exc:
            self._break()
            raise RemoteError(f"{self.url}: connection closed: {exc}") from None
        if isinstance(data, str):  # openpi convention: a text frame is an error
            code = "overloaded" if data.startswith("overloaded:") else None
            raise RemoteError(f"{self.url}: server error: {data}", code)
        reply = unpack(data)
        if not isinstance(reply, dict):
            raise RemoteError(f"{self.url}: reply is not a map: {reply!r}")
        return reply

    def _break(self) -> None:
        self._broken = True
        self._ws.close()
