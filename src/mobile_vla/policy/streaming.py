"""The torch policy: ``Policy.from_checkpoint(dir).new_session(instruction).step(frame)``.

A :class:`Session` keeps the per-frame features ``(K', H)`` of its last W frames and the
instruction's tokens and embedding, so a step costs one frame's backbone pass plus the head
over the cached window, whatever W is. Sessions share the (read-only) model and nothing else.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mobile_vla.model.vla import MobileVLA
from mobile_vla.policy.checkpoint import load_checkpoint, read_state
from mobile_vla.policy.session import StreamingSession, check_batch
from mobile_vla.processing.processor import Processor
from mobile_vla.vocab.actions import ACTION_NAMES, ACTION_UNITS


class Policy:
    """A loaded model + processor; opens independent streaming sessions (a :class:`PolicyBackend`).

    ``config`` is the checkpoint's training configuration (a dict), ``state`` its trainer state.
    """

    no_side_route: str | None = None  # a deployment's convention for no-side requests (load_policy)

    def __init__(self, model: MobileVLA, processor: Processor, config: dict | None = None,
                 state: dict | None = None, device: str | torch.device = "cpu"):
        self.model = model.to(device).eval()
        self.processor = processor
        self.config = config or {}
        self.state = state or {}
        self.device = torch.device(device)

    @classmethod
    def from_checkpoint(cls, directory: str | Path, device: str | torch.device = "cpu") -> Policy:
        model, config, processor = load_checkpoint(directory, device)
        return cls(model, processor, config, read_state(directory), device)

    @property
    def window_size(self) -> int:
        return self.model.config.head.window_size

    @property
    def odometry_dt(self) -> float:
        """Seconds each predicted command drives the robot (a session's dead reckoning)."""
        return self.model.config.head.odometry_dt

    @property
    def chunk_size(self) -> int:
        return self.model.config.head.fwd_pred_next_n

    @property
    def metadata(self) -> dict[str, Any]:
        backbone = self.model.config.backbone
        return {
            "model": f"mobile-vla/{backbone.preset}",
            "head": self.model.config.head.type,
            "action_names": list(ACTION_NAMES[: self.processor.action_dim]),
            "units": list(ACTION_UNITS[: self.processor.action_dim]),
            "chunk_size": self.chunk_size,
            "window_size": self.window_size,
            "image_size": self.processor.config.image_size,
            "instruction_format": "free text naming the side to pass the obstacle on, e.g. "
                                  "'Go around the box on the left and reach the cup'",
            "step": int(self.state.get("step", 0)),
        }

    def new_session(self, instruction: str) -> Session:
        return Session(self, instruction)

    def step_batch(self, sessions: list[Session], frames: list[np.ndarray], channel_orders: list[str],
                   timing: dict[str, float] | None = None) -> list[np.ndarray]:
        """One step of several sessions as one forward pass; see :func:`step_batch`."""
        return step_batch(self, sessions, frames, channel_orders, timing)


class Session(StreamingSession):
    """One robot's stream of frames under one instruction (torch)."""

    policy: Policy

    def _encode_instruction(self, instruction: str) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        model, device = self.policy.model, self.policy.device
        tokens = {k: v.to(device) for k, v in self.policy.processor.tokenize([instruction]).items()}
        with torch.inference_mode():
            return tokens, model.encode_instruction(tokens, [instruction])

    def _encode_frame(self, frame: np.ndarray, channel_order: str) -> torch.Tensor:
        p = self.policy
        pixels = p.processor.process_images(frame[None], channel_order=channel_order).to(p.device)
        with torch.inference_mode():
            return p.model.encode_frames(pixels, self._tokens)[0]  # (K', H)

    def _chunk(self) -> np.ndarray:
        p = self.policy
        with torch.inference_mode():
            window = torch.stack(list(self._features)).unsqueeze(0)  # (1, T, K', H), T <= W
            out = p.model.head(window, self._instr, **_window_state(p, [self], window.device))
            chunk = p.processor.unnormalize_actions(out.actions[0, -1].float())
        return chunk.cpu().numpy().astype(np.float32)


def step_batch(policy: Policy, sessions: list[Session], frames: list[np.ndarray], channel_orders: list[str],
               timing: dict[str, float] | None = None) -> list[np.ndarray]:
    """Step B distinct sessions of ``policy`` at once: each gets what its own ``step`` would give.

    ``frames[b]``: ``(H_b, W_b, 3)`` uint8 (sizes may differ) in ``channel_orders[b]`` → B chunks
    ``(N, 2)`` float32 in m/s. Every frame is checked and resized before any session changes, so
    a bad input raises with all histories untouched. Sessions may be at different points of their
    episodes: their windows ``(T_b, K', H)`` are right-padded to ``(B, max T_b, K', H)``; the head's
    LSTM is causal, so each session's chunk is read at its own last frame ``T_b - 1`` and padding
    never reaches it. ``timing`` (optional) receives ``preprocess_ms`` and ``model_ms``.
    """
    check_batch(sessions, frames)
    started = time.perf_counter()
    resized = np.stack([policy.processor.resize_frame(f, o) for f, o in zip(frames, channel_orders)])
    pixels = policy.processor.normalize_resized(resized).to(policy.device)  # (B, 3, S, S)
    tokens = {k: torch.cat([s._tokens[k] for s in sessions]) for k in sessions[0]._tokens}  # (B, L)
    modelled = time.perf_counter()
    with torch.inference_mode():
        features = policy.model.encode_frames(pixels, tokens)  # (B, K', H)
        for session, feature in zip(sessions, features):
            session._push(feature)
        lengths = [len(s._features) for s in sessions]
        window = features.new_zeros(len(sessions), max(lengths), *features.shape[1:])  # (B, T, K', H)
        for b, session in enumerate(sessions):
            window[b, : lengths[b]] = torch.stack(list(session._features))
        instr = None if sessions[0]._instr is None else torch.cat([s._instr for s in sessions])  # (B, E)
        out = policy.model.head(window, instr, **_window_state(policy, sessions, window.device))
        last = torch.as_tensor(lengths, device=window.device) - 1
        actions = out.actions[torch.arange(len(sessions), device=window.device), last]  # (B, N, D)
        chunks = policy.processor.unnormalize_actions(actions.float()).cpu().numpy().astype(np.float32)
    if timing is not None:
        timing["preprocess_ms"] = (modelled - started) * 1e3
        timing["model_ms"] = (time.perf_counter() - modelled) * 1e3
    return [session._commanded(chunk) for session, chunk in zip(sessions, chunks)]


def _window_state(policy: Policy, sessions: list[Session], device: torch.device) -> dict[str, torch.Tensor]:
    """The head's per-frame state inputs the model reads (``steps`` ``(B, T)``, ``odometry``
    ``(B, T, 2)``), right-padded to the longest window; padding never reaches a chunk. Built only
    for the inputs the head reads: this is the serving hot path."""
    head = policy.model.config.head
    wanted = [(name, read) for name, on, read in (
        ("steps", head.step_input, lambda s: torch.from_numpy(s.window_steps())),
        ("odometry", head.odometry_input, lambda s: torch.from_numpy(s.window_odometry()))) if on]
    if not wanted:
        return {}
    length = max(len(s._features) for s in sessions)
    state = {}
    for name, read in wanted:
        rows = [read(s) for s in sessions]
        padded = rows[0].new_zeros((len(rows), length, *rows[0].shape[1:]))
        for b, row in enumerate(rows):
            padded[b, : len(row)] = row
        state[name] = padded.to(device)
    return state
