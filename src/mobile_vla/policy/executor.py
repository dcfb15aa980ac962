"""Chunk executors: turn the policy's action chunks into one command per control step.

Shared by closed-loop evaluation (``eval-sim --strategy``) and the robot client, so a
strategy behaves identically in simulation and on the robot.

Strategies:
    first     execute the first action of every new chunk (query every step).
    chunk     execute a whole chunk open-loop, then take the next one.
    ensemble  temporal ensembling (ACT): average every past chunk's prediction for the
              current step, weighting the chunk predicted ``i`` steps ago by ``exp(-decay * i)``.
"""

from __future__ import annotations

from collections import deque

import numpy as np

STRATEGIES = ("first", "chunk", "ensemble")
# Measured on the demo's three seeds: more successes and a third of the collisions of `first`
# (docs/results.md, rows `varied-w1-big15-ensemble`).
DEFAULT_STRATEGY = "ensemble"
# Newest chunks weigh most. Swept on the five demo seeds' checkpoints (docs/results.md, "Today's
# default on fresh scenes, and how much to trust older chunks"): a smaller decay trades
# collisions for time-outs, a larger one the reverse, at about the same success.
DEFAULT_DECAY = 0.5


class ChunkExecutor:
    """Call :meth:`act` once per control step with the newest chunk ``(N, D)``."""

    def __init__(self, strategy: str = DEFAULT_STRATEGY, decay: float = DEFAULT_DECAY):
        if strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        if not np.isfinite(decay):
            raise ValueError(f"ensemble decay must be a finite number, got {decay!r}")
        self.strategy = strategy
        self.decay = decay
        self.reset()

    def reset(self) -> None:
        self._queue: deque[np.ndarray] = deque()
        self._history: deque[np.ndarray] = deque()  # ensemble: chunks, newest first

    def act(self, chunk: np.ndarray) -> np.ndarray:
        """``chunk``: ``(N, D)`` physical units → the command ``(D,)`` to execute now."""
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim != 2 or len(chunk) == 0:
            raise ValueError(f"chunk must be (N, D) with N >= 1, got shape {chunk.shape}")
        if self.strategy == "first":
            return chunk[0].copy()
        if self.strategy == "chunk":
            if not self._queue:
                self._queue.extend(chunk)
            return self._queue.popleft().copy()
        # ensemble: the chunk from i steps ago predicts the current step at index i.
        self._history.appendleft(chunk)
        while len(self._history) > len(chunk):
            self._history.pop()
        preds, weights = [], []
        for i, past in enumerate(self._history):
            if i < len(past):
                preds.append(past[i])
                weights.append(np.exp(-self.decay * i))
        w = np.asarray(weights, np.float32)[:, None]
        return (np.stack(preds) * w).sum(0) / w.sum()
