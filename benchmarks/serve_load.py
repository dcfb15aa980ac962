"""Load benchmark for ``mobile-vla serve``: batched vs unbatched, where a step's time goes.

Two servers run in child processes (their own GIL, as in deployment), both with the server's
default flags (``ServerConfig``: batch window, max batch, one worker, torch threads), except that
the second has batching off (``--batch-window-ms 0``). asyncio websocket clients in this process
speak the documented protocol over loopback:

- ``1`` and ``8`` clients (``--max-clients``) sending the next frame as soon as a reply arrives;
- ``16`` clients (``--rate-clients``) at a robot rate (``--rate``, 5 Hz).

The lone-client scenario (1 client, flat out) alternates between the two servers in
``--lone-rounds`` slices (on, off, off, on, ...), so that a drift of the machine does not land
on one configuration; the other scenarios run on one server, then on the other. The idle server
costs next to nothing meanwhile.

Each scenario reports round-trip p50/p99, total steps/s, the mean batch size, the server-side
split of a step in ms (means: ``decode``, ``queue`` — waiting for the batch and the inference
thread —, ``preprocess``, ``model``, ``encode``), read from the server's ``stage_totals_ms``
before and after, and the CPU time per step of the server process and of the clients' process.
On Linux each row also says how busy the server's threads were (``server_thread_cores``: CPU
seconds per second of the event-loop thread and of every other thread, busiest first — the
inference thread, the frame-resize threads) and the machine's idle share (``machine_idle``, of
all cores): a model thread below one core while cores sit idle means the steps wait on each
other, not on the CPU.
``in_process_step_ms`` is the p50 of ``session.step`` of the same frame in this process (with
``--torch-threads`` intra-op threads), measured between the lone-client slices. ``targets``
compares what the issue asks.

    .venv/bin/python benchmarks/serve_load.py --policy tiny             # untrained tiny checkpoint
    .venv/bin/python benchmarks/serve_load.py --policy tiny-onnx        # its ONNX export (ONNX Runtime)
    .venv/bin/python benchmarks/serve_load.py                           # fake policy (protocol cost)
    .venv/bin/python benchmarks/serve_load.py --policy DIR --device cuda

Prints one JSON object (progress lines go to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

LEFT = "go around the box on the left and reach the cup"
RIGHT = "go around the box on the right and reach the cup"
STAGES = ("decode", "queue", "preprocess", "model", "encode")


def policy_loader(args: argparse.Namespace):
    """A picklable ``load()`` of the benchmarked policy (the server may run it in a process of its own)."""
    if args.policy == "fake":
        from mobile_vla.serve.fake import FakePolicy

        return functools.partial(FakePolicy, delay_s=args.fake_delay_ms / 1e3)
    from mobile_vla.policy.backends import load_policy as load_backend

    return functools.partial(load_backend, args.checkpoint_dir, device=args.device)  # torch checkpoint or ONNX export


def load_policy(args: argparse.Namespace, torch_threads: int = 0):
    if torch_threads:
        import torch

        torch.set_num_threads(torch_threads)
    return policy_loader(args)()


def serve_child(args: argparse.Namespace) -> None:
    """Child process: build the policy where the server would (``host_policy``), serve it with the
    server's defaults (but for the flags given), print the port as one JSON line."""
    from mobile_vla.serve.server import ServerConfig, host_policy, serve_forever

    overrides = {
        "batch_window_ms": args.batch_window_ms, "max_batch": args.max_batch, "workers": args.workers,
        "torch_threads": args.server_torch_threads, "inference_process": args.inference_process,
    }
    config = ServerConfig(port=0, **{k: v for k, v in overrides.items() if v is not None})
    policy = host_policy(policy_loader(args), config)

    def ready(port: int) -> None:
        print(json.dumps({"port": port, "metadata": policy.metadata, "config": dataclasses.asdict(config),
                          "inference_pid": getattr(policy, "pid", None)}, default=str), flush=True)

    try:
        serve_forever(policy, config, on_ready=ready)
    finally:
        getattr(policy, "close", lambda: None)()


def in_process_step_ms(policy, frame: np.ndarray, steps: int = 40) -> list[float]:
    """``session.step(frame)`` times in this process, ms (the history full, as in a running episode)."""
    session = policy.new_session(LEFT)
    times = []
    for i in range(steps + 10):
        start = time.perf_counter()
        session.step(frame)
        if i >= 10:
            times.append((time.perf_counter() - start) * 1e3)
    return times


async def client(url: str, instruction: str, step: bytes, deadline: float, rate: float | None) -> dict:
    from websockets.asyncio.client import connect

    from mobile_vla.serve import protocol

    latencies, batch = [], []
    async with connect(url, compression=None, max_size=None) as ws:
        protocol.unpack(await ws.recv())  # handshake
        await ws.send(protocol.pack({"type": "reset", "instruction": instruction}))
        await ws.recv()
        start = time.perf_counter()
        n = 0
        while time.perf_counter() < deadline:
            if rate:  # fixed robot rate: wait for the next tick (late ticks are not made up)
                tick = start + n / rate
                n += 1
                delay = tick - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -1.0 / rate:
                    start, n = time.perf_counter(), 1
            sent = time.perf_counter()
            await ws.send(step)
            reply = protocol.unpack(await ws.recv())
            latencies.append((time.perf_counter() - sent) * 1e3)
            batch.append(reply["server_timing"].get("batch_size", 1))
    return {"latency_ms": latencies, "batch": batch}


async def health(url: str) -> dict:
    from websockets.asyncio.client import connect

    from mobile_vla.serve import protocol

    async with connect(url, compression=None) as ws:
        await ws.recv()
        await ws.send(protocol.pack({"type": "health"}))
        return protocol.unpack(await ws.recv())


def _stat_cpu_s(stat_path: str) -> float:
    """User + system CPU seconds from a Linux ``/proc/.../stat`` file (raises OSError if gone)."""
    with open(stat_path) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far (Linux /proc; NaN elsewhere)."""
    try:
        return _stat_cpu_s(f"/proc/{pid}/stat")
    except (OSError, ValueError, IndexError):
        return float("nan")


def thread_cpu_s(pid: int) -> dict[int, float]:
    """User + system CPU seconds of each thread of process ``pid`` (Linux /proc; empty elsewhere)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            out[int(tid)] = _stat_cpu_s(f"/proc/{pid}/task/{tid}/stat")
        except (OSError, ValueError, IndexError):
            continue  # a thread that ended meanwhile
    return out


def server_thread_cpu_s(pids: list[int]) -> dict[tuple[int, int], float]:
    """:func:`thread_cpu_s` of the server process and of its inference process, keyed (pid, tid)."""
    return {(pid, tid): seconds for pid in pids for tid, seconds in thread_cpu_s(pid).items()}


def machine_ticks() -> tuple[int, int]:
    """(idle + iowait, total) jiffies of all cores so far (Linux /proc/stat; zeros elsewhere)."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        return values[3] + values[4], sum(values)
    except (OSError, ValueError, IndexError):
        return 0, 0


class Server:
    """One server child process and what was measured on it."""

    def __init__(self, args: argparse.Namespace, window_ms: float | None):
        child_args = ["--serve-child", "--policy", args.policy, "--device", args.device,
                      "--fake-delay-ms", str(args.fake_delay_ms), "--checkpoint-dir", args.checkpoint_dir or ""]
        for flag, value in (("--batch-window-ms", window_ms), ("--max-batch", args.max_batch),
                            ("--workers", args.workers), ("--server-torch-threads", args.server_torch_threads)):
            if value is not None:
                child_args += [flag, str(value)]
        if args.inference_process is not None:
            child_args.append("--inference-process" if args.inference_process else "--no-inference-process")
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        self.child = subprocess.Popen([sys.executable, __file__, *child_args], stdout=subprocess.PIPE,
                                      stderr=subprocess.DEVNULL, text=True, env=env)
        ready = json.loads(self.child.stdout.readline())
        self.url = f"ws://127.0.0.1:{ready['port']}"
        self.metadata, self.config = ready["metadata"], ready["config"]
        self.inference_pid = ready.get("inference_pid")  # the policy's own process, if it has one
        self.window_ms = float(self.config["batch_window_ms"])
        self.results: list[dict] = []

    def stop(self) -> None:
        self.child.terminate()
        self.child.wait(timeout=30)


async def scenario(server: Server, clients: int, rate: float | None, duration: float, step: bytes) -> dict:
    """Run one scenario; returns the raw measurements (see :func:`summarise`)."""
    url = server.url
    before = await health(url)
    pids = [server.child.pid] + ([server.inference_pid] if server.inference_pid else [])
    cpu_server, cpu_clients = sum(map(process_cpu_s, pids)), time.process_time()
    threads, ticks = server_thread_cpu_s(pids), machine_ticks()
    began = time.perf_counter()
    deadline = began + duration
    results = await asyncio.gather(
        *(client(url, LEFT if i % 2 == 0 else RIGHT, step, deadline, rate) for i in range(clients))
    )
    elapsed = time.perf_counter() - began
    cpu_server, cpu_clients = sum(map(process_cpu_s, pids)) - cpu_server, time.process_time() - cpu_clients
    threads_after, ticks_after = server_thread_cpu_s(pids), machine_ticks()
    after = await health(url)
    return {
        "clients": clients, "rate": rate, "elapsed": elapsed,
        "latency": np.concatenate([r["latency_ms"] for r in results]),
        "batch": np.concatenate([r["batch"] for r in results]),
        "served": after["steps_served"] - before["steps_served"],
        "stage_ms": {s: after["stage_totals_ms"][s] - before["stage_totals_ms"][s] for s in STAGES},
        "cpu_server_s": cpu_server, "cpu_clients_s": cpu_clients,
        "thread_cpu_s": {tid: t - threads.get(tid, 0.0) for tid, t in threads_after.items()},
        "main_tid": server.child.pid,  # the event loop runs on the main thread
        "inference_pid": server.inference_pid,
        "idle_ticks": (ticks_after[0] - ticks[0], ticks_after[1] - ticks[1]),
    }


def summarise(server: Server, runs: list[dict]) -> dict:
    """One row from one or more runs of the same scenario (pooled)."""
    latency = np.concatenate([r["latency"] for r in runs])
    elapsed = sum(r["elapsed"] for r in runs)
    served = max(1, sum(r["served"] for r in runs))
    steps = max(1, len(latency))
    rate = runs[0]["rate"]
    return {
        "batch_window_ms": server.window_ms,
        "clients": runs[0]["clients"],
        "mode": f"{rate:g} Hz" if rate else "max",
        "steps": int(len(latency)),
        "steps_per_s": round(len(latency) / elapsed, 1),
        "p50_ms": round(float(np.percentile(latency, 50)), 2),
        "p99_ms": round(float(np.percentile(latency, 99)), 2),
        "mean_batch": round(float(np.mean(np.concatenate([r["batch"] for r in runs]))), 2),
        "server_split_ms": {s: round(sum(r["stage_ms"][s] for r in runs) / served, 2) for s in STAGES},
        "cpu_ms_per_step": {
            "server": round(sum(r["cpu_server_s"] for r in runs) * 1e3 / steps, 2),
            "clients": round(sum(r["cpu_clients_s"] for r in runs) * 1e3 / steps, 2),
        },
        **thread_load(runs, elapsed),
    }


def thread_load(runs: list[dict], elapsed: float) -> dict:
    """``server_thread_cores`` and ``machine_idle`` of pooled runs (empty where /proc is missing)."""
    busy: dict[tuple[int, int], float] = {}
    for r in runs:
        for key, seconds in r["thread_cpu_s"].items():
            busy[key] = busy.get(key, 0.0) + seconds
    idle, total = (sum(r["idle_ticks"][i] for r in runs) for i in (0, 1))
    if not busy or not total:
        return {}
    server_pid, inference_pid = runs[0]["main_tid"], runs[0].get("inference_pid")
    main = busy.pop((server_pid, server_pid), 0.0)
    others = sorted((s / elapsed for (pid, _), s in busy.items() if pid == server_pid and s > 0), reverse=True)
    cores = {"event_loop": round(main / elapsed, 3), "others": [round(c, 3) for c in others]}
    if inference_pid:
        cores["inference_process"] = round(sum(s for (pid, _), s in busy.items() if pid == inference_pid) / elapsed, 3)
    return {"server_thread_cores": cores, "machine_idle": round(idle / total, 3)}


def run_all(args: argparse.Namespace, step: bytes, policy, frame: np.ndarray) -> tuple[list[Server], list[float]]:
    servers = [Server(args, None), Server(args, 0.0)]  # batching on (server default), off
    local: list[float] = []
    try:
        for server in servers:  # warm-up
            asyncio.run(scenario(server, 1, None, min(1.0, args.duration), step))
        lone: dict[int, list[dict]] = {0: [], 1: []}
        rounds = max(1, args.lone_rounds)
        for k in range(rounds):
            order = (0, 1) if k % 2 == 0 else (1, 0)
            local += in_process_step_ms(policy, frame, steps=max(10, 40 // rounds))
            for i in order:
                lone[i].append(asyncio.run(scenario(servers[i], 1, None, args.duration / rounds, step)))
        plan = [(n, None) for n in _counts(args.max_clients) if n != 1]
        plan += [(n, args.rate) for n in _counts(args.rate_clients)]
        for i, server in enumerate(servers):
            if 1 in _counts(args.max_clients):
                server.results.append(summarise(server, lone[i]))
                print(json.dumps(server.results[-1]), file=sys.stderr)
            for n, rate in plan:
                server.results.append(summarise(server, [asyncio.run(scenario(server, n, rate, args.duration, step))]))
                print(json.dumps(server.results[-1]), file=sys.stderr)
        local += in_process_step_ms(policy, frame, steps=max(10, 40 // rounds))
    finally:
        for server in servers:
            server.stop()
    return servers, local


def _counts(text: str) -> list[int]:
    return [int(c) for c in text.split(",") if c.strip()]


def _find(results: list[dict], clients: int, mode: str) -> dict | None:
    return next((r for r in results if r["clients"] == clients and r["mode"] == mode), None)


def targets(batched: list[dict], unbatched: list[dict], in_process_ms: float, rate: float) -> dict:
    out: dict = {}
    one, eight = _find(batched, 1, "max"), _find(batched, 8, "max")
    if one and eight:
        out["steps_per_s_8_over_1"] = round(eight["steps_per_s"] / one["steps_per_s"], 2)  # >= 3
    fleet = _find(batched, 16, f"{rate:g} Hz")
    if fleet:
        out["p99_ms_16_at_rate"] = fleet["p99_ms"]  # <= 150
    lone_off = _find(unbatched, 1, "max")
    if one and lone_off:
        out["lone_p50_batched_over_unbatched"] = round(one["p50_ms"] / lone_off["p50_ms"], 3)  # <= 1.10
    if one:
        out["round_trip_over_in_process"] = round(one["p50_ms"] / in_process_ms, 2)  # <= 2
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--policy", default="fake",
                        help="'fake', 'tiny' (untrained tiny checkpoint), 'tiny-onnx' (its ONNX export) or a DIR "
                             "(a checkpoint or an export)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fake-delay-ms", type=float, default=0.0, help="simulated inference time (fake)")
    parser.add_argument("--max-clients", default="1,8", help="client counts sending flat out")
    parser.add_argument("--rate-clients", default="16", help="client counts sending at --rate")
    parser.add_argument("--rate", type=float, default=5.0, help="robot control rate for the fixed-rate runs")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    parser.add_argument("--lone-rounds", type=int, default=4,
                        help="slices the lone-client scenario is cut into, alternating the two servers")
    parser.add_argument("--frame", default="480x640", help="camera frame HxW sent each step")
    parser.add_argument("--batch-window-ms", type=float, default=None,
                        help="the batched server's window (default: the server's default)")
    parser.add_argument("--max-batch", type=int, default=None, help="(default: the server's default)")
    parser.add_argument("--workers", type=int, default=None, help="(default: the server's default)")
    parser.add_argument("--server-torch-threads", type=int, default=None,
                        help="torch intra-op threads in the servers (default: the server's default)")
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch intra-op threads of the in-process session.step (0: torch's default); "
                             "the servers use theirs (--server-torch-threads)")
    parser.add_argument("--inference-process", action=argparse.BooleanOptionalAction, default=None,
                        help="the servers' policy in a process of its own (default: the server's default)")
    parser.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child(args)
        return

    if args.policy in ("tiny", "tiny-onnx"):
        from mobile_vla.train.checkpoint import init_checkpoint

        args.checkpoint_dir = str(init_checkpoint(tempfile.mkdtemp(prefix="serve-bench-") + "/tiny"))
        if args.policy == "tiny-onnx":
            from mobile_vla.cli import main as cli

            export = str(Path(args.checkpoint_dir).parent / "onnx")
            with contextlib.redirect_stdout(sys.stderr):  # stdout carries only this benchmark's JSON
                code = cli(["export", "--checkpoint", args.checkpoint_dir, "--format", "onnx", "--out", export])
            if code != 0:
                raise SystemExit("the ONNX export failed")
            args.checkpoint_dir = export
    elif args.policy != "fake":
        args.checkpoint_dir = args.policy
    from mobile_vla.serve import protocol

    h, w = (int(v) for v in args.frame.split("x"))
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    step = protocol.pack({"type": "step", "image": frame})
    policy = load_policy(args, args.torch_threads)
    load_before = round(os.getloadavg()[0], 2)
    (batched, unbatched), local = run_all(args, step, policy, frame)
    in_process_ms = float(np.percentile(local, 50))
    print(json.dumps({
        "benchmark": "serve_load",
        "policy": args.policy,
        "model": batched.metadata.get("model", batched.metadata.get("model_name")),
        "device": args.device,
        "server_config": {k: batched.config[k] for k in
                          ("batch_window_ms", "max_batch", "workers", "max_queue", "torch_threads",
                           "inference_process")},
        "in_process_torch_threads": args.torch_threads or "default",
        "frame": [h, w, 3],
        "duration_s": args.duration,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "load_average_1min": {"before": load_before, "after": round(os.getloadavg()[0], 2)},
        "in_process_step_ms": round(in_process_ms, 2),
        "batched": batched.results,
        "unbatched": unbatched.results,
        "targets": targets(batched.results, unbatched.results, in_process_ms, args.rate),
    }, indent=2))


if __name__ == "__main__":
    main()
