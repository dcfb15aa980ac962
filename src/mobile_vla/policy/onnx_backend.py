"""The ``onnx`` policy backend: an export directory run with ONNX Runtime, without torch.

``load_policy(EXPORT_DIR)`` (so ``eval-sim --checkpoint EXPORT_DIR`` and ``serve --checkpoint
EXPORT_DIR``) gives an :class:`OnnxPolicy`. Its sessions do what the torch session does
(:mod:`mobile_vla.policy.streaming`): the instruction is encoded once, each frame once, and the
head re-runs over the cached window of per-frame features.

The variant (``fp32``, or ``int8`` when the export was made with ``--quantize int8``) is chosen
at load time: ``OnnxPolicy(dir, variant="int8")``, or the environment variable
``MOBILE_VLA_ONNX_VARIANT=int8`` for the command line. ``MOBILE_VLA_ONNX_THREADS`` caps ONNX
Runtime's threads per graph (default: its own choice, all cores).
"""

from __future__ import annotations

import json
import os
from collections import deque
from pathlib import Path
from typing import Any

import numpy as np

from mobile_vla.errors import MobileVLAError
from mobile_vla.processing.processor import Processor

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = "mobile-vla-onnx"
VARIANT_ENV = "MOBILE_VLA_ONNX_VARIANT"
THREADS_ENV = "MOBILE_VLA_ONNX_THREADS"


def is_export(path: Path) -> bool:
    manifest = Path(path) / MANIFEST_FILE
    if not manifest.is_file():
        return False
    try:
        return json.loads(manifest.read_text()).get("format") == MANIFEST_FORMAT
    except (OSError, json.JSONDecodeError):
        return False


class OnnxPolicy:
    """An ONNX export + its processor; opens independent streaming sessions (a ``PolicyBackend``)."""

    def __init__(self, directory: str | os.PathLike, variant: str | None = None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise MobileVLAError("the onnx backend needs ONNX Runtime: pip install 'mobile-vla[ecosystem]'") from None
        self.directory = Path(directory)
        path = self.directory / MANIFEST_FILE
        try:
            self.manifest: dict[str, Any] = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise MobileVLAError(f"{path}: unreadable export manifest ({exc})") from None
        self.variant = variant or os.environ.get(VARIANT_ENV) or "fp32"
        variants = self.manifest.get("variants", {})
        if self.variant not in variants:
            raise MobileVLAError(f"{path}: no {self.variant!r} variant in this export (has {sorted(variants)}); "
                                 "export with --quantize int8 for int8")
        options = ort.SessionOptions()
        if os.environ.get(THREADS_ENV):
            options.intra_op_num_threads = int(os.environ[THREADS_ENV])
        self.graphs: dict[str, Any] = {}
        for name, file in variants[self.variant].items():
            if file is None:
                continue
            if not (self.directory / file).is_file():
                raise MobileVLAError(f"{self.directory / file}: graph file missing ({path} lists it)")
            self.graphs[name] = ort.InferenceSession(str(self.directory / file), options,
                                                     providers=["CPUExecutionProvider"])
        for name in ("frame", "head"):
            if name not in self.graphs:
                raise MobileVLAError(f"{path}: the {self.variant} variant has no {name} graph")
        self.processor = Processor.load(self.directory)
        self._inputs = {name: {i.name for i in g.get_inputs()} for name, g in self.graphs.items()}

    @property
    def window_size(self) -> int:
        return int(self.manifest["window_size"])

    @property
    def chunk_size(self) -> int:
        return int(self.manifest["chunk_size"])

    @property
    def metadata(self) -> dict[str, Any]:
        return {**self.manifest["metadata"], "backend": f"onnx-{self.variant}"}

    def run(self, graph: str, **inputs: np.ndarray) -> np.ndarray:
        """Run one graph; inputs it does not take (e.g. tokens a graph ignores) are left out."""
        wanted = self._inputs[graph]
        return self.graphs[graph].run(None, {k: v for k, v in inputs.items() if k in wanted})[0]

    def new_session(self, instruction: str) -> OnnxSession:
        return OnnxSession(self, instruction)


class OnnxSession:
    """One robot's stream of frames under one instruction (see :class:`mobile_vla.policy.streaming.Session`)."""

    def __init__(self, policy: OnnxPolicy, instruction: str):
        self.policy = policy
        self._features: deque[np.ndarray] = deque(maxlen=policy.window_size)
        self._set_instruction(instruction)

    def _set_instruction(self, instruction: str) -> None:
        self.instruction = instruction
        self._tokens = self.policy.processor.token_arrays([instruction])
        self._instr = self.policy.run("instruction", **self._tokens) if "instruction" in self.policy.graphs else None

    def reset(self, instruction: str | None = None) -> None:
        self._features.clear()
        if instruction is not None:
            self._set_instruction(instruction)

    @property
    def history_length(self) -> int:
        return len(self._features)

    def step(self, frame: np.ndarray, channel_order: str = "rgb") -> np.ndarray:
        """One camera frame ``(H, W, 3)`` uint8 → the action chunk ``(N, 2)`` float32 in m/s."""
        if not isinstance(frame, np.ndarray):
            raise MobileVLAError(f"frame must be a numpy array, got {type(frame).__name__}")
        p = self.policy
        pixels = p.processor.pixel_values_np(frame[None], channel_order=channel_order)
        self._features.append(p.run("frame", pixel_values=pixels, **self._tokens)[0])  # (K', H)
        inputs = {"features": np.stack(self._features)[None]}  # (1, T, K', H)
        if self._instr is not None:
            inputs["instruction"] = self._instr
        actions = p.run("head", **inputs)[0]  # (N, D) normalised
        return np.asarray(p.processor.unnormalize_actions(actions), np.float32)
