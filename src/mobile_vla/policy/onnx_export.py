"""Export a checkpoint to ONNX at the streaming policy's split (``mobile-vla export --format onnx``).

The streaming session (:mod:`mobile_vla.policy.streaming`) runs three parts; each becomes a graph:

- ``instruction.onnx``: tokens ``(B, L)`` x4 → instruction embedding ``(B, E)`` (only when a
  grounding module reads it);
- ``frame.onnx``: pixel values ``(B, 3, S, S)`` + tokens ``(B, L)`` → per-frame features ``(B, K', H)``;
- ``head.onnx``: the cached window ``(B, T, K', H)`` (T ≤ W) [+ instruction ``(B, E)``] → the last
  frame's normalised chunk ``(B, N, D)``.

B (and T) are dynamic axes, so a server can batch sessions. The directory also holds the
processor (``processor.json`` + ``tokenizer/``) and ``manifest.json``; ``quantize="int8"`` adds
dynamically quantised copies (weights int8, activations quantised at run time), picked at load
time (:mod:`mobile_vla.policy.onnx_backend`).
"""

from __future__ import annotations

import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from mobile_vla.errors import MobileVLAError
from mobile_vla.jsonio import write_json
from mobile_vla.policy.onnx_backend import MANIFEST_FILE, MANIFEST_FORMAT, OnnxPolicy
from mobile_vla.policy.streaming import Policy
from mobile_vla.vocab.batch import TOKEN_KEYS

log = logging.getLogger(__name__)

OPSET = 17
GRAPHS = ("instruction", "frame", "head")


class _Instruction(nn.Module):
    def __init__(self, policy: Policy):
        super().__init__()
        self.model = policy.model

    def forward(self, input_ids, attention_mask, image_embeds_position_mask, action_token_mask):
        tokens = dict(zip(TOKEN_KEYS, (input_ids, attention_mask, image_embeds_position_mask, action_token_mask)))
        return self.model.encode_instruction(tokens)


class _Frame(nn.Module):
    def __init__(self, policy: Policy):
        super().__init__()
        self.model = policy.model

    def forward(self, pixel_values, input_ids, attention_mask, image_embeds_position_mask, action_token_mask):
        tokens = dict(zip(TOKEN_KEYS, (input_ids, attention_mask, image_embeds_position_mask, action_token_mask)))
        return self.model.encode_frames(pixel_values, tokens)


class _Head(nn.Module):
    """The head over a window; ``inputs`` names the positional arguments (features first, then
    whichever of instruction, steps and odometry this model reads)."""

    def __init__(self, policy: Policy, inputs: list[str]):
        super().__init__()
        self.model, self.inputs = policy.model, inputs

    def forward(self, *args):
        named = dict(zip(self.inputs, args))
        out = self.model.head(named["features"], named.get("instruction"), steps=named.get("steps"),
                              odometry=named.get("odometry"))
        return out.actions[:, -1]  # the newest frame's chunk


def export_onnx(checkpoint: str | os.PathLike, out: str | os.PathLike, quantize: str | None = None) -> dict[str, Any]:
    """Write the ONNX export of ``checkpoint`` to ``out`` (atomically); returns the manifest."""
    if quantize not in (None, "int8"):
        raise MobileVLAError(f"--quantize must be int8 (or omitted), got {quantize!r}")
    policy = Policy.from_checkpoint(checkpoint, "cpu")
    model = policy.model
    if model.sentence is not None:
        raise MobileVLAError(f"{checkpoint}: the sentence instruction encoder is a separate Hugging Face model; "
                             "ONNX export covers the text_states and embeddings encoders")
    out = Path(out)
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        manifest = _export_into(policy, tmp, quantize)
        manifest["source_checkpoint"] = str(Path(checkpoint).resolve())
        write_json(tmp / MANIFEST_FILE, manifest)  # last: a directory with a manifest is a complete export
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def _export_into(policy: Policy, out: Path, quantize: str | None) -> dict[str, Any]:
    model, processor = policy.model, policy.processor
    S = processor.config.image_size
    tokens = processor.tokenize(["Go around the box on the left and reach the cup"] * 2)
    token_args = tuple(tokens[k] for k in TOKEN_KEYS)
    token_axes = {k: {0: "batch"} for k in TOKEN_KEYS}
    pixels = torch.zeros(2, 3, S, S)
    with torch.inference_mode():
        instr = model.encode_instruction(tokens)
        feats = model.encode_frames(pixels, tokens)
    window = feats.unsqueeze(1).repeat(1, 2, 1, 1)  # (B, T, K', H)
    files: dict[str, str | None] = {"instruction": None}
    if instr is not None:
        files["instruction"] = _export(_Instruction(policy), token_args, list(TOKEN_KEYS), ["instruction"],
                                       {**token_axes, "instruction": {0: "batch"}}, out / "instruction.onnx")
    files["frame"] = _export(_Frame(policy), (pixels, *token_args), ["pixel_values", *TOKEN_KEYS], ["features"],
                             {"pixel_values": {0: "batch"}, **token_axes, "features": {0: "batch"}},
                             out / "frame.onnx")
    # The head graph's inputs: the window's features, and what else this head reads — the
    # instruction embedding (B, E), each frame's step (B, T) int64, its odometry (B, T, 2) m.
    head = model.config.head
    head_example = {"features": window, "instruction": instr,
                    "steps": torch.zeros(window.shape[:2], dtype=torch.int64) if head.step_input else None,
                    "odometry": torch.zeros(*window.shape[:2], 2) if head.odometry_input else None}
    head_inputs = [name for name, value in head_example.items() if value is not None]
    files["head"] = _export(_Head(policy, head_inputs), tuple(head_example[n] for n in head_inputs), head_inputs,
                            ["actions"], {"features": {0: "batch", 1: "time"}, "instruction": {0: "batch"},
                                          "steps": {0: "batch", 1: "time"}, "odometry": {0: "batch", 1: "time"},
                                          "actions": {0: "batch"}}, out / "head.onnx")
    processor.save(out)
    variants = {"fp32": files}
    if quantize == "int8":
        variants["int8"] = {name: _quantize(out, f) for name, f in files.items()}
    return {
        "format": MANIFEST_FORMAT,
        "version": 1,
        "opset": OPSET,
        "variants": variants,
        "metadata": policy.metadata,
        "window_size": policy.window_size,
        "chunk_size": policy.chunk_size,
        "feature_shape": list(feats.shape[1:]),  # (K', H)
        "instruction_dim": None if instr is None else int(instr.shape[-1]),
        "odometry_dt": head.odometry_dt,  # what a session integrates its commands over
        "config": policy.config,
        "state": policy.state,
    }


def _export(module: nn.Module, args: tuple, inputs: list[str], outputs: list[str], axes: dict, path: Path) -> str:
    module.eval()
    axes = {k: v for k, v in axes.items() if k in inputs or k in outputs}
    with torch.no_grad(), warnings.catch_warnings():
        # The layout checks in the backbone run once on the example and are traced as constants.
        warnings.simplefilter("ignore")
        torch.onnx.export(module, args, str(path), input_names=inputs, output_names=outputs, dynamic_axes=axes,
                          opset_version=OPSET, dynamo=False, do_constant_folding=True)
    return path.name


def _quantize(out: Path, name: str | None) -> str | None:
    if name is None:
        return None
    from onnxruntime.quantization import QuantType, quantize_dynamic

    target = out / name.replace(".onnx", ".int8.onnx")
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # the quantiser logs every tensor it leaves in float to the root logger
    try:
        quantize_dynamic(str(out / name), str(target), weight_type=QuantType.QInt8)
    finally:
        root.setLevel(level)
    return target.name


def parity(policy_dir: str | os.PathLike, export_dir: str | os.PathLike, frames: np.ndarray, instruction: str,
           variant: str = "fp32") -> float:
    """Largest absolute difference (m/s) between the torch and ONNX sessions' chunks over ``frames``."""
    torch_session = Policy.from_checkpoint(policy_dir).new_session(instruction)
    onnx_session = OnnxPolicy(export_dir, variant).new_session(instruction)
    worst = 0.0
    for frame in frames:
        a, b = torch_session.step(frame), onnx_session.step(frame)
        worst = max(worst, float(np.abs(a - b).max()))
    return worst
