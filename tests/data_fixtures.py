"""Builders of episode files for tests: the real robot's layout, simulator-like files, bad files.

Real-format files are written with raw h5py exactly as the robot writes them (720x1280 BGR
gzip frames, ``action_event_types``, optional ``S256`` instruction, file attributes), not
through ``write_episode``, so the tests prove the reader accepts the robot's files unchanged.

Frames encode what tests need to check: frame ``t`` has BGR ``(10, 100 + t, 200)`` on its left
half and ``(200, 100 + t, 10)`` on its right half, so the green channel gives the frame index,
red-vs-blue gives the channel order, and the halves give the flip direction.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from mobile_vla.data.episode import Episode, Scenario, format_episode_name, write_episode
from mobile_vla.processing.processor import Processor, ProcessorConfig
from mobile_vla.vocab.actions import TELEOP_SPEED
from mobile_vla.vocab.instructions import canonical_instruction

REAL_SIZE = (720, 1280)

LEFT_BGR = (10, 200)  # (blue, red) of the left half
RIGHT_BGR = (200, 10)  # (blue, red) of the right half


def teleop_actions(side: str, num_frames: int = 18) -> np.ndarray:
    """A core-episode key pattern ``(T, 3)``: start (zero), forward, strafe to ``side``, forward, strafe back."""
    v, sign = TELEOP_SPEED, 1.0 if side == "left" else -1.0
    keys = [(v, 0.0)] * 3 + [(0.0, sign * v)] * 4 + [(v, 0.0)] * 4 + [(0.0, -sign * v)] * 3 + [(v, sign * v)] * 3
    actions = np.zeros((num_frames, 3), np.float32)
    for t in range(1, num_frames):
        actions[t, :2] = keys[(t - 1) % len(keys)]
    return actions


def frame_bgr(t: int, size: tuple[int, int] = REAL_SIZE, texture: np.random.Generator | None = None) -> np.ndarray:
    """Frame ``t`` ``(H, W, 3)`` uint8 BGR (see module doc); ``texture`` adds camera-like noise."""
    h, w = size
    frame = np.empty((h, w, 3), np.uint8)
    frame[:, : w // 2] = (LEFT_BGR[0], 100 + t, LEFT_BGR[1])
    frame[:, w // 2 :] = (RIGHT_BGR[0], 100 + t, RIGHT_BGR[1])
    if texture is not None:
        noise = texture.integers(-8, 9, size=(h, w, 1), dtype=np.int16)
        frame = np.clip(frame.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return frame


def real_episode_name(side: str, stamp: str = "20251106_145248", target: str | None = None) -> str:
    return format_episode_name(Scenario(side=side, boxes=1, orientation="hori", target=target), stamp)


def write_real_episode(
    directory: Path,
    side: str = "left",
    layout: str = "images",
    with_instruction: bool = True,
    num_frames: int = 18,
    size: tuple[int, int] = REAL_SIZE,
    actions: np.ndarray | None = None,
    instruction: str | None = None,
    name: str | None = None,
    stamp: str = "20251106_145248",
    texture: np.random.Generator | None = None,
) -> Path:
    """Write one episode in the real robot's layout (``images`` or ``observations/images``)."""
    path = Path(directory) / (name or real_episode_name(side, stamp))
    path.parent.mkdir(parents=True, exist_ok=True)
    actions = teleop_actions(side, num_frames) if actions is None else np.asarray(actions, np.float32)
    h, w = size
    with h5py.File(path, "w") as f:
        images = f.create_dataset(
            layout, shape=(num_frames, h, w, 3), dtype=np.uint8, chunks=(1, h, w, 3), compression="gzip"
        )
        for t in range(num_frames):
            images[t] = frame_bgr(t, size, texture)
        f.create_dataset("actions", data=actions, compression="gzip")
        events = ["episode_start"] + ["start_action"] * (num_frames - 1)
        f.create_dataset("action_event_types", data=np.array(events, dtype=h5py.string_dtype("utf-8")))
        if with_instruction:
            text = instruction or canonical_instruction(side)
            f.create_dataset("language_instruction", data=np.array([text.encode()], dtype="S256"))
        f.attrs.update(
            {
                "episode_name": path.stem,
                "total_duration": 0.4 * num_frames,
                "num_frames": num_frames,
                "action_chunk_size": 8,
                "obstacle_layout_type": "hori",
                "time_period": "afternoon",
                "collection_datetime": "2025-11-06T14:52:48",
                "collection_hour": 14,
                "collection_minute": 52,
            }
        )
    return path


def write_sim_episode(
    directory: Path,
    scene_id: int,
    side: str = "left",
    num_frames: int = 12,
    size: int = 112,
    with_counterfactual: bool = True,
    instruction: str | None = None,
) -> Path:
    """A small simulator-like episode (``write_episode``) with ``scene_id`` and counterfactual labels."""
    actions = teleop_actions(side, num_frames) * 0.5
    counterfactual = teleop_actions("right" if side == "left" else "left", num_frames) * 0.5
    episode = Episode(
        images=np.stack([frame_bgr(t, (size, size)) for t in range(num_frames)]),
        actions=actions,
        instruction=instruction or canonical_instruction(side),
        counterfactual_actions=counterfactual if with_counterfactual else None,
        attrs={"scene_id": f"scene{scene_id:04d}", "scene_seed": scene_id, "side": side},
    )
    name = format_episode_name(Scenario(side=side), stamp=f"20260101_{scene_id:06d}", suffix=f"s{scene_id:04d}")
    return write_episode(Path(directory) / name, episode)


def write_sim_pair(directory: Path, scene_id: int, **kwargs) -> tuple[Path, Path]:
    """The two episodes of one simulated scene: left and right instruction."""
    return tuple(write_sim_episode(directory, scene_id, side, **kwargs) for side in ("left", "right"))


#: problem → (the key the error names, a regex its message matches)
BAD_CASES = {
    "truncated": (None, "truncated"),
    "missing_images": ("images", "missing key"),
    "missing_actions": ("actions", "missing key"),
    "image_shape": ("images", r"expected shape \(T, H, W, 3\)"),
    "image_dtype": ("images", "expected dtype uint8"),
    "action_shape": ("actions", r"expected shape \(T, 3\)"),
    "length_mismatch": ("actions", "expected the same length"),
    "nan_actions": ("actions", "non-finite"),
    "empty": ("actions", "empty episode"),
    "no_instruction": ("language_instruction", "no instruction"),
}


def write_bad_episode(directory: Path, problem: str, size: tuple[int, int] = (48, 64)) -> Path:
    """A file with exactly one of the :data:`BAD_CASES` problems (small frames: fast)."""
    directory = Path(directory)
    if problem == "truncated":
        path = write_real_episode(directory, size=size, name="episode_20251106_000001_1box_hori_left_core_far.h5")
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
        return path
    name = "recording_0001.h5" if problem == "no_instruction" else f"episode_20251106_000002_1box_hori_left_{problem}.h5"
    path = directory / name
    T, (h, w) = 6, size
    images = np.zeros((T, h, w, 3), np.uint8)
    actions = teleop_actions("left", T)
    if problem == "image_shape":
        images = np.zeros((T, h, w), np.uint8)
    elif problem == "image_dtype":
        images = images.astype(np.float32)
    elif problem == "action_shape":
        actions = np.zeros((T, 5), np.float32)
    elif problem == "length_mismatch":
        actions = actions[:-1]
    elif problem == "nan_actions":
        actions[3, 1] = np.nan
    elif problem == "empty":
        images, actions = images[:0], actions[:0]
    with h5py.File(path, "w") as f:
        if problem != "missing_images":
            f.create_dataset("images", data=images)
        if problem != "missing_actions":
            f.create_dataset("actions", data=actions)
        if problem != "no_instruction":
            f.create_dataset("language_instruction", data=np.array([b"Navigate to the left"], dtype="S256"))
    return path


def tiny_processor(image_size: int = 112, actions: np.ndarray | None = None) -> Processor:
    """The offline ``tiny`` processor, with action statistics fitted on ``actions`` (default: teleop)."""
    processor = Processor(ProcessorConfig(image_size=image_size))
    if actions is None:
        actions = np.concatenate([teleop_actions("left"), teleop_actions("right")])
    processor.fit_action_stats(actions)
    return processor
