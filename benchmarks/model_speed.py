"""Model speed: tiny training throughput, streaming latency at W=1 / W=8, full-size Kosmos-2 cost.

Prints one JSON object. Usage::

    .venv/bin/python benchmarks/model_speed.py [--steps 20] [--stream-steps 60] [--skip-full] [--device cpu]

The full-size model is the ``kosmos-2-random`` preset (the architecture of
microsoft/kosmos-2-patch14-224 with random weights: no download).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time

import numpy as np
import torch

from mobile_vla.policy.checkpoint import build_model, default_action_stats
from mobile_vla.policy.streaming import Policy
from mobile_vla.train.checkpoint import build_processor
from mobile_vla.train.config import load_train_config
from mobile_vla.vocab import batch as keys


def tiny_training_throughput(steps: int, batch: int, window: int, device: str) -> dict:
    """Forward+backward+AdamW on random windows with the default recipe (FiLM + counterfactual)."""
    cfg = load_train_config("configs/tiny.yaml", [f"model.head.window_size={window}"])
    processor = build_processor(cfg)
    default_action_stats(processor)
    model = build_model(cfg.model, processor).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    S, N = processor.config.image_size, cfg.model.head.fwd_pred_next_n
    tok = processor.tokenize(["Go around the box on the left and reach the cup"] * batch)
    cf = processor.tokenize(["Go around the box on the right and reach the cup"] * batch)
    data = {keys.PIXEL_VALUES: torch.randn(batch, window, 3, S, S), keys.FRAME_MASK: torch.ones(batch, window, dtype=bool),
            **tok, **{keys.CF_PREFIX + k: v for k, v in cf.items()},
            keys.ACTIONS: torch.rand(batch, window, N, 2) - 0.5, keys.ACTION_MASK: torch.ones(batch, window, N, dtype=bool),
            keys.CF_ACTIONS: torch.rand(batch, window, N, 2) - 0.5,
            keys.CF_ACTION_MASK: torch.ones(batch, window, N, dtype=bool),
            keys.DIRECTION: torch.zeros(batch, dtype=torch.long),
            keys.INSTRUCTION: ["Go around the box on the left and reach the cup"] * batch}
    data = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in data.items()}
    times = []
    for i in range(steps + 2):
        t0 = time.perf_counter()
        loss = model.loss(data)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        if device != "cpu":
            torch.cuda.synchronize()
        if i >= 2:  # warm-up
            times.append(time.perf_counter() - t0)
    step = float(np.median(times))
    return {"batch_windows": batch, "window": window, "step_s_median": round(step, 4),
            "windows_per_s": round(batch / step, 2), "frames_per_s": round(batch * window / step, 1),
            "params": sum(p.numel() for p in model.parameters())}


def streaming_latency(window: int, steps: int, device: str, preset: str = "tiny") -> dict:
    overrides = [f"model.head.window_size={window}", f"model.backbone.preset={preset}"]
    if preset != "tiny":
        overrides.append("processor.tokenizer=tiny")  # offline: the tokenizer does not change the cost
    cfg = load_train_config("configs/tiny.yaml", overrides)
    processor = build_processor(cfg)
    default_action_stats(processor)
    model = build_model(cfg.model, processor)
    policy = Policy(model, processor, cfg, device=device)
    session = policy.new_session("Go around the box on the left and reach the cup")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (8, 240, 320, 3), dtype=np.uint8)
    for i in range(window + 2):  # warm-up and fill the history
        session.step(frames[i % 8])
    lat = []
    for i in range(steps):
        t0 = time.perf_counter()
        session.step(frames[i % 8])
        if device != "cpu":
            torch.cuda.synchronize()
        lat.append((time.perf_counter() - t0) * 1000)
    params = sum(p.numel() for p in model.parameters())
    return {"window": window, "p50_ms": round(float(np.percentile(lat, 50)), 2),
            "p99_ms": round(float(np.percentile(lat, 99)), 2), "params": params}


def full_size(device: str, steps: int) -> dict:
    t0 = time.perf_counter()
    result = streaming_latency(8, steps, device, preset="kosmos-2-random")
    result["build_and_run_s"] = round(time.perf_counter() - t0, 1)
    result["param_bytes_fp32_gb"] = round(result["params"] * 4 / 1e9, 2)
    result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 2)
    if device != "cpu":
        result["peak_gpu_mem_gb"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    return result


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--stream-steps", type=int, default=60)
    ap.add_argument("--full-steps", type=int, default=5)
    ap.add_argument("--skip-full", action="store_true")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    out = {"device": args.device, "torch_threads": torch.get_num_threads(), "machine": platform.machine(),
           "torch": torch.__version__}
    out["tiny_training"] = tiny_training_throughput(args.steps, batch=8, window=8, device=args.device)
    w1 = streaming_latency(1, args.stream_steps, args.device)
    w8 = streaming_latency(8, args.stream_steps, args.device)
    out["tiny_streaming"] = {"w1": w1, "w8": w8, "w8_over_w1_p50": round(w8["p50_ms"] / w1["p50_ms"], 3)}
    if not args.skip_full:
        out["full_size_kosmos2_random"] = full_size(args.device, args.full_steps)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
