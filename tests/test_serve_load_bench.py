"""benchmarks/serve_load.py stays runnable, and its thread accounting adds up (no timing asserted)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "serve_load.py"
spec = importlib.util.spec_from_file_location("serve_load", SCRIPT)
serve_load = importlib.util.module_from_spec(spec)
spec.loader.exec_module(serve_load)


def test_thread_load_pools_runs_and_puts_the_event_loop_apart():
    # Keys are (pid, tid): the server process 100 and, where it has one, its inference process 200.
    runs = [
        {"thread_cpu_s": {(100, 100): 1.0, (100, 101): 3.0, (100, 102): 0.5, (200, 200): 1.0},
         "main_tid": 100, "inference_pid": 200, "idle_ticks": (30, 100)},
        {"thread_cpu_s": {(100, 100): 1.0, (100, 101): 1.0, (100, 102): 1.5, (100, 103): 0.0,
                          (200, 200): 1.5, (200, 201): 0.5},
         "main_tid": 100, "inference_pid": 200, "idle_ticks": (10, 100)},
    ]
    load = serve_load.thread_load(runs, elapsed=4.0)
    assert load["server_thread_cores"] == {  # busiest first, idle dropped; the inference process summed
        "event_loop": 0.5, "others": [1.0, 0.5], "inference_process": 0.75}
    assert load["machine_idle"] == 0.2
    in_one_process = [{**r, "inference_pid": None} for r in runs]
    assert "inference_process" not in serve_load.thread_load(in_one_process, 4.0)["server_thread_cores"]
    assert serve_load.thread_load([{**runs[0], "thread_cpu_s": {}}], 1.0) == {}  # no /proc: no figures


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="per-thread CPU needs Linux /proc")
def test_the_benchmark_runs_and_reports_where_the_server_threads_spend():
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--policy", "fake", "--duration", "0.6", "--max-clients", "1,2",
         "--rate-clients", "2", "--lone-rounds", "2", "--frame", "240x320", "--inference-process"],
        capture_output=True, text=True, timeout=120, check=True,
    )
    report = json.loads(out.stdout)
    rows = report["batched"] + report["unbatched"]
    assert [(r["clients"], r["mode"]) for r in rows] == [(1, "max"), (2, "max"), (2, "5 Hz")] * 2
    for row in rows:
        assert row["steps"] > 0
        threads = row["server_thread_cores"]
        # CPU time is counted in clock ticks (10 ms): a short scenario may show none on a thread.
        assert threads["event_loop"] >= 0 and all(c > 0 for c in threads["others"])
        assert threads["inference_process"] >= 0  # --inference-process: the policy's process is counted
        assert 0.0 <= row["machine_idle"] <= 1.0
    # Over all scenarios the event loop, which decoded every step, was seen working.
    assert sum(r["server_thread_cores"]["event_loop"] for r in rows) > 0
    assert set(report["targets"]) >= {"lone_p50_batched_over_unbatched", "round_trip_over_in_process"}
    assert report["server_config"]["inference_process"] is True
