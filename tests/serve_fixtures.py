"""Shared helpers for the server tests: random frames and concurrent remote sessions."""

from __future__ import annotations

import threading

import numpy as np

from mobile_vla.serve.client import RemotePolicy

LEFT = "go around the box on the left and reach the cup"
RIGHT = "go around the box on the right and reach the cup"


def frames(n: int, seed: int = 0, shape=(48, 64, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(n)]


def alone(policy, plan: dict[str, list[np.ndarray]]) -> dict[str, list[np.ndarray]]:
    """Each instruction's chunks from its own in-process session, one after the other."""
    out = {}
    for instruction, seq in plan.items():
        session = policy.new_session(instruction)
        out[instruction] = [session.step(f) for f in seq]
    return out


def concurrently(url: str, plan: dict[str, list[np.ndarray]], timeout: float = 120) -> dict[str, list[np.ndarray]]:
    """One client thread per instruction, all connected before any steps; their chunks."""
    got: dict[str, list[np.ndarray]] = {}
    barrier = threading.Barrier(len(plan))

    def run(instruction: str) -> None:
        with RemotePolicy(url) as remote:
            session = remote.new_session(instruction)
            barrier.wait(timeout=timeout)
            got[instruction] = [session.step(f) for f in plan[instruction]]

    threads = [threading.Thread(target=run, args=(i,)) for i in plan]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=timeout)
    missing = [i for i in plan if len(got.get(i, [])) != len(plan[i])]
    assert not missing, f"clients did not finish: {missing}"
    return got
