"""The ``lerobot`` episode format: a LeRobotDataset v3.0 directory, written and read with pyarrow + PyAV.

Layout (LeRobot's v3.0; see docs/data.md for what each field holds and how it was checked)::

    DIR/meta/info.json                               codebase_version "v3.0", fps, features, paths
    DIR/meta/stats.json                              per-feature min/max/mean/std/count
    DIR/meta/tasks.parquet                           one row per instruction: task_index (index: the text)
    DIR/meta/episodes/chunk-000/file-000.parquet     one row per episode: length, tasks, frame and video ranges
    DIR/data/chunk-000/file-000.parquet              one row per frame: action, timestamp, indices, features
    DIR/videos/observation.images.front/chunk-000/file-000.mp4   every episode's frames, RGB, H.264

Episode locators are ``DIR/<episode name>`` (no such file exists; the name is the source
episode's file stem, so splits and pairing by scene work as for HDF5 files). A dataset written
by another tool is read too when it has an ``action`` feature of 2 or 3 values and a camera:
its locators are ``DIR/episode_{index:06d}``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mobile_vla.data.episode import Episode, parse_episode_name
from mobile_vla.errors import EpisodeError, MobileVLAError
from mobile_vla.jsonio import write_json
from mobile_vla.vocab.actions import ACTION_UNITS

CODEBASE_VERSION = "v3.0"
CAMERA_KEY = "observation.images.front"
#: LeRobot's names for an omni-wheel base's velocities (its LeKiwi robot), in this project's order.
ACTION_FEATURE_NAMES = ["x.vel", "y.vel", "theta.vel"]
#: The simulator steps at 2.5 Hz; the robot's key presses each drive 0.4 s (docs/data.md).
DEFAULT_FPS = 2.5
INFO = "meta/info.json"
STATS = "meta/stats.json"
TASKS = "meta/tasks.parquet"
EPISODES = "meta/episodes/chunk-000/file-000.parquet"
DATA = "data/chunk-000/file-000.parquet"
VIDEO = f"videos/{CAMERA_KEY}/chunk-000/file-000.mp4"
VIDEO_TEMPLATE = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
NAME_COLUMN = "mobile_vla/episode_name"  # the source episode's file stem
ATTRS_COLUMN = "mobile_vla/attrs"  # the source episode's attributes as JSON (trajectory, scene id, ...)
_SCALAR = {"timestamp": "float32", "frame_index": "int64", "episode_index": "int64", "index": "int64",
           "task_index": "int64"}


def _pa():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - installed by `make test`
        raise MobileVLAError("LeRobot datasets need pyarrow: pip install 'mobile-vla[ecosystem]'") from None
    return pa, pq


# ---------------------------------------------------------------------------------------- export
def export_lerobot(episodes: Sequence[Path], out: str | os.PathLike, read: Callable[[Path], Episode],
                   fps: float = DEFAULT_FPS, crf: int = 18) -> dict[str, Any]:
    """Write ``episodes`` (locators; ``read(locator)`` gives each with frames) as one v3.0 dataset at ``out``.

    Built in ``out.tmp`` and renamed, so ``out`` is either complete or absent. Returns a summary.
    """
    from mobile_vla.data.video import VideoWriter

    pa, pq = _pa()
    out = Path(out)
    if not episodes:
        raise MobileVLAError("nothing to export: no episodes given")
    if (out / INFO).exists():
        raise MobileVLAError(f"{out}: a dataset already exists there; choose another --out or remove it")
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        eps = [read(Path(p)) for p in episodes]
        shape = eps[0].images.shape[1:]
        for ep in eps:
            if ep.images.shape[1:] != shape:
                raise EpisodeError(ep.path or "episode", f"frames are {ep.images.shape[1:]}, the first episode's "
                                   f"are {shape}; one dataset holds one camera size", "images")
        tasks = sorted({ep.instruction for ep in eps})
        task_index = {t: i for i, t in enumerate(tasks)}
        max_boxes = max((len(_obstacles(ep)) for ep in eps), default=0)
        has = {"cf": any(ep.counterfactual_actions is not None for ep in eps),
               "target": any("target_xy" in ep.attrs for ep in eps), "boxes": max_boxes > 0,
               "state": any("trajectory" in ep.attrs for ep in eps)}
        columns: dict[str, list] = {k: [] for k in ("index", "episode_index", "frame_index", "timestamp",
                                                     "task_index", "action", "scene_id", "side", "event_type")}
        for key, flag in (("counterfactual_actions", "cf"), ("observation.state", "state"),
                          ("obstacles", "boxes"), ("target", "target")):
            if has[flag]:
                columns[key] = []
        episode_rows: dict[str, list] = {k: [] for k in (
            "episode_index", "tasks", "length", "data/chunk_index", "data/file_index", "dataset_from_index",
            "dataset_to_index", f"videos/{CAMERA_KEY}/chunk_index", f"videos/{CAMERA_KEY}/file_index",
            f"videos/{CAMERA_KEY}/from_timestamp", f"videos/{CAMERA_KEY}/to_timestamp",
            "meta/episodes/chunk_index", "meta/episodes/file_index", NAME_COLUMN, ATTRS_COLUMN)}
        video = VideoWriter(tmp / VIDEO, fps, crf)
        pixel_sum = np.zeros(3)
        pixel_sq = np.zeros(3)
        pixel_min = np.full(3, 255.0)
        pixel_max = np.zeros(3)
        total = 0
        for e, ep in enumerate(eps):
            T = ep.num_frames
            start_s = video.frames / fps
            for t, bgr in enumerate(ep.images):
                video.write(bgr[..., ::-1], keyframe=t == 0)  # the robot records BGR; video is RGB
            rgb = ep.images[..., ::-1].reshape(-1, 3).astype(np.float64) / 255.0
            pixel_sum += rgb.sum(0)
            pixel_sq += (rgb ** 2).sum(0)
            pixel_min = np.minimum(pixel_min, rgb.min(0))
            pixel_max = np.maximum(pixel_max, rgb.max(0))
            columns["index"] += range(total, total + T)
            columns["episode_index"] += [e] * T
            columns["frame_index"] += range(T)
            columns["timestamp"] += [np.float32(t / fps) for t in range(T)]
            columns["task_index"] += [task_index[ep.instruction]] * T
            columns["action"] += list(ep.actions.astype(np.float32))
            columns["scene_id"] += [str(ep.attrs.get("scene_id", ""))] * T
            columns["side"] += [ep.side or ""] * T
            columns["event_type"] += ep.event_types or [""] * T
            nan3 = np.full((T, 3), np.nan, np.float32)
            if has["cf"]:
                cf = ep.counterfactual_actions
                columns["counterfactual_actions"] += list(nan3 if cf is None else cf.astype(np.float32))
            if has["state"]:
                traj = np.asarray(ep.attrs.get("trajectory", nan3), np.float32).reshape(-1, 3)[:T]
                columns["observation.state"] += list(traj if len(traj) == T else nan3)
            if has["boxes"]:
                boxes = np.full((max_boxes, 4), np.nan, np.float32)
                ob = _obstacles(ep)
                boxes[: len(ob)] = ob
                columns["obstacles"] += [boxes.ravel()] * T
            if has["target"]:
                columns["target"] += [np.asarray(ep.attrs.get("target_xy", [np.nan] * 2), np.float32)] * T
            episode_rows["episode_index"].append(e)
            episode_rows["tasks"].append([ep.instruction])
            episode_rows["length"].append(T)
            episode_rows["data/chunk_index"].append(0)
            episode_rows["data/file_index"].append(0)
            episode_rows["dataset_from_index"].append(total)
            episode_rows["dataset_to_index"].append(total + T)
            episode_rows[f"videos/{CAMERA_KEY}/chunk_index"].append(0)
            episode_rows[f"videos/{CAMERA_KEY}/file_index"].append(0)
            episode_rows[f"videos/{CAMERA_KEY}/from_timestamp"].append(start_s)
            episode_rows[f"videos/{CAMERA_KEY}/to_timestamp"].append(start_s + T / fps)
            episode_rows["meta/episodes/chunk_index"].append(0)
            episode_rows["meta/episodes/file_index"].append(0)
            episode_rows[NAME_COLUMN].append(ep.episode_id)
            episode_rows[ATTRS_COLUMN].append(json.dumps(_jsonable(ep.attrs)))
            total += T
        video.close()

        features = _features(shape, fps, max_boxes, has, crf)
        data = pa.table({k: _arrow_column(pa, k, v, features) for k, v in columns.items()})
        _write_parquet(pq, data, tmp / DATA)
        _write_parquet(pq, pa.table(episode_rows), tmp / EPISODES)
        _write_parquet(pq, _tasks_table(pa, tasks), tmp / TASKS)
        count = total  # frames in the dataset
        mean = pixel_sum / count
        std = np.sqrt(np.maximum(pixel_sq / count - mean ** 2, 0))
        stats = {CAMERA_KEY: {n: [[[float(x)]] for x in v] for n, v in
                              (("min", pixel_min), ("max", pixel_max), ("mean", mean), ("std", std))}}
        stats[CAMERA_KEY]["count"] = [count]
        for key in columns:
            ft = features.get(key)
            if ft is None or ft["dtype"] == "string":
                continue
            values = np.asarray(columns[key], np.float64).reshape(count, -1)
            stats[key] = {"min": np.nanmin(values, 0).tolist(), "max": np.nanmax(values, 0).tolist(),
                          "mean": np.nanmean(values, 0).tolist(), "std": np.nanstd(values, 0).tolist(),
                          "count": [count]}
        write_json(tmp / STATS, stats)
        info = {
            "codebase_version": CODEBASE_VERSION, "robot_type": "mobile_vla_omni_base",
            "total_episodes": len(eps), "total_frames": count, "total_tasks": len(tasks),
            "chunks_size": 1000, "data_files_size_in_mb": 100, "video_files_size_in_mb": 200,
            "fps": fps, "splits": {"train": f"0:{len(eps)}"},
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": VIDEO_TEMPLATE,
            "features": features,
        }
        write_json(tmp / INFO, info)  # last: a directory with meta/info.json is a complete dataset
        shutil.rmtree(out, ignore_errors=True)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"out": str(out), "format": "lerobot", "codebase_version": CODEBASE_VERSION, "episodes": len(eps),
            "frames": count, "tasks": len(tasks), "fps": fps}


def _obstacles(ep: Episode) -> np.ndarray:
    return np.asarray(ep.attrs.get("obstacles", np.zeros((0, 4))), np.float32).reshape(-1, 4)


def _features(shape: tuple[int, ...], fps: float, max_boxes: int, has: dict[str, bool], crf: int) -> dict:
    h, w, c = shape
    f: dict[str, dict] = {
        CAMERA_KEY: {"dtype": "video", "shape": [h, w, c], "names": ["height", "width", "channels"],
                     "info": {"video.height": h + h % 2, "video.width": w + w % 2, "video.codec": "h264",
                              "video.pix_fmt": "yuv420p", "video.is_depth_map": False, "video.fps": fps,
                              "video.channels": c, "video.crf": crf, "has_audio": False}},
        "action": {"dtype": "float32", "shape": [3], "names": ACTION_FEATURE_NAMES, "units": list(ACTION_UNITS),
                   "description": "the commanded base velocity: forward m/s, left m/s, counter-clockwise rad/s"},
    }
    if has["cf"]:
        f["counterfactual_actions"] = {
            "dtype": "float32", "shape": [3], "names": ACTION_FEATURE_NAMES, "units": list(ACTION_UNITS),
            "description": "the expert's action at this state under the mirrored instruction (NaN: none)"}
    if has["state"]:
        f["observation.state"] = {"dtype": "float32", "shape": [3], "names": ["x", "y", "theta"],
                                  "units": ["m", "m", "rad"], "description": "the simulator's base pose"}
    if has["boxes"]:
        f["obstacles"] = {"dtype": "float32", "shape": [4 * max_boxes],
                          "names": [f"box{i}.{n}" for i in range(max_boxes) for n in ("x", "y", "half_x", "half_y")],
                          "units": ["m"] * (4 * max_boxes), "description": "obstacle boxes in the world frame (NaN: none)"}
    if has["target"]:
        f["target"] = {"dtype": "float32", "shape": [2], "names": ["x", "y"], "units": ["m", "m"],
                       "description": "the object the instruction names, world frame"}
    for key, text in (("scene_id", "episodes of one scene under different instructions share it"),
                      ("side", "the instructed side: left, right or empty"),
                      ("event_type", "episode_start | start_action | stop_action (the robot's key events)")):
        f[key] = {"dtype": "string", "shape": [1], "names": None, "description": text}
    f.update({k: {"dtype": d, "shape": [1], "names": None} for k, d in _SCALAR.items()})
    return f


def _arrow_column(pa, key: str, values: list, features: dict):
    ft = features[key]
    if ft["dtype"] == "string":
        return pa.array(values, pa.string())
    dtype = pa.float32() if ft["dtype"] == "float32" else pa.int64()
    if ft["shape"] == [1]:
        return pa.array(values, dtype)
    n = ft["shape"][0]
    flat = pa.array(np.asarray(values, np.float32).reshape(-1), dtype)
    return pa.FixedSizeListArray.from_arrays(flat, n)


def _tasks_table(pa, tasks: list[str]):
    # LeRobot reads this with pandas: the task text is the (unnamed) index, task_index the column.
    pandas_meta = {"index_columns": ["__index_level_0__"], "column_indexes": [], "columns": [
        {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64",
         "metadata": None},
        {"name": None, "field_name": "__index_level_0__", "pandas_type": "unicode", "numpy_type": "object",
         "metadata": None}], "creator": {"library": "mobile_vla"}, "pandas_version": "2.2.3"}
    table = pa.table({"task_index": pa.array(range(len(tasks)), pa.int64()),
                      "__index_level_0__": pa.array(tasks, pa.string())})
    return table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})


def _write_parquet(pq, table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return {"__ndarray__": value.tolist(), "dtype": str(value.dtype)}
    if isinstance(value, np.generic):
        return value.item()
    return value


def _from_json(value: Any) -> Any:
    if isinstance(value, dict):
        if "__ndarray__" in value:
            return np.asarray(value["__ndarray__"], dtype=value["dtype"])
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


# ---------------------------------------------------------------------------------------- read
@dataclasses.dataclass
class _EpisodeRef:
    index: int
    start: int  # first row in the data file
    length: int
    video_from_s: float
    attrs: dict[str, Any]
    video_file: tuple[int, int] = (0, 0)  # (chunk, file) index of the video holding its frames


@dataclasses.dataclass
class LeRobotDataset:
    """A validated v3.0 dataset directory: its info, the frame table and each episode's location."""

    root: Path
    info: dict[str, Any]
    camera: str
    data: Any  # pyarrow Table, one row per frame
    tasks: list[str]
    episodes: dict[str, _EpisodeRef]  # by locator name

    @property
    def fps(self) -> float:
        return float(self.info["fps"])

    def video_path(self, ref: _EpisodeRef) -> Path:
        template = self.info.get("video_path") or VIDEO_TEMPLATE
        return self.root / template.format(video_key=self.camera, chunk_index=ref.video_file[0],
                                           file_index=ref.video_file[1])


def load_dataset(root: str | os.PathLike) -> LeRobotDataset:
    """Read and validate the metadata and frame table of ``root`` (cached until ``meta/info.json`` changes)."""
    root = Path(root)
    info_path = root / INFO
    try:
        stamp = info_path.stat().st_mtime_ns
    except FileNotFoundError:
        raise EpisodeError(info_path, "missing; a LeRobot v3.0 dataset has meta/info.json") from None
    return _load_dataset(root, stamp)


@functools.lru_cache(maxsize=8)
def _load_dataset(root: Path, stamp: int) -> LeRobotDataset:
    pa, pq = _pa()
    info_path = root / INFO
    try:
        info = json.loads(info_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise EpisodeError(info_path, f"unreadable JSON ({exc})") from None
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3"):
        raise EpisodeError(info_path, f"codebase_version is {version!r}; this reader reads v3.x datasets",
                           "codebase_version")
    features = info.get("features")
    if not isinstance(features, dict) or "action" not in features:
        raise EpisodeError(info_path, "expected a 'features' object with an 'action' feature", "features")
    if list(features["action"].get("shape", [])) not in ([2], [3]):
        raise EpisodeError(info_path, f"expected action shape [2] or [3], got {features['action'].get('shape')}",
                           "features.action.shape")
    cameras = [k for k, v in features.items() if isinstance(v, dict) and v.get("dtype") == "video"]
    if not cameras:
        raise EpisodeError(info_path, "no video feature (dtype 'video'); episodes need camera frames", "features")
    camera = CAMERA_KEY if CAMERA_KEY in cameras else cameras[0]
    if not isinstance(info.get("fps"), (int, float)) or info["fps"] <= 0:
        raise EpisodeError(info_path, f"expected a positive fps, got {info.get('fps')!r}", "fps")

    tasks_table = _read_parquet(pq, root / TASKS)
    text_column = next((c for c in ("__index_level_0__", "task") if c in tasks_table.column_names), None)
    if text_column is None or "task_index" not in tasks_table.column_names:
        raise EpisodeError(root / TASKS, "expected columns task_index and the task text (the index)", "task_index")
    task_of = dict(zip(tasks_table["task_index"].to_pylist(), tasks_table[text_column].to_pylist()))
    tasks = [task_of[i] for i in sorted(task_of)]

    ep_files = sorted((root / "meta/episodes").glob("chunk-*/file-*.parquet"))
    if not ep_files:
        raise EpisodeError(root / EPISODES, "missing; expected meta/episodes/chunk-*/file-*.parquet")
    ep_table = pa.concat_tables([_read_parquet(pq, p) for p in ep_files], promote_options="default")
    need = ["episode_index", "length", "dataset_from_index", f"videos/{camera}/from_timestamp"]
    for col in need:
        if col not in ep_table.column_names:
            raise EpisodeError(ep_files[0], f"missing column; expected {need}", col)
    data_files = sorted((root / "data").glob("chunk-*/file-*.parquet"))
    if not data_files:
        raise EpisodeError(root / DATA, "missing; expected data/chunk-*/file-*.parquet")
    data = pa.concat_tables([_read_parquet(pq, p) for p in data_files], promote_options="default")
    for col in ("action", "episode_index", "frame_index", "task_index"):
        if col not in data.column_names:
            raise EpisodeError(data_files[0], "missing column", col)
    dim = features["action"]["shape"][0]
    if not pa.types.is_list(data.schema.field("action").type) and not pa.types.is_fixed_size_list(
            data.schema.field("action").type):
        raise EpisodeError(data_files[0], f"expected a list of {dim} floats per row", "action")
    lengths = set(np.asarray(data["action"].combine_chunks().value_lengths()).tolist()) \
        if pa.types.is_list(data.schema.field("action").type) else {data.schema.field("action").type.list_size}
    if lengths != {dim}:
        raise EpisodeError(data_files[0], f"expected {dim} values per action (meta/info.json), got {sorted(lengths)}",
                           "action")

    names = ep_table[NAME_COLUMN].to_pylist() if NAME_COLUMN in ep_table.column_names else None
    attrs = ep_table[ATTRS_COLUMN].to_pylist() if ATTRS_COLUMN in ep_table.column_names else None
    episodes = {}
    rows = ep_table.to_pydict()
    for i, index in enumerate(rows["episode_index"]):
        name = names[i] if names and names[i] else f"episode_{index:06d}"
        start, length = int(rows["dataset_from_index"][i]), int(rows["length"][i])
        if start < 0 or length <= 0 or start + length > data.num_rows:
            raise EpisodeError(ep_files[0], f"episode {index}: frames {start}..{start + length} lie outside the "
                               f"{data.num_rows} rows of the data files", "dataset_from_index")
        video_file = tuple(int(rows[f"videos/{camera}/{k}"][i]) if f"videos/{camera}/{k}" in rows else 0
                           for k in ("chunk_index", "file_index"))
        episodes[name] = _EpisodeRef(int(index), start, length, float(rows[f"videos/{camera}/from_timestamp"][i]),
                                     _from_json(json.loads(attrs[i])) if attrs and attrs[i] else {}, video_file)
    return LeRobotDataset(root, info, camera, data, tasks, episodes)


def _read_parquet(pq, path: Path):
    if not path.is_file():
        raise EpisodeError(path, "missing file of the LeRobot dataset")
    try:
        return pq.read_table(path)
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise EpisodeError(path, f"unreadable parquet ({exc.__class__.__name__}: {exc})") from None


def _resolve(locator: Path) -> tuple[LeRobotDataset, _EpisodeRef]:
    ds = load_dataset(locator.parent)
    ref = ds.episodes.get(locator.name)
    if ref is None:
        raise EpisodeError(locator, f"no such episode in {locator.parent} ({len(ds.episodes)} episodes)")
    return ds, ref


def read_lerobot_episode(locator: Path, load_images: bool = True) -> Episode:
    """One episode of a dataset directory: actions from the data file, frames (BGR) from the video."""
    ds, ref = _resolve(Path(locator))
    rows = ds.data.slice(ref.start, ref.length).to_pydict()
    actions = np.asarray(rows["action"], np.float32)
    if actions.shape[1] == 2:
        actions = np.concatenate([actions, np.zeros((len(actions), 1), np.float32)], 1)
    if not np.isfinite(actions).all():
        raise EpisodeError(locator, "non-finite (NaN/inf) action", "action")
    if rows["frame_index"] != list(range(ref.length)) or set(rows["episode_index"]) != {ref.index}:
        raise EpisodeError(ds.root / DATA, f"episode {ref.index}: rows {ref.start}..{ref.start + ref.length} are "
                           "not its frames 0..length-1 in order", "frame_index")
    instruction = ds.tasks[rows["task_index"][0]]
    cf = None
    if "counterfactual_actions" in rows:
        values = np.asarray(rows["counterfactual_actions"], np.float32)
        cf = None if np.isnan(values).all() else values
    events = rows.get("event_type")
    events = events if events and all(events) else None
    shape = tuple(ds.info["features"][ds.camera]["shape"])
    images = decode_bgr(ds, ref) if load_images else None
    return Episode(images=images, actions=actions, instruction=instruction, event_types=events,
                   scenario=parse_episode_name(locator.name), attrs=dict(ref.attrs), path=Path(locator),
                   image_shape=shape, counterfactual_actions=cf)


def decode_bgr(ds: LeRobotDataset, ref: _EpisodeRef) -> np.ndarray:
    """``(T, H, W, 3)`` uint8 BGR frames of one episode (the video's even padding cropped off)."""
    from mobile_vla.data.video import read_frames

    h, w = ds.info["features"][ds.camera]["shape"][:2]
    path = ds.video_path(ref)
    frames = []
    for _, rgb in read_frames(path, ref.video_from_s, ref.length):
        if rgb.shape[0] < h or rgb.shape[1] < w:
            raise EpisodeError(path, f"frames are {rgb.shape[:2]}, meta/info.json says {(h, w)}", ds.camera)
        frames.append(rgb[:h, :w, ::-1])
    if len(frames) != ref.length:
        raise EpisodeError(path, f"episode {ref.index}: decoded {len(frames)} frames from "
                           f"{ref.video_from_s:.3f} s, expected {ref.length}")
    return np.ascontiguousarray(np.stack(frames))


def decode_lerobot_frames(locator: Path, transform: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    ds, ref = _resolve(Path(locator))
    return np.stack([transform(frame) for frame in decode_bgr(ds, ref)])


def find_lerobot(root: Path) -> list[Path]:
    """Episode locators of every dataset at or under ``root``."""
    if root.is_file():
        return []
    roots = [root] if (root / INFO).is_file() else [p.parent.parent for p in root.rglob(INFO)]
    return [r / name for r in roots for name in load_dataset(r).episodes]


def owns_lerobot(locator: Path) -> bool:
    # meta/ alone is enough, so that a dataset missing meta/info.json gets an error naming that file.
    return not locator.exists() and (locator.parent / "meta").is_dir()
