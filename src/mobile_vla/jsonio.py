"""JSON for results and configs: numpy/torch values become plain numbers, writes are atomic."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def json_default(obj: Any) -> Any:
    """``json.dumps(default=...)``: numpy/torch scalars and arrays → numbers and lists; else ``str``."""
    if hasattr(obj, "tolist") and hasattr(obj, "ndim"):  # numpy arrays/scalars, torch tensors
        return obj.item() if obj.ndim == 0 else obj.tolist()
    return str(obj)


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, default=json_default)


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(dumps(data))
    tmp.replace(path)
    return path
