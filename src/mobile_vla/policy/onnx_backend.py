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
import time
from pathlib import Path
from typing import Any

import numpy as np

from mobile_vla.data.odometry import DEFAULT_FRAME_PERIOD
from mobile_vla.errors import MobileVLAError
from mobile_vla.policy.session import StreamingSession, check_batch
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

    no_side_route: str | None = None  # a deployment's convention for no-side requests (load_policy)

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
    def odometry_dt(self) -> float:
        """Seconds each predicted command drives the robot (exports before it was recorded: the default)."""
        return float(self.manifest.get("odometry_dt", DEFAULT_FRAME_PERIOD))

    @property
    def metadata(self) -> dict[str, Any]:
        return {**self.manifest["metadata"], "backend": f"onnx-{self.variant}"}

    def run(self, graph: str, **inputs: np.ndarray) -> np.ndarray:
        """Run one graph; inputs it does not take (e.g. tokens a graph ignores) are left out."""
        wanted = self._inputs[graph]
        return self.graphs[graph].run(None, {k: v for k, v in inputs.items() if k in wanted})[0]

    def new_session(self, instruction: str) -> OnnxSession:
        return OnnxSession(self, instruction)

    def step_batch(self, sessions: list[OnnxSession], frames: list[np.ndarray], channel_orders: list[str],
                   timing: dict[str, float] | None = None) -> list[np.ndarray]:
        """One step of B distinct sessions: one frame-graph run for the batch, one head-graph run
        per history length among them; each session gets what its own ``step`` would give.

        As the torch backend's :func:`mobile_vla.policy.streaming.step_batch`, every frame is
        checked and resized before any session changes. ONNX Runtime releases the GIL for a whole
        graph run, which lets a server's event loop and resizing threads work meanwhile.
        """
        check_batch(sessions, frames)
        started = time.perf_counter()
        resized = np.stack([self.processor.resize_frame(f, o) for f, o in zip(frames, channel_orders)])
        pixels = self.processor.normalize_resized_np(resized)  # (B, 3, S, S)
        tokens = {k: np.concatenate([s._tokens[k] for s in sessions]) for k in sessions[0]._tokens}
        modelled = time.perf_counter()
        features = self.run("frame", pixel_values=pixels, **tokens)  # (B, K', H)
        for session, feature in zip(sessions, features):
            session._push(feature)
        # The head graph returns the chunk of its window's newest frame, so sessions run the head
        # together per history length (once warmed up, every session's window is W frames long).
        chunks: list[np.ndarray | None] = [None] * len(sessions)
        by_length: dict[int, list[int]] = {}
        for b, session in enumerate(sessions):
            by_length.setdefault(len(session._features), []).append(b)
        for group in by_length.values():
            actions = self.run("head", **_head_inputs([sessions[b] for b in group]))  # (G, N, D) normalised
            for b, chunk in zip(group, actions):
                chunks[b] = sessions[b]._commanded(np.asarray(self.processor.unnormalize_actions(chunk), np.float32))
        if timing is not None:
            timing["preprocess_ms"] = (modelled - started) * 1e3
            timing["model_ms"] = (time.perf_counter() - modelled) * 1e3
        return chunks


class OnnxSession(StreamingSession):
    """One robot's stream of frames under one instruction (ONNX Runtime, numpy arrays)."""

    policy: OnnxPolicy

    def _encode_instruction(self, instruction: str) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        p = self.policy
        tokens = p.processor.token_arrays([instruction])
        return tokens, p.run("instruction", **tokens) if "instruction" in p.graphs else None

    def _encode_frame(self, frame: np.ndarray, channel_order: str) -> np.ndarray:
        p = self.policy
        pixels = p.processor.pixel_values_np(frame[None], channel_order=channel_order)
        return p.run("frame", pixel_values=pixels, **self._tokens)[0]  # (K', H)

    def _chunk(self) -> np.ndarray:
        p = self.policy
        actions = p.run("head", **_head_inputs([self]))[0]  # (N, D) normalised
        return np.asarray(p.processor.unnormalize_actions(actions), np.float32)


def _head_inputs(sessions: list[OnnxSession]) -> dict[str, np.ndarray]:
    """The head graph's inputs for sessions whose windows are equally long: features
    ``(G, T, K', H)``, and those of instruction ``(G, E)``, steps ``(G, T)`` and odometry
    ``(G, T, 2)`` the graph takes (built only then: this is the serving hot path)."""
    wanted = sessions[0].policy._inputs["head"]
    inputs = {"features": np.stack([np.stack(s._features) for s in sessions])}
    if "instruction" in wanted:
        inputs["instruction"] = np.concatenate([s._instr for s in sessions])
    if "steps" in wanted:
        inputs["steps"] = np.stack([s.window_steps() for s in sessions])
    if "odometry" in wanted:
        inputs["odometry"] = np.stack([s.window_odometry() for s in sessions])
    return inputs
