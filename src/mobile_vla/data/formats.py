"""Episode formats: readers and writers keyed by name, so the rest of the code never opens a file itself.

A format is registered in :data:`EPISODE_FORMATS` as an :class:`EpisodeFormat`. Every episode
has a *locator* (a path: for HDF5 the file itself; a format that keeps many episodes in one
dataset directory may use paths inside it). :func:`list_episodes` asks every format for the
episodes under a file or directory; :func:`read_episode` reads a locator with the format that
owns it. The ``hdf5`` format is the robot's file layout (:mod:`mobile_vla.data.episode`).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np

from mobile_vla.data import cache, episode, lerobot
from mobile_vla.data.episode import Episode
from mobile_vla.errors import EpisodeError
from mobile_vla.registry import Registry

#: ``(locator, transform one BGR frame -> (S, S, 3) RGB) -> (T, S, S, 3)`` uint8 RGB.
FrameDecoder = Callable[[Path, Callable[[np.ndarray], np.ndarray]], np.ndarray]


@dataclasses.dataclass(frozen=True)
class EpisodeFormat:
    find: Callable[[Path], list[Path]]  # the episodes this format holds under a file or directory
    owns: Callable[[Path], bool]  # whether a locator is one of this format's episodes
    read: Callable[[Path, bool], Episode]  # (locator, load_images) -> Episode; raises EpisodeError
    write: Callable[[Path, Episode], Path] | None = None
    # For formats that keep many episodes in one directory: (locators, out dir, read) -> summary.
    export: Callable[[list[Path], Path, Callable[[Path], Episode]], dict] | None = None
    decode_frames: FrameDecoder | None = None  # a faster path than read() for the frames alone
    description: str = ""


EPISODE_FORMATS: Registry[EpisodeFormat] = Registry("episode format")


def list_episodes(root: str | os.PathLike) -> list[Path]:
    """Every episode locator under ``root`` (a file or directory) in any registered format, sorted."""
    root = Path(root)
    if not root.exists():
        raise EpisodeError(root, "no such file or directory")
    return sorted({loc for _, fmt in EPISODE_FORMATS.items() for loc in fmt.find(root)})


def format_of(locator: str | os.PathLike) -> EpisodeFormat:
    locator = Path(locator)
    for _, fmt in EPISODE_FORMATS.items():
        if fmt.owns(locator):
            return fmt
    known = "; ".join(f"{name}: {fmt.description}" for name, fmt in EPISODE_FORMATS.items())
    raise EpisodeError(locator, f"no episode format reads this path ({known})")


def read_episode(locator: str | os.PathLike, load_images: bool = True) -> Episode:
    """Read and validate one episode with the format that owns it (errors name the file and key)."""
    return format_of(locator).read(Path(locator), load_images)


def read_labels(locator: str | os.PathLike) -> Episode:
    """``read_episode(locator, load_images=False)``, remembered per file version.

    Training reads every episode's labels to split the data and again to build its windows, and
    the demo's DAgger rounds re-read every earlier round's files: a few milliseconds of HDF5
    attribute reading per file that added up to a minute per demo. A file is read once per
    version (:func:`mobile_vla.data.cache.file_version`); a locator that is no file of its own
    (inside a dataset directory) is read every time.

    The episode is shared between callers: its arrays are read-only; do not modify it.
    """
    path = Path(locator)
    if not path.is_file():
        return read_episode(path, load_images=False)
    ep = _read_labels_version(cache.file_version(path))
    return ep if ep.path == path else dataclasses.replace(ep, path=path)  # as the caller named it


@functools.lru_cache(maxsize=1 << 16)  # labels only: a few kB per episode
def _read_labels_version(version: tuple[str, int, int, int]) -> Episode:
    ep = read_episode(version[0], load_images=False)
    for value in (ep.actions, ep.counterfactual_actions, *ep.attrs.values()):
        if isinstance(value, np.ndarray):
            value.setflags(write=False)
    return ep


def decode_frames(locator: str | os.PathLike, transform: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """All frames of an episode, each through ``transform`` (one BGR frame → RGB): ``(T, S, S, 3)``."""
    locator = Path(locator)
    fmt = format_of(locator)
    if fmt.decode_frames is not None:
        return fmt.decode_frames(locator, transform)
    return np.stack([transform(frame) for frame in fmt.read(locator, True).images])


def _find_h5(root: Path) -> list[Path]:
    if root.is_file():
        return [root] if root.suffix == ".h5" else []
    return [p for p in root.rglob("*.h5") if p.is_file()]


EPISODE_FORMATS.register("hdf5", EpisodeFormat(
    find=_find_h5, owns=lambda p: p.suffix == ".h5", read=lambda p, images: episode.read_episode(p, images),
    write=lambda p, ep: episode.write_episode(p, ep), decode_frames=cache.decode_resized,
    description="the robot's episode files, *.h5"))

EPISODE_FORMATS.register("lerobot", EpisodeFormat(
    find=lerobot.find_lerobot, owns=lerobot.owns_lerobot, read=lerobot.read_lerobot_episode,
    export=lerobot.export_lerobot, decode_frames=lerobot.decode_lerobot_frames,
    description="a LeRobotDataset v3.0 directory (meta/info.json); episodes are DIR/<episode name>"))
