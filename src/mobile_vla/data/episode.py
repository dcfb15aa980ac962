"""The episode file format: one HDF5 file per episode, the real robot's layout.

Layout (see docs/data.md)::

    images or observations/images  (T, H, W, 3) uint8, BGR on disk
    actions                        (T, 3) float32 [linear_x, linear_y, angular_z]
    action_event_types             (T,) str  episode_start | start_action | stop_action  (optional)
    language_instruction           (1,) S256                                             (optional)
    counterfactual_actions         (T, 3) float32: the expert's action at the same state under the
                                   mirrored instruction (simulator only; optional)
    attrs: episode_name, total_duration, num_frames, action_chunk_size, ...

File name: ``episode_{YYYYMMDD}_{HHMMSS}_[target_]{1box|2box|3box}_{hori|vert}_{left|right}_{core|variant}_{close|medium|far}.h5``.
The simulator writes through :func:`write_episode`, so one reader serves both.
"""

from __future__ import annotations

import dataclasses
import os
import re
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from mobile_vla.errors import EpisodeError
from mobile_vla.jsonio import commit_tmp, tmp_path
from mobile_vla.vocab.instructions import canonical_instruction, side_of

IMAGE_KEYS = ("images", "observations/images")

_NAME_RE = re.compile(
    r"^episode_(?P<date>\d{8})_(?P<time>\d{6})_(?:(?P<target>[a-z]+)_)?"
    r"(?P<boxes>[123])box_(?P<orientation>hori|vert)_(?P<side>left|right)"
    r"(?:_(?P<kind>core|variant))?(?:_(?P<distance>close|medium|far))?"
)
# Names with a path part (..._target_left_right_path__core__fixed_center.h5): the path side precedes "_path".
_PATH_RE = re.compile(r"(?P<side>left|right)_path")


@dataclasses.dataclass(frozen=True)
class Scenario:
    """What a file name says about an episode."""

    side: str  # left | right: the side to pass the obstacles on
    boxes: int | None = None  # 1 | 2 | 3
    orientation: str | None = None  # hori | vert
    kind: str | None = None  # core | variant
    distance: str | None = None  # close | medium | far
    target: str | None = None  # e.g. "basket"; None means the cup


def parse_episode_name(name: str | os.PathLike) -> Scenario | None:
    """Scenario from a file name, or ``None`` when the name has no recognisable scenario."""
    stem = Path(name).name
    m = _NAME_RE.match(stem)
    if m:
        return Scenario(
            side=m["side"],
            boxes=int(m["boxes"]),
            orientation=m["orientation"],
            kind=m["kind"],
            distance=m["distance"],
            target=m["target"],
        )
    m = _PATH_RE.search(stem)
    if m:
        return Scenario(side=m["side"])
    return None


def format_episode_name(
    scenario: Scenario, stamp: str = "20260101_000000", suffix: str | None = None
) -> str:
    """``episode_{stamp}_[target_]{N}box_{orient}_{side}_{kind}_{distance}[_{suffix}].h5``."""
    parts = ["episode", stamp]
    if scenario.target:
        parts.append(scenario.target)
    parts += [
        f"{scenario.boxes or 1}box",
        scenario.orientation or "hori",
        scenario.side,
        scenario.kind or "core",
        scenario.distance or "medium",
    ]
    if suffix:
        parts.append(suffix)
    return "_".join(parts) + ".h5"


@dataclasses.dataclass
class Episode:
    """One recorded episode.

    Attributes:
        images: ``(T, H, W, 3)`` uint8, **BGR** (as on disk); ``None`` if read without images.
        actions: ``(T, 3)`` float32 ``[linear_x, linear_y, angular_z]`` (m/s, rad/s).
        event_types: ``T`` strings, or ``None`` when the file has none.
        instruction: the file's ``language_instruction``, else derived from the name.
        scenario: what the file name says, if anything.
        attrs: file-level attributes.
        path: where it was read from (``None`` for a new episode).
    """

    images: np.ndarray | None
    actions: np.ndarray
    instruction: str
    event_types: list[str] | None = None
    scenario: Scenario | None = None
    attrs: dict[str, Any] = dataclasses.field(default_factory=dict)
    path: Path | None = None
    image_shape: tuple[int, int, int] | None = None  # (H, W, 3) even when images were not loaded
    counterfactual_actions: np.ndarray | None = None  # (T, 3) expert labels for the mirrored instruction
    instruction_from_name: bool = False  # the file carries no instruction; it was derived from the name

    @property
    def num_frames(self) -> int:
        return int(self.actions.shape[0])

    @property
    def side(self) -> str | None:
        """The instructed side: from the instruction text, else from the file name.

        A file whose own instruction names no side ("reach the cup") has none, whatever route its
        name records.
        """
        side = side_of(self.instruction)
        if side is None and self.instruction_from_name and self.scenario is not None:
            side = self.scenario.side
        return side

    @property
    def episode_id(self) -> str:
        return self.path.stem if self.path is not None else str(self.attrs.get("episode_name", "episode"))


def _image_key(f: h5py.File) -> str | None:
    for key in IMAGE_KEYS:
        if key in f:
            return key
    return None


def read_episode(path: str | os.PathLike, load_images: bool = True) -> Episode:
    """Read and validate one episode file.

    Raises:
        EpisodeError: naming the file and key for the first problem found (unreadable or
            truncated file, missing key, wrong shape/dtype, length mismatch, NaN/inf
            actions, empty episode, no instruction and no scenario in the name).
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise EpisodeError(path, "file not found") from None
    except OSError as exc:
        raise EpisodeError(path, f"unreadable or truncated HDF5 file ({exc.__class__.__name__}: {exc})") from None
    try:
        with f:
            return _read_open(path, f, load_images)
    except EpisodeError:
        raise
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise EpisodeError(path, f"corrupt data ({exc.__class__.__name__}: {exc})") from None


def _read_open(path: Path, f: h5py.File, load_images: bool) -> Episode:
    key = _image_key(f)
    if key is None:
        raise EpisodeError(path, "missing key; expected 'images' or 'observations/images'", "images")
    img = f[key]
    if not isinstance(img, h5py.Dataset) or img.ndim != 4 or img.shape[-1] != 3:
        raise EpisodeError(path, f"expected shape (T, H, W, 3), got {getattr(img, 'shape', None)}", key)
    if img.dtype != np.uint8:
        raise EpisodeError(path, f"expected dtype uint8, got {img.dtype}", key)
    if "actions" not in f:
        raise EpisodeError(path, "missing key; expected (T, 3) float actions", "actions")
    act = f["actions"]
    if not isinstance(act, h5py.Dataset) or act.ndim != 2 or act.shape[1] not in (2, 3):
        raise EpisodeError(path, f"expected shape (T, 3), got {getattr(act, 'shape', None)}", "actions")
    if not np.issubdtype(act.dtype, np.floating):
        raise EpisodeError(path, f"expected a float dtype, got {act.dtype}", "actions")
    if act.shape[0] == 0 or img.shape[0] == 0:
        raise EpisodeError(path, "empty episode (0 frames)", "actions" if act.shape[0] == 0 else key)
    if act.shape[0] != img.shape[0]:
        raise EpisodeError(
            path, f"{img.shape[0]} images but {act.shape[0]} actions; expected the same length", "actions"
        )
    actions = np.asarray(act[()], dtype=np.float32)
    if actions.shape[1] == 2:
        actions = np.concatenate([actions, np.zeros((len(actions), 1), np.float32)], axis=1)
    bad = ~np.isfinite(actions)
    if bad.any():
        t = int(np.argwhere(bad)[0][0])
        raise EpisodeError(path, f"non-finite (NaN/inf) action at frame {t}", "actions")

    events = None
    if "action_event_types" in f:
        raw = f["action_event_types"][()]
        events = [e.decode() if isinstance(e, bytes) else str(e) for e in np.atleast_1d(raw)]
        if len(events) != len(actions):
            raise EpisodeError(
                path, f"{len(events)} event types for {len(actions)} frames", "action_event_types"
            )

    scenario = parse_episode_name(path.name)
    instruction = None
    if "language_instruction" in f:
        raw = np.atleast_1d(f["language_instruction"][()])
        if raw.size:
            value = raw[0]
            instruction = (value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value))
            instruction = instruction.strip("\x00").strip() or None
    derived = instruction is None
    if derived:
        if scenario is None:
            raise EpisodeError(
                path,
                "no instruction: the file has no language_instruction and its name has no "
                "recognisable scenario (expected e.g. episode_20251106_145248_1box_hori_left_core_medium.h5)",
                "language_instruction",
            )
        instruction = canonical_instruction(scenario.side, scenario.target or "cup")

    counterfactual = None
    if "counterfactual_actions" in f:
        counterfactual = np.asarray(f["counterfactual_actions"][()], dtype=np.float32)
        if counterfactual.shape != actions.shape or not np.isfinite(counterfactual).all():
            raise EpisodeError(
                path, f"expected finite {actions.shape} values, got {counterfactual.shape}", "counterfactual_actions"
            )

    images = None
    if load_images:
        images = np.asarray(img[()])
    attrs = {k: _attr_value(v) for k, v in f.attrs.items()}
    return Episode(
        images=images,
        actions=actions,
        instruction=instruction,
        event_types=events,
        scenario=scenario,
        attrs=attrs,
        path=path,
        image_shape=tuple(img.shape[1:]),
        counterfactual_actions=counterfactual,
        instruction_from_name=derived,
    )


def _attr_value(v: Any) -> Any:
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray):
        return v.tolist()
    return v


INSTRUCTION_BYTES = 256  # the robot's fixed-size ``language_instruction`` field


def instruction_bytes(instruction: str, path: str | Path = "<episode>") -> bytes:
    """The instruction as UTF-8 for the fixed-size field; refuses what would not fit whole.

    A fixed-size HDF5 string silently drops the bytes past its size, which can cut a Korean
    character (3 bytes in UTF-8) in half; an instruction that long is an error instead.
    """
    data = instruction.encode("utf-8")
    if len(data) > INSTRUCTION_BYTES:
        raise EpisodeError(path, f"instruction is {len(data)} UTF-8 bytes; the field holds at most "
                                 f"{INSTRUCTION_BYTES}: {instruction[:40]!r}...", "language_instruction")
    return data


def write_episode(
    path: str | os.PathLike,
    episode: Episode,
    layout: str = "images",
    compression: str | None = "gzip",
) -> Path:
    """Write ``episode`` atomically (``<name>.h5.tmp``, fsync, one rename) in the robot's layout.

    Args:
        path: destination ``.h5`` path.
        episode: images ``(T, H, W, 3)`` uint8 **BGR**, actions ``(T, 3)``.
        layout: the image key, ``"images"`` or ``"observations/images"`` (the robot's files use both).
    """
    if layout not in IMAGE_KEYS:
        raise ValueError(f"layout must be one of {IMAGE_KEYS}, got {layout!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = np.asarray(episode.images)
    actions = np.asarray(episode.actions, dtype=np.float32)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"images must be (T, H, W, 3) uint8, got {images.shape} {images.dtype}")
    if actions.ndim != 2 or actions.shape != (len(images), 3):
        raise ValueError(f"actions must be ({len(images)}, 3), got {actions.shape}")
    instruction = instruction_bytes(episode.instruction, path)
    events = episode.event_types or (["episode_start"] + ["start_action"] * (len(actions) - 1))
    tmp = tmp_path(path)
    try:
        with h5py.File(tmp, "w") as f:
            chunks = (1, *images.shape[1:])
            f.create_dataset(layout, data=images, compression=compression, chunks=chunks)
            f.create_dataset("actions", data=actions, compression=compression)
            f.create_dataset("action_event_types", data=np.array(events, dtype=h5py.string_dtype("utf-8")))
            f.create_dataset("language_instruction", data=np.array([instruction], dtype=f"S{INSTRUCTION_BYTES}"))
            if episode.counterfactual_actions is not None:
                cf = np.asarray(episode.counterfactual_actions, dtype=np.float32)
                f.create_dataset("counterfactual_actions", data=cf, compression=compression)
            attrs = {
                "episode_name": path.stem,
                "num_frames": len(actions),
                "action_chunk_size": 0,
                **episode.attrs,
            }
            for k, v in attrs.items():
                if v is not None:
                    f.attrs[k] = v
            f.flush()
        commit_tmp(tmp, path)  # fsync, then one rename: a reader never sees a torn *.h5
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def list_episodes(root: str | os.PathLike) -> list[Path]:
    """All ``*.h5`` files under ``root`` (or ``[root]`` for a file), sorted; temporaries excluded."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.exists():
        raise EpisodeError(root, "no such file or directory")
    return sorted(p for p in root.rglob("*.h5") if p.is_file())
