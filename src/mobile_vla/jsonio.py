"""JSON for results and configs: numpy/torch values become plain numbers; crash-safe writes.

Every file a run produces (episodes, checkpoints, reports, records) is written the same way:
to a temporary name that no reader globs for, flushed and fsynced, then renamed over the target
in one step, and the directory entry fsynced. A crash at any instant leaves either the old file
or the new one, never a torn one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

TMP_SUFFIX = ".tmp"  # readers glob for *.h5, *.json, ...; never for *.tmp


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)``: numpy/torch scalars and arrays → numbers and lists; else ``str``."""
    if hasattr(obj, "tolist") and hasattr(obj, "ndim"):  # numpy arrays/scalars, torch tensors
        return obj.item() if obj.ndim == 0 else obj.tolist()
    return str(obj)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=json_default)


def tmp_path(path: str | Path) -> Path:
    """The temporary name ``path`` is written under before its rename: ``<name>.tmp``."""
    path = Path(path)
    return path.with_name(path.name + TMP_SUFFIX)


def fsync_file(path: str | Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(directory: str | Path) -> None:
    """Make renames and new entries in ``directory`` durable (no-op where directories cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def commit_tmp(tmp: str | Path, path: str | Path) -> Path:
    """fsync ``tmp``, rename it over ``path`` in one step, fsync the directory."""
    fsync_file(tmp)
    os.replace(tmp, path)
    fsync_dir(Path(path).parent)
    return Path(path)


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    path = Path(path)
    # per process: the ranks of a distributed run may write the same file (same content) at once
    tmp = path.with_name(f"{path.name}.{os.getpid()}{TMP_SUFFIX}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    fsync_dir(path.parent)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    return write_text_atomic(path, dumps(data))
