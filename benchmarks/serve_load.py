"""Load benchmark for ``mobile-vla serve``: batched vs unbatched, where a step's time goes.

For each server configuration (batching on with the default window, and off: ``--batch-window-ms
0``) a server runs in a child process (its own GIL, as in deployment) and asyncio websocket
clients in this process speak the documented protocol over loopback:

- ``1`` and ``8`` clients (``--max-clients``) sending the next frame as soon as a reply arrives;
- ``16`` clients (``--rate-clients``) at a robot rate (``--rate``, 5 Hz).

Each scenario reports round-trip p50/p99, total steps/s, the mean batch size, and the
server-side split of a step in ms (means: ``decode``, ``queue`` — waiting for the batch and
the inference thread —, ``preprocess``, ``model``, ``encode``), read from the server's
``stage_totals_ms`` before and after. ``in_process_step_ms`` is the p50 of ``session.step`` of
the same frame in this process, measured before each server runs. ``targets`` compares what the issue asks.

    .venv/bin/python benchmarks/serve_load.py --policy tiny             # untrained tiny checkpoint
    .venv/bin/python benchmarks/serve_load.py                           # fake policy (protocol cost)
    .venv/bin/python benchmarks/serve_load.py --policy DIR --device cuda

Prints one JSON object (progress lines go to stderr).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

LEFT = "go around the box on the left and reach the cup"
RIGHT = "go around the box on the right and reach the cup"
STAGES = ("decode", "queue", "preprocess", "model", "encode")


def load_policy(args: argparse.Namespace):
    if args.torch_threads:
        import torch

        torch.set_num_threads(args.torch_threads)
    if args.policy == "fake":
        from mobile_vla.serve.fake import FakePolicy

        return FakePolicy(delay_s=args.fake_delay_ms / 1e3)
    from mobile_vla import Policy

    return Policy.from_checkpoint(args.checkpoint_dir, device=args.device)


def serve_child(args: argparse.Namespace) -> None:
    """Child process: build the policy, serve it, print the port as one JSON line."""
    from mobile_vla.serve.server import ServerConfig, serve_forever

    policy = load_policy(args)
    config = ServerConfig(port=0, workers=args.workers, max_message_bytes=64 * 1024 * 1024,
                          batch_window_ms=args.batch_window_ms, max_batch=args.max_batch, max_queue=256)

    def ready(port: int) -> None:
        print(json.dumps({"port": port, "metadata": policy.metadata}, default=str), flush=True)

    serve_forever(policy, config, on_ready=ready)


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


async def scenario(url: str, clients: int, rate: float | None, duration: float, step: bytes) -> dict:
    before = await health(url)
    began = time.perf_counter()
    deadline = began + duration
    results = await asyncio.gather(
        *(client(url, LEFT if i % 2 == 0 else RIGHT, step, deadline, rate) for i in range(clients))
    )
    elapsed = time.perf_counter() - began
    after = await health(url)
    latency = np.concatenate([r["latency_ms"] for r in results])
    served = max(1, after["steps_served"] - before["steps_served"])
    split = {
        stage: round((after["stage_totals_ms"][stage] - before["stage_totals_ms"][stage]) / served, 2)
        for stage in STAGES
    }
    return {
        "clients": clients,
        "mode": f"{rate:g} Hz" if rate else "max",
        "steps": int(len(latency)),
        "steps_per_s": round(len(latency) / elapsed, 1),
        "p50_ms": round(float(np.percentile(latency, 50)), 2),
        "p99_ms": round(float(np.percentile(latency, 99)), 2),
        "mean_batch": round(float(np.mean(np.concatenate([r["batch"] for r in results]))), 2),
        "server_split_ms": split,
    }


def run_server(args: argparse.Namespace, window_ms: float, step: bytes) -> tuple[dict, list[dict]]:
    child_args = [*sys.argv[1:], "--serve-child", "--batch-window-ms", str(window_ms),
                  "--checkpoint-dir", args.checkpoint_dir or ""]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    child = subprocess.Popen([sys.executable, __file__, *child_args], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        ready = json.loads(child.stdout.readline())
        url = f"ws://127.0.0.1:{ready['port']}"
        plan = [(n, None) for n in _counts(args.max_clients)] + [(n, args.rate) for n in _counts(args.rate_clients)]
        asyncio.run(scenario(url, 1, None, min(1.0, args.duration), step))  # warm-up
        results = []
        for n, rate in plan:
            results.append({"batch_window_ms": window_ms,
                            **asyncio.run(scenario(url, n, rate, args.duration, step))})
            print(json.dumps(results[-1]), file=sys.stderr)
    finally:
        child.terminate()
        child.wait(timeout=30)
    return ready["metadata"], results


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
    parser.add_argument("--policy", default="fake", help="'fake', 'tiny' (untrained tiny checkpoint) or a DIR")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fake-delay-ms", type=float, default=0.0, help="simulated inference time (fake)")
    parser.add_argument("--max-clients", default="1,8", help="client counts sending flat out")
    parser.add_argument("--rate-clients", default="16", help="client counts sending at --rate")
    parser.add_argument("--rate", type=float, default=5.0, help="robot control rate for the fixed-rate runs")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per scenario")
    parser.add_argument("--frame", default="480x640", help="camera frame HxW sent each step")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--window-ms", type=float, default=5.0, help="the batched configuration's window")
    parser.add_argument("--max-batch", type=int, default=16)
    parser.add_argument("--torch-threads", type=int, default=0,
                        help="torch intra-op threads in the server and the in-process run (0: torch's default); "
                             "1 suffers far less when other jobs share the cores")
    parser.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch-window-ms", type=float, default=5.0, help=argparse.SUPPRESS)
    parser.add_argument("--checkpoint-dir", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child(args)
        return

    if args.policy == "tiny":
        from mobile_vla.train.checkpoint import init_checkpoint

        args.checkpoint_dir = str(init_checkpoint(tempfile.mkdtemp(prefix="serve-bench-") + "/tiny"))
    elif args.policy != "fake":
        args.checkpoint_dir = args.policy
    from mobile_vla.serve import protocol

    h, w = (int(v) for v in args.frame.split("x"))
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    step = protocol.pack({"type": "step", "image": frame})
    policy = load_policy(args)
    # Measured before each server runs, so that it sees the same (shared) machine as the servers.
    local = in_process_step_ms(policy, frame)
    metadata, batched = run_server(args, args.window_ms, step)
    local += in_process_step_ms(policy, frame)
    _, unbatched = run_server(args, 0.0, step)
    in_process_ms = float(np.percentile(local, 50))
    print(json.dumps({
        "benchmark": "serve_load",
        "policy": args.policy,
        "model": metadata.get("model", metadata.get("model_name")),
        "device": args.device,
        "workers": args.workers,
        "torch_threads": args.torch_threads or "default",
        "frame": [h, w, 3],
        "duration_s": args.duration,
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
        "load_average_1min": round(os.getloadavg()[0], 2),
        "in_process_step_ms": round(in_process_ms, 2),
        "batched": batched,
        "unbatched": unbatched,
        "targets": targets(batched, unbatched, in_process_ms, args.rate),
    }, indent=2))


if __name__ == "__main__":
    main()
