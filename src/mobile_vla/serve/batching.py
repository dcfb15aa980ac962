"""Step scheduling: a bounded queue of session steps, run in batches across sessions.

Steps of different sessions run as one forward pass (the policy's ``step_batch``; each session
keeps its own history). When an inference thread is free, a batch takes every queued step and
gathers more only while there is reason to, until ``window_s`` after its first step arrived:

- steps already received and still being resized are waited for (they arrive within a resize,
  sooner than a second batch would run), even past the window;
- otherwise only while some session is *expected soon*: it has no step in flight and its usual
  pause between a reply and its next step (a running mean) ends before the window does. A
  robot stepping flat out is expected again right after its reply, one at 5 Hz not until its
  next tick.

So a lone robot's step starts at once (nothing else is expected, even if other robots are
connected between their ticks), and steps queued while a batch computed start as soon as it
ends (their window has passed), which keeps the model busy. ``window_s == 0`` turns batching
off (every step runs alone).

``workers`` inference threads each run their own batches: while one batch computes, the next
gathers; with one worker (the default) model calls never overlap. A step that finds
``max_queue`` steps already waiting is refused with :class:`Overloaded` instead of queueing.

A policy with a ``processor.resize_frame`` (the torch policy's processor) gets each frame
resized on arrival by ``PREPARE_THREADS`` threads of their own, while a batch computes and in
parallel with the other arrivals, instead of one after the other inside the batch. Its step
then sees the resized RGB frame, which the same ``resize_frame`` leaves unchanged, so the
input is identical.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import time
from typing import Any

import numpy as np

from mobile_vla.errors import MobileVLAError

ACTIVE_HORIZON_S = 2.0  # a session that has not stepped for this long is not expected at all
PAUSE_SMOOTHING = 0.3  # weight of the latest reply-to-next-step pause in a session's running mean
PREPARE_THREADS = 2  # PIL releases the GIL while resizing


class Overloaded(MobileVLAError):
    """The request queue is full: the server answers ``overloaded`` rather than queue without limit."""


@dataclasses.dataclass
class StepResult:
    actions: np.ndarray  # (N, D) float32, physical units
    timing: dict[str, float]  # queue_ms, preprocess_ms, model_ms, infer_ms, batch_size


@dataclasses.dataclass
class _Pace:
    """When a session's next step is due: its last step, its last reply, its usual pause between them."""

    stepped: float  # time.perf_counter() when its last step arrived
    replied: float | None = None  # when its last step's result was ready
    pause_s: float | None = None  # running mean of reply -> next step
    in_flight: bool = False  # a step of it is being resized, queued or computed

    def due_within(self, now: float, horizon_s: float) -> bool:
        if self.in_flight or now - self.stepped > ACTIVE_HORIZON_S:
            return False
        if self.replied is None or self.pause_s is None:
            return True  # no pace known yet: expect it, as a new robot steps again at once
        return self.replied + self.pause_s <= now + horizon_s


@dataclasses.dataclass
class _Request:
    session: Any
    image: np.ndarray  # (H, W, 3) uint8
    order: str
    future: asyncio.Future
    queued: float  # time.perf_counter() on arrival
    pace: _Pace


class StepScheduler:
    """Owns the inference threads; ``await step(...)`` from the event loop, ``start()`` first."""

    def __init__(self, policy: Any, workers: int = 1, max_queue: int = 32, window_s: float = 0.005,
                 max_batch: int = 16):
        self.policy = policy
        self.workers, self.max_queue, self.window_s = workers, max_queue, window_s
        self.max_batch = max_batch if window_s > 0 else 1
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="mobile-vla-infer")
        self._resize = getattr(getattr(policy, "processor", None), "resize_frame", None)
        self._prepare_pool = (
            concurrent.futures.ThreadPoolExecutor(PREPARE_THREADS, thread_name_prefix="mobile-vla-prepare")
            if self._resize is not None else None
        )
        self._pending: collections.deque[_Request] = collections.deque()
        self._paces: dict[int, _Pace] = {}  # id(session) -> when its next step is due
        self._computing = 0  # steps inside a running batch
        self._preparing = 0  # steps being resized: they join the queue in a moment
        self._arrived: asyncio.Event | None = None
        self._gathering: asyncio.Lock | None = None
        self._runners: list[asyncio.Task] = []

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Start the batch runners on the running event loop."""
        self._arrived, self._gathering = asyncio.Event(), asyncio.Lock()
        self._runners = [asyncio.create_task(self._run()) for _ in range(self.workers)]

    async def stop(self) -> None:
        """Fail whatever is still queued or computing, and let the threads go."""
        for task in self._runners:
            task.cancel()
        await asyncio.gather(*self._runners, return_exceptions=True)
        while self._pending:
            request = self._pending.popleft()
            if not request.future.done():
                request.future.set_exception(MobileVLAError("server shutting down"))
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._prepare_pool is not None:
            self._prepare_pool.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ requests

    @property
    def queued(self) -> int:
        return len(self._pending)

    @property
    def computing(self) -> int:
        return self._computing

    async def call(self, fn, *args) -> Any:
        """Run ``fn(*args)`` on an inference thread (resets: they call the model too)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def step(self, session: Any, image: np.ndarray, order: str) -> StepResult:
        """Queue one step of ``session``; raises :class:`Overloaded` when ``max_queue`` are waiting."""
        if len(self._pending) >= self.max_queue:
            raise Overloaded(
                f"overloaded: {len(self._pending)} steps are already waiting for inference; retry later"
            )
        now = time.perf_counter()
        pace = self._paces.get(id(session))
        if pace is None:
            pace = self._paces[id(session)] = _Pace(now)
        elif pace.replied is not None:
            pause = now - pace.replied
            pace.pause_s = pause if pace.pause_s is None else pace.pause_s + PAUSE_SMOOTHING * (pause - pace.pause_s)
        pace.stepped, pace.in_flight = now, True
        try:
            return await self._prepare_and_queue(session, image, order, pace)
        finally:
            pace.in_flight = False  # (done already when its batch settled)

    async def _prepare_and_queue(self, session: Any, image: np.ndarray, order: str, pace: _Pace) -> StepResult:
        loop = asyncio.get_running_loop()
        prepare_ms = 0.0
        if self._prepare_pool is not None:
            started = time.perf_counter()
            self._preparing += 1
            try:
                image = await loop.run_in_executor(self._prepare_pool, self._resize, image, order)
            finally:
                self._preparing -= 1
                self._arrived.set()  # a gathering batch waiting for this step re-checks
            order, prepare_ms = "rgb", (time.perf_counter() - started) * 1e3
        request = _Request(session, image, order, loop.create_future(), time.perf_counter(), pace)
        self._pending.append(request)
        self._arrived.set()
        result = await request.future
        result.timing["preprocess_ms"] = result.timing.get("preprocess_ms", 0.0) + prepare_ms
        return result

    def forget(self, session: Any) -> None:
        """The session ended: stop expecting its steps."""
        self._paces.pop(id(session), None)

    # ------------------------------------------------------------------ batching

    async def _run(self) -> None:
        while True:
            async with self._gathering:  # one runner gathers at a time; the others compute
                batch = await self._gather()
            if batch:
                await self._execute(batch)

    async def _gather(self) -> list[_Request]:
        while not self._pending:
            self._arrived.clear()
            await self._arrived.wait()
        batch = self._take([])
        deadline = batch[0].queued + self.window_s if batch else 0.0
        while batch and len(batch) < self.max_batch:
            now = time.perf_counter()
            if self._preparing:  # received, being resized: it joins within a resize
                wait = max(deadline - now, self.window_s)
            elif now < deadline and self._due_within(now, deadline - now):
                wait = deadline - now
            else:
                break
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), wait)
            except asyncio.TimeoutError:
                break
            batch = self._take(batch)
        return batch

    def _take(self, batch: list[_Request]) -> list[_Request]:
        while self._pending and len(batch) < self.max_batch:
            request = self._pending.popleft()
            if not request.future.done():  # a closed connection's step is dropped
                batch.append(request)
        return batch

    def _due_within(self, now: float, horizon_s: float) -> bool:
        """Whether a session with no step in flight is expected to step within ``horizon_s``."""
        return any(pace.due_within(now, horizon_s) for pace in self._paces.values())

    async def _execute(self, batch: list[_Request]) -> None:
        started = time.perf_counter()
        self._computing += len(batch)
        try:
            outcomes = await asyncio.get_running_loop().run_in_executor(self._pool, self._compute, batch)
        except asyncio.CancelledError:  # shutting down: nobody is left to compute these
            for request in batch:
                _settle(request, MobileVLAError("server shutting down"), started)
            raise
        except Exception as exc:
            outcomes = [exc] * len(batch)
        finally:
            self._computing -= len(batch)
        for request, outcome in zip(batch, outcomes):
            _settle(request, outcome, started)

    def _compute(self, batch: list[_Request]) -> list[Any]:
        """On an inference thread: the batch's results, or each request's own error."""
        try:
            return self._forward(batch)
        except (MobileVLAError, ValueError):
            if len(batch) == 1:
                raise
            # A rejected input changes no session (see step_batch), so the others still get answers.
            return [self._alone(request) for request in batch]

    def _alone(self, request: _Request) -> Any:
        try:
            return self._forward([request])[0]
        except Exception as exc:
            return exc

    def _forward(self, batch: list[_Request]) -> list[StepResult]:
        step_batch = getattr(self.policy, "step_batch", None)
        timing: dict[str, float] = {}
        start = time.perf_counter()
        if step_batch is not None:
            chunks = step_batch([r.session for r in batch], [r.image for r in batch],
                                [r.order for r in batch], timing=timing)
        else:  # a policy without a batched step: one call per session
            chunks = [r.session.step(r.image, channel_order=r.order) for r in batch]
        infer_ms = (time.perf_counter() - start) * 1e3
        results = []
        for chunk in chunks:
            actions = np.asarray(chunk, dtype=np.float32)
            if actions.ndim != 2 or not np.isfinite(actions).all():
                raise RuntimeError(
                    f"policy returned a bad chunk: shape {actions.shape}, finite={np.isfinite(actions).all()}"
                )
            results.append(StepResult(actions, {**timing, "infer_ms": infer_ms, "batch_size": len(batch)}))
        return results


def _settle(request: _Request, outcome: Any, started: float) -> None:
    # Its session may step again from now on (a batch gathering next counts on it).
    request.pace.in_flight, request.pace.replied = False, time.perf_counter()
    if request.future.done():
        return
    if isinstance(outcome, BaseException):
        request.future.set_exception(outcome)
        return
    outcome.timing["queue_ms"] = (started - request.queued) * 1e3
    request.future.set_result(outcome)
