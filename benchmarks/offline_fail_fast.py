"""How fast `mobile-vla train --config configs/kosmos2.yaml` fails without a local Kosmos-2.

Runs the command in a subprocess with no local copy of the weights (an empty Hugging Face
cache), twice: with offline mode on (``HF_HUB_OFFLINE=1``) and off (the hub is then probed; on
a machine that cannot reach it the probe gives up within a second). Reports the wall time of
the whole process (Python, torch and Lightning imports included), the time from entering the
command to the error (measured in-process: config loaded, processor built), and the message.

Usage: ``.venv/bin/python benchmarks/offline_fail_fast.py``; prints one JSON object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IN_PROCESS = """
import sys, time
from mobile_vla.train.config import load_train_config
from mobile_vla.errors import MobileVLAError
start = time.perf_counter()
try:
    from mobile_vla.train.checkpoint import build_processor
    build_processor(load_train_config(sys.argv[1]))
except MobileVLAError as exc:
    print(f"{time.perf_counter() - start:.3f}\\t{exc}")
"""


def run(offline: bool, cache: str) -> dict:
    env = {**os.environ, "HF_HOME": cache, "HF_HUB_OFFLINE": "1" if offline else "0",
           "TRANSFORMERS_OFFLINE": "1" if offline else "0"}
    config = str(ROOT / "configs" / "kosmos2.yaml")
    t = time.perf_counter()
    cli = subprocess.run([sys.executable, "-m", "mobile_vla.cli", "train", "--config", config],
                         env=env, capture_output=True, text=True, timeout=300)
    process_s = time.perf_counter() - t
    step = subprocess.run([sys.executable, "-c", IN_PROCESS, config], env=env, capture_output=True, text=True,
                          timeout=300)
    seconds, _, message = step.stdout.strip().partition("\t")
    return {"offline_mode": offline, "exit_code": cli.returncode, "process_seconds": round(process_s, 2),
            "seconds_to_error": float(seconds) if seconds else None,
            "message": cli.stderr.strip().splitlines()[-1] if cli.stderr.strip() else None,
            "in_process_message": message or step.stderr.strip()[-300:]}


def main() -> None:
    with tempfile.TemporaryDirectory() as cache:
        print(json.dumps({"runs": [run(True, cache), run(False, cache)]}, indent=2))


if __name__ == "__main__":
    main()
