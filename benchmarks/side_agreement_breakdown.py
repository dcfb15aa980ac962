"""Where does a checkpoint's side agreement come from? (docs/grounding.md)

Runs the offline evaluation's paired predictions (each window under its instruction and the
mirrored one) on a folder of paired episodes and splits the lateral sign agreement by the size
of the demonstrations' lateral difference and by chunk step. Prints one JSON object.

    .venv/bin/python benchmarks/side_agreement_breakdown.py --checkpoint outputs/demo/checkpoint \\
        --data outputs/demo/heldout
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from mobile_vla import Policy
from mobile_vla.eval.grounding import LATERAL, SIDE_DIFFERENCE
from mobile_vla.eval.offline import evaluate_offline

BINS = ((0.05, 0.2), (0.2, 0.5), (0.5, 1.0), (1.0, float("inf")))  # m/s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True)
    args = ap.parse_args()
    result = evaluate_offline(Policy.from_checkpoint(args.checkpoint), args.data, progress=False)
    p = result.pop("_paired")
    mask = p["mask_mirror"]  # (M, N)
    dp = (p["pred"] - p["pred_mirror"])[..., LATERAL]  # (M, N)
    dd = (p["target"] - p["target_mirror"])[..., LATERAL]
    agree = np.sign(dp) == np.sign(dd)

    choices = mask & (abs(dd) > SIDE_DIFFERENCE)
    step = np.broadcast_to(np.arange(mask.shape[1]), mask.shape)

    def share(sel: np.ndarray) -> dict:
        n = int(sel.sum())
        return {"steps": n, "agreement": round(float(agree[sel].mean()), 3) if n else None}

    report = {
        "grounding": result["grounding"],
        "by_lateral_difference_m_s": {f"{lo}-{hi}": share(mask & (abs(dd) > lo) & (abs(dd) <= hi)) for lo, hi in BINS},
        "by_chunk_step_side_choices": [share(choices & (step == k)) for k in range(mask.shape[1])],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
