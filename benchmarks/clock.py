"""``Clock``: wall time and this process's CPU time of a block, for the benchmarks.

CPU time is less sensitive to other jobs sharing the machine than wall time.
"""

from __future__ import annotations

import time


class Clock:
    """``with Clock() as c: ...`` then ``c.wall`` and ``c.cpu`` in seconds."""

    def __enter__(self) -> Clock:
        self.wall, self.cpu = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.wall, self.cpu = time.perf_counter() - self.wall, time.process_time() - self.cpu

    def rates(self, n: int) -> dict:
        """``n`` items per wall second and per CPU second."""
        return {"wall": round(n / self.wall, 1), "per_cpu_s": round(n / self.cpu, 1)}

    def figures(self, per: int = 1) -> dict:
        """Seconds per item, ``per`` items: wall and CPU."""
        return {"wall_s": round(self.wall / per, 4), "cpu_s": round(self.cpu / per, 4)}
