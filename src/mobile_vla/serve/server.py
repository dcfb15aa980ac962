"""The policy server: a :class:`Dispatcher` (sessions, dispatch, batching) behind the websocket transport.

Each connection owns its session (instruction + frame history); nothing is shared between
clients except the read-only policy. Inference runs on ``workers`` threads, steps of
different sessions batched (``serve/batching.py``), while the event loop keeps accepting
connections and answering health checks and bad messages.

Layers: ``protocol`` (bytes ↔ messages, pure), ``dispatch`` (connections, auth, sessions,
replies), ``batching`` (the bounded step queue), ``websocket`` (the transport and its limits).
This module assembles them and runs them: in a background thread (tests, benchmarks,
in-process eval) or in the foreground until SIGTERM / Ctrl+C, draining open sessions.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

from mobile_vla.serve.config import ServerConfig
from mobile_vla.serve.dispatch import AUTH_SCHEME, Dispatcher
from mobile_vla.serve.websocket import HEALTH_PATH, WebsocketTransport

__all__ = ["AUTH_SCHEME", "HEALTH_PATH", "PolicyServer", "RunningServer", "ServerConfig", "host_policy",
           "serve_forever", "serve_in_thread"]


class PolicyServer:
    """Serve ``policy`` (anything with ``metadata`` and ``new_session``) over websockets + msgpack."""

    def __init__(self, policy: Any, config: ServerConfig | None = None):
        self.dispatcher = Dispatcher(policy, config)
        self.config = self.dispatcher.config
        self.transport = WebsocketTransport(self.dispatcher)

    @property
    def port(self) -> int | None:
        return self.transport.port

    async def serve(self, on_ready: Callable[[int], Any] | None = None, stop: asyncio.Future | None = None) -> None:
        """Run until ``stop`` resolves (forever when None), then drain. ``on_ready`` receives the bound port."""
        await self.transport.serve(on_ready, stop)

    def health(self) -> dict[str, Any]:
        return self.dispatcher.health()


@dataclasses.dataclass
class RunningServer:
    server: PolicyServer
    url: str


@contextlib.contextmanager
def serve_in_thread(policy: Any, config: ServerConfig | None = None) -> Iterator[RunningServer]:
    """Run a server on a background event loop (tests, benchmarks, in-process eval); drains on exit."""
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
    host = server.config.host
    try:
        yield RunningServer(server, f"{server.config.scheme}://{host}:{port}")
    finally:
        loop.call_soon_threadsafe(lambda: stop.done() or stop.set_result(None))
        thread.join(timeout=server.config.drain_timeout_s + 10)


TERM_GRACE_MARGIN_S = 5.0  # the inference process's SIGTERM grace beyond the drain timeout


def host_policy(load: Callable[[], Any], config: ServerConfig) -> Any:
    """The policy ``load()`` returns, where ``config`` says: a child process of its own
    (:class:`~mobile_vla.serve.inference_process.ProcessPolicy`, whose ``close()`` stops it) or
    this one (whose torch threads :func:`serve_forever` sets). ``load`` must be picklable for the
    former (a module-level function or a ``functools.partial`` of one)."""
    if config.inference_process:
        from mobile_vla.serve.inference_process import ProcessPolicy

        # A SIGTERM to the whole process group reaches the child too: it outlives the drain.
        return ProcessPolicy(load, torch_threads=config.torch_threads,
                             term_grace_s=config.drain_timeout_s + TERM_GRACE_MARGIN_S)
    return load()


def set_torch_threads(threads: int) -> None:
    """Give torch ``threads`` intra-op threads if the policy imported it (0: leave torch's default)."""
    torch = sys.modules.get("torch")
    if threads and torch is not None:
        torch.set_num_threads(threads)


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
    """Blocking entry point for ``mobile-vla serve``: SIGTERM or Ctrl+C drains open sessions and returns.

    The process is the server's: torch (when the policy uses it) gets ``config.torch_threads``
    intra-op threads. ``serve_in_thread`` leaves its host process's torch settings alone.
    """
    set_torch_threads(config.torch_threads)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        stop = loop.create_future()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
        await PolicyServer(policy, config).serve(on_ready=on_ready, stop=stop)

    asyncio.run(main())
