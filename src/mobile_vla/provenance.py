"""What a run's numbers depend on besides its settings: package versions, CPU kernels, threads.

Recorded in ``report.json`` (``environment``) so two reports can be compared: on one machine the
same settings and seed give identical figures; across machines, floating-point results may
differ with the CPU's vector capability (which kernels torch dispatches to) and the number of
threads (how reductions are split), and with library versions (docs/reproducibility.md).
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

PACKAGES = ("mobile-vla", "torch", "numpy", "lightning", "transformers", "mujoco", "h5py", "safetensors",
            "tokenizers", "opencv-python-headless", "peft")
THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Versions, platform, CPU capability and thread counts of this process."""
    import torch

    return {
        "packages": {p: _version(p) for p in PACKAGES if _version(p) is not None},
        "python": platform.python_version(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "thread_env": {k: os.environ[k] for k in THREAD_VARIABLES if k in os.environ},
        "cuda": torch.version.cuda if torch.cuda.is_available() else None,
    }
