"""Load benchmark for ``mobile-vla serve``: 1, 4 and 16 concurrent clients, flat out and at a robot rate.

The server runs in a child process (its own GIL, as in deployment); the clients are asyncio
websocket connections in this process speaking the documented protocol over loopback. Each
scenario runs for ``--duration`` seconds and reports per-step round-trip latency p50/p99,
the server's own inference time p50, and total steps/s.

    .venv/bin/python benchmarks/serve_load.py                          # fake policy (protocol cost)
    .venv/bin/python benchmarks/serve_load.py --policy tiny            # untrained tiny checkpoint
    .venv/bin/python benchmarks/serve_load.py --policy DIR --device cuda

Prints one JSON object.
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


def serve_child(args: argparse.Namespace) -> None:
    """Child process: build the policy, serve it, print the port as one JSON line."""
    from mobile_vla.serve.server import ServerConfig, serve_forever

    if args.policy == "fake":
        from mobile_vla.serve.fake import FakePolicy

        policy = FakePolicy(delay_s=args.fake_delay_ms / 1e3)
    else:
        from mobile_vla import Policy

        directory = args.policy
        if args.policy == "tiny":
            from mobile_vla.train.checkpoint import init_checkpoint

            directory = init_checkpoint(tempfile.mkdtemp(prefix="serve-bench-") + "/tiny")
        policy = Policy.from_checkpoint(directory, device=args.device)
    config = ServerConfig(port=0, workers=args.workers, max_message_bytes=64 * 1024 * 1024)

    def ready(port: int) -> None:
        print(json.dumps({"port": port, "metadata": policy.metadata}, default=str), flush=True)

    serve_forever(policy, config, on_ready=ready)


async def client(url: str, instruction: str, frame: np.ndarray, deadline: float, rate: float | None) -> dict:
    from websockets.asyncio.client import connect

    from mobile_vla.serve import protocol

    latencies, infer = [], []
    async with connect(url, compression=None, max_size=None) as ws:
        protocol.unpack(await ws.recv())  # handshake
        await ws.send(protocol.pack({"type": "reset", "instruction": instruction}))
        await ws.recv()
        step = protocol.pack({"type": "step", "image": frame})
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
            infer.append(reply["server_timing"]["infer_ms"])
    return {"latency_ms": latencies, "infer_ms": infer}


async def scenario(url: str, clients: int, rate: float | None, duration: float, frame: np.ndarray) -> dict:
    began = time.perf_counter()
    deadline = began + duration
    results = await asyncio.gather(
        *(client(url, LEFT if i % 2 == 0 else RIGHT, frame, deadline, rate) for i in range(clients))
    )
    elapsed = time.perf_counter() - began
    latency = np.concatenate([r["latency_ms"] for r in results])
    infer = np.concatenate([r["infer_ms"] for r in results])
    return {
        "clients": clients,
        "mode": f"{rate:g} Hz" if rate else "max",
        "steps": int(len(latency)),
        "steps_per_s": round(len(latency) / elapsed, 1),
        "p50_ms": round(float(np.percentile(latency, 50)), 2),
        "p99_ms": round(float(np.percentile(latency, 99)), 2),
        "infer_p50_ms": round(float(np.percentile(infer, 50)), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--policy", default="fake", help="'fake', 'tiny' (untrained tiny checkpoint) or a DIR"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--fake-delay-ms", type=float, default=0.0, help="simulated inference time (fake)")
    parser.add_argument("--clients", default="1,4,16")
    parser.add_argument("--rate", type=float, default=5.0, help="robot control rate for the fixed-rate runs")
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per scenario")
    parser.add_argument("--frame", default="480x640", help="camera frame HxW sent each step")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--serve-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_child:
        serve_child(args)
        return

    child_args = [a for a in sys.argv[1:]] + ["--serve-child"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    child = subprocess.Popen(
        [sys.executable, __file__, *child_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    try:
        ready = json.loads(child.stdout.readline())
        url = f"ws://127.0.0.1:{ready['port']}"
        h, w = (int(v) for v in args.frame.split("x"))
        frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
        counts = [int(c) for c in args.clients.split(",")]
        results = []
        for rate in (None, args.rate):
            for n in counts:
                results.append(asyncio.run(scenario(url, n, rate, args.duration, frame)))
                print(json.dumps(results[-1]), file=sys.stderr)
    finally:
        child.terminate()
        child.wait(timeout=30)
    print(
        json.dumps(
            {
                "benchmark": "serve_load",
                "policy": args.policy,
                "model": ready["metadata"].get("model", ready["metadata"].get("model_name")),
                "device": args.device,
                "workers": args.workers,
                "frame": [h, w, 3],
                "duration_s": args.duration,
                "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores",
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
