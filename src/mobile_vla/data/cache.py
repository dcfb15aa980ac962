"""Resized frames of an episode, decoded once; for large (e.g. 720p) files, cached on disk.

A raw 720p episode is ~50 MB of gzip frames; decoding and resizing it costs far more than a
training step. Decoded episodes stay in this process's memory (least recently used first out,
within a 2 GiB budget), so datasets built again over the same files (the demo's DAgger rounds)
do not decode them again. The first load of a large file also writes the resized frames next to
the data::

    <episode dir>/.mobile_vla_cache/<stem>.<transform_id>.<source key>.npy   (T, S, S, 3) uint8 RGB

``source key`` hashes the source file's size and modification time, so editing or replacing
the episode invalidates its cache entry (stale entries of the same stem are removed). Writes
are atomic (temporary file, then rename). Small files (both sides <= 2x the target size, e.g.
simulator episodes) are decoded directly: reading them is as fast as reading a cache.
"""

from __future__ import annotations

import hashlib
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

from mobile_vla.data.episode import IMAGE_KEYS
from mobile_vla.errors import EpisodeError

log = logging.getLogger(__name__)

CACHE_DIR = ".mobile_vla_cache"
_BLOCK = 8  # frames decoded at a time: bounds peak memory for long 720p episodes

FrameTransform = Callable[[np.ndarray], np.ndarray]  # (H, W, 3) BGR uint8 -> (S, S, 3) RGB uint8


def source_key(path: Path) -> str:
    """A short hash of the file's size and modification time (changes when the file does)."""
    st = path.stat()
    return hashlib.sha1(f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]


def file_version(path: Path) -> tuple[str, int, int, int]:
    """What identifies one version of a file in this process's memory: path, size, modification
    time and inode (an atomic rewrite, tmp file then rename, gets a new inode even within the
    file system's timestamp granularity)."""
    st = path.stat()
    return str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino


def cache_path(path: Path, transform_id: str) -> Path:
    """Where the resized frames of ``path`` under ``transform_id`` are cached."""
    return path.parent / CACHE_DIR / f"{path.stem}.{transform_id}.{source_key(path)}.npy"


def needs_disk_cache(image_shape: tuple[int, ...], image_size: int) -> bool:
    """True when frames ``(H, W, 3)`` are much larger than the target ``image_size``."""
    return max(image_shape[0], image_shape[1]) > 2 * image_size


def decode_resized(path: Path, transform: FrameTransform) -> np.ndarray:
    """Decode every frame of ``path`` and apply ``transform``: ``(T, S, S, 3)`` uint8 RGB."""
    try:
        with h5py.File(path, "r") as f:
            key = next((k for k in IMAGE_KEYS if k in f), None)
            if key is None:
                raise EpisodeError(path, "missing key; expected 'images' or 'observations/images'", "images")
            images = f[key]
            out = []
            for start in range(0, images.shape[0], _BLOCK):
                block = images[start : start + _BLOCK]
                out.extend(transform(frame) for frame in block)
    except EpisodeError:
        raise
    except (OSError, ValueError) as exc:
        raise EpisodeError(path, f"cannot decode frames ({exc.__class__.__name__}: {exc})", "images") from None
    return np.stack(out)


def load_resized_frames(
    path: str | os.PathLike,
    transform: FrameTransform,
    transform_id: str,
    image_shape: tuple[int, ...],
    image_size: int,
    use_disk: bool = True,
    decode: Callable[[Path, FrameTransform], np.ndarray] = decode_resized,
) -> np.ndarray:
    """Resized RGB frames ``(T, S, S, 3)`` uint8 of one episode, through the disk cache if useful.

    Args:
        path: the episode file.
        transform: one BGR frame ``(H, W, 3)`` → ``(S, S, 3)`` RGB (the processor's ``resize_frame``).
        transform_id: names the transform (e.g. ``"s112"``); part of the cache file name.
        image_shape: ``(H, W, 3)`` of the stored frames (decides whether the disk cache pays off).
        image_size: the target size ``S``.
        use_disk: read and write the disk cache for large files.
        decode: reads and transforms every frame of ``path`` (default: an HDF5 episode file).
    """
    path = Path(path)
    if not path.is_file():  # a locator inside a dataset directory (e.g. LeRobot's): no file to key on
        return decode(path, transform)
    key = (*file_version(path), transform_id)
    frames = _MEMORY.get(key)
    if frames is None:
        frames = _load_file(path, transform, transform_id, image_shape, image_size, use_disk, decode)
        frames.setflags(write=False)  # shared by every dataset that reads this file
        _MEMORY.put(key, frames)
    return frames


def _load_file(path: Path, transform: FrameTransform, transform_id: str, image_shape: tuple[int, ...],
               image_size: int, use_disk: bool, decode: Callable[[Path, FrameTransform], np.ndarray]) -> np.ndarray:
    if not (use_disk and needs_disk_cache(image_shape, image_size)):
        return decode(path, transform)
    target = cache_path(path, transform_id)
    if target.is_file():
        try:
            frames = np.load(target, allow_pickle=False)
            if frames.ndim == 4 and frames.shape[1:] == (image_size, image_size, 3) and frames.dtype == np.uint8:
                return frames
            log.warning("%s: cache entry has shape %s; rebuilding", target, frames.shape)
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable cache entry (%s); rebuilding", target, exc)
    frames = decode(path, transform)
    _write_atomic(target, frames, stale_pattern=f"{path.stem}.{transform_id}.*.npy")
    return frames


class _FrameMemory:
    """Recently decoded episodes in memory, least recently used dropped first, within a byte budget.

    The demo's DAgger rounds build a new dataset over every earlier round's files; without this
    each round decoded them all again.
    """

    def __init__(self, budget_bytes: int):
        self.budget_bytes = budget_bytes
        self._entries: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple) -> np.ndarray | None:
        frames = self._entries.get(key)
        if frames is not None:
            self._entries.move_to_end(key)
        return frames

    def put(self, key: tuple, frames: np.ndarray) -> None:
        if frames.nbytes > self.budget_bytes:
            return
        old = self._entries.pop(key, None)
        self._bytes += frames.nbytes - (old.nbytes if old is not None else 0)
        self._entries[key] = frames
        while self._bytes > self.budget_bytes:
            _, dropped = self._entries.popitem(last=False)
            self._bytes -= dropped.nbytes

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0


# 2 GiB: the demo's largest round (1440 simulator episodes at 112 px) needs under 1 GiB.
_MEMORY = _FrameMemory(2 << 30)


def forget_decoded() -> None:
    """Drop every decoded episode this process remembers (to free memory, or to time the disk)."""
    _MEMORY.clear()


def _write_atomic(target: Path, frames: np.ndarray, stale_pattern: str) -> None:
    """Write ``frames`` to ``target`` via a temporary file; drop stale entries matching the pattern.

    A read-only data directory only costs speed: the failure is logged, not raised.
    """
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(exist_ok=True)
        with open(tmp, "wb") as fh:
            np.save(fh, frames, allow_pickle=False)
        os.replace(tmp, target)
        for stale in target.parent.glob(stale_pattern):
            if stale != target:
                stale.unlink(missing_ok=True)
    except OSError as exc:
        log.warning("cannot write frame cache %s (%s); continuing without it", target, exc)
    finally:
        tmp.unlink(missing_ok=True)
