"""The policy in a process of its own, so that the model never waits for the server's GIL.

In one process the inference thread, the event loop (decoding, websocket frames) and the
frame-resizing threads share one interpreter lock: between torch's operations the model waits
for it, and on two cores a third of the machine idled with eight robots flat out
(``docs/benchmarks.md``). :class:`ProcessPolicy` loads the policy in a child process and
satisfies the same contract (:mod:`mobile_vla.policy.contract`) as a proxy: ``new_session``,
``step_batch`` and the sessions' ``reset`` / ``step`` send their arguments through a pipe, the
child runs the real policy on the real sessions (each keeps its own history there) and sends
back the chunks. Frames are resized in the server process on arrival (the policy's processor is
shipped back once at start), so what crosses the pipe is ``(S, S, 3)`` uint8, not camera
frames.

One request is in flight at a time (a lock), which is what one inference worker does anyway;
with ``--workers N`` the other workers gather their next batch meanwhile. A request also
carries the sessions ended since the last one, which the child then forgets.

Errors the policy raises for bad input (``MobileVLAError``, ``ValueError``) come back as the
same types with the same message, so the server answers them as before; anything else arrives
as a ``RuntimeError`` naming the child's exception. If the child dies, every call raises
:class:`InferenceProcessDied` (the server answers internal errors and ``health`` keeps working).
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from mobile_vla.errors import MobileVLAError

log = logging.getLogger("mobile_vla.serve")

START_TIMEOUT_S = 600.0  # loading a full-size Kosmos-2 from disk can take minutes


class InferenceProcessDied(RuntimeError):
    """The child process that holds the policy is gone."""


class ProcessPolicy:
    """``factory()`` (a picklable callable returning a policy) run in a spawned child process.

    ``torch_threads``: intra-op threads of the child's torch (0: torch's default).
    ``term_grace_s``: a SIGTERM the child receives (systemd and ``kill -- -PGID`` signal the whole
    process group) ends it only this many seconds later, so that the server can drain its steps
    and stop it first; ``None``: SIGTERM ends it at once.
    """

    def __init__(self, factory: Callable[[], Any], torch_threads: int = 1, term_grace_s: float | None = None):
        ctx = multiprocessing.get_context("spawn")  # never fork a process that holds threads or CUDA
        self._conn, child_end = ctx.Pipe()
        self._process = ctx.Process(target=_child_main, args=(factory, child_end, torch_threads, term_grace_s),
                                    name="mobile-vla-inference", daemon=True)
        self._process.start()
        child_end.close()
        self._lock = threading.Lock()
        self._ids = 0
        self._ended: list[int] = []  # sessions to forget, sent with the next request
        if not self._conn.poll(START_TIMEOUT_S):
            self.close()
            raise InferenceProcessDied(f"the inference process did not load the policy in {START_TIMEOUT_S:.0f} s")
        self.metadata, self.processor = self._receive()

    # ------------------------------------------------------------------ the policy contract

    @property
    def window_size(self) -> int:
        return int(self.metadata["window_size"])

    @property
    def chunk_size(self) -> int:
        return int(self.metadata["chunk_size"])

    def new_session(self, instruction: str) -> ProcessSession:
        with self._lock:
            self._ids += 1
            session = ProcessSession(self, self._ids)
        self._request("new", session.id, instruction)
        return session

    def step_batch(self, sessions: list[ProcessSession], frames: list[np.ndarray], channel_orders: list[str],
                   timing: dict[str, float] | None = None) -> list[np.ndarray]:
        """As the child policy's ``step_batch`` (one ``step`` per session if it has none)."""
        chunks, child_timing = self._request("step_batch", [s.id for s in sessions], frames, channel_orders)
        if timing is not None:
            timing.update(child_timing)
        return chunks

    # ------------------------------------------------------------------ the child

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def alive(self) -> bool:
        return self._process.is_alive()

    def close(self) -> None:
        """Stop the child (its sessions end with it)."""
        try:
            with self._lock:
                self._conn.send(("stop", None, (), []))
        except (OSError, ValueError):
            pass
        self._process.join(timeout=10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(timeout=10)
        self._conn.close()

    def _request(self, op: str, target: Any, *args: Any) -> Any:
        with self._lock:
            ended = []
            while self._ended:  # pop is atomic: an id ended meanwhile stays for the next request
                ended.append(self._ended.pop())
            try:
                self._conn.send((op, target, args, ended))
            except (OSError, ValueError):
                raise self._died() from None
            return self._receive()

    def _receive(self) -> Any:
        try:
            status, value = self._conn.recv()
        except (EOFError, OSError):
            raise self._died() from None
        if status == "ok":
            return value
        kind, message, trace = value
        if kind == "MobileVLAError":
            raise MobileVLAError(message)
        if kind == "ValueError":
            raise ValueError(message)
        log.error("inference process: %s: %s\n%s", kind, message, trace)  # the traceback stays in the log
        raise RuntimeError(f"inference process: {kind}: {message}")

    def _died(self) -> InferenceProcessDied:
        self._process.join(timeout=1)
        return InferenceProcessDied(f"the inference process exited (code {self._process.exitcode})")

    def _end(self, session_id: int) -> None:
        self._ended.append(session_id)  # list.append is atomic: no lock, never blocks the event loop


class ProcessSession:
    """A session whose history lives in the child; ``close()`` lets the child forget it."""

    def __init__(self, policy: ProcessPolicy, session_id: int):
        self.policy, self.id = policy, session_id
        self._closed = False

    def reset(self, instruction: str | None = None) -> None:
        self.policy._request("reset", self.id, instruction)

    def step(self, frame: np.ndarray, channel_order: str = "rgb") -> np.ndarray:
        return self.policy.step_batch([self], [frame], [channel_order])[0]

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.policy._end(self.id)


# ---------------------------------------------------------------------- child side

def _child_main(factory: Callable[[], Any], conn, torch_threads: int, term_grace_s: float | None) -> None:
    # The server process decides when to stop (after draining): Ctrl+C, which the terminal sends
    # to the whole process group, must not kill the model under the steps still in flight. The
    # child exits on "stop" or when the pipe closes (the server process is gone). A SIGTERM only
    # arms an alarm (default action: exit) term_grace_s later, so a group SIGTERM drains like
    # Ctrl+C while multiprocessing's exit handler, which terminates daemonic children with
    # SIGTERM, still ends a child nobody stopped.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if term_grace_s is not None:
        def exit_later(signum, frame) -> None:
            if signal.getitimer(signal.ITIMER_REAL)[0] == 0.0:  # a second SIGTERM does not postpone it
                signal.setitimer(signal.ITIMER_REAL, max(term_grace_s, 0.1))

        signal.signal(signal.SIGTERM, exit_later)
    try:
        if torch_threads:
            import torch

            torch.set_num_threads(torch_threads)
        policy = factory()
        processor = getattr(policy, "processor", None)
        resize = getattr(processor, "resize_frame", None)
        conn.send(("ok", (dict(policy.metadata), processor if resize is not None else None)))
    except BaseException as exc:
        conn.send(("error", _describe(exc)))
        return
    sessions: dict[int, Any] = {}
    while True:
        try:
            op, target, args, ended = conn.recv()
        except (EOFError, OSError):
            return
        if op == "stop":
            return
        for session_id in ended:
            sessions.pop(session_id, None)
        try:
            conn.send(("ok", _apply(policy, sessions, op, target, args)))
        except BaseException as exc:
            conn.send(("error", _describe(exc)))


def _apply(policy: Any, sessions: dict[int, Any], op: str, target: Any, args: tuple) -> Any:
    def session(session_id: int) -> Any:
        if session_id not in sessions:
            raise MobileVLAError(f"session {session_id} has ended (closed) in the inference process")
        return sessions[session_id]

    if op == "new":
        sessions[target] = policy.new_session(*args)
        return None
    if op == "reset":
        session(target).reset(instruction=args[0])
        return None
    if op == "step_batch":
        frames, orders = args
        batch = [session(i) for i in target]
        timing: dict[str, float] = {}
        if hasattr(policy, "step_batch"):
            chunks = policy.step_batch(batch, frames, orders, timing=timing)
        else:
            chunks = [s.step(f, channel_order=o) for s, f, o in zip(batch, frames, orders)]
        return [np.asarray(c, dtype=np.float32) for c in chunks], timing
    raise MobileVLAError(f"inference process: unknown request {op!r}")


def _describe(exc: BaseException) -> tuple[str, str, str]:
    kind = ("MobileVLAError" if isinstance(exc, MobileVLAError)
            else "ValueError" if isinstance(exc, ValueError) else type(exc).__name__)
    return kind, str(exc), traceback.format_exc()
