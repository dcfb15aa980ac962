"""Training-time augmentation: left/right mirroring and colour jitter.

Mirroring creates the same scene with the other instruction, so that the side cannot be
read off the image alone and only the instruction tells the sides apart. A mirrored sample has:

- frames flipped horizontally;
- the instruction with left and right swapped (:func:`mirror_instruction`);
- ``linear_y`` and ``angular_z`` negated (``linear_x`` unchanged);
- counterfactual labels that are the mirror of the original counterfactual labels: in the
  mirrored world, the mirrored instruction of ``mirror(instruction)`` is ``instruction``,
  whose expert action is the mirror of the original ``counterfactual_actions``.
"""

from __future__ import annotations

import numpy as np
import torch

from mobile_vla.vocab.instructions import mirror_instruction

#: Sign applied to ``[linear_x, linear_y, angular_z]`` by a left/right mirror.
MIRROR_SIGNS = np.array([1.0, -1.0, -1.0], dtype=np.float32)


def mirror_actions(actions: np.ndarray) -> np.ndarray:
    """``(..., 3)`` physical ``[linear_x, linear_y, angular_z]`` → mirrored ``(..., 3)``."""
    a = np.asarray(actions, dtype=np.float32)
    return a * MIRROR_SIGNS[: a.shape[-1]]


def mirror_frames(frames: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    """Flip left-right: numpy ``(..., H, W, C)`` along ``W``, or torch ``(..., C, H, W)`` along ``W``."""
    if isinstance(frames, torch.Tensor):
        return frames.flip(-1)
    return np.ascontiguousarray(np.asarray(frames)[..., :, ::-1, :])


def mirror_labels(
    instruction: str, actions: np.ndarray, counterfactual: np.ndarray | None
) -> tuple[str, np.ndarray, np.ndarray | None]:
    """The labels of a mirrored sample: instruction, actions ``(T, 3)``, counterfactual ``(T, 3)`` | None."""
    cf = None if counterfactual is None else mirror_actions(counterfactual)
    return mirror_instruction(instruction), mirror_actions(actions), cf


def color_jitter(frames: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    """Random brightness, contrast and saturation, the same for every frame of a window.

    Args:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        strength: each factor is drawn from ``[1 - strength, 1 + strength]``; 0 returns the input.

    Returns:
        ``(T, H, W, 3)`` uint8 RGB.
    """
    if strength <= 0:
        return frames
    brightness, contrast, saturation = rng.uniform(1 - strength, 1 + strength, size=3)
    x = frames.astype(np.float32) * brightness
    mean = x.mean(axis=(-3, -2, -1), keepdims=True)
    x = (x - mean) * contrast + mean
    gray = x @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    x = (x - gray[..., None]) * saturation + gray[..., None]
    return np.clip(x, 0, 255).astype(np.uint8)
