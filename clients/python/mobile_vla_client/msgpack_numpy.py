"""Numpy arrays in msgpack, byte-for-byte the layout of openpi's ``msgpack_numpy``.

An array travels as ``{b"__ndarray__": True, b"data": <bytes, C order>, b"dtype": "<f4",
b"shape": [N, 2]}``; a numpy scalar as ``{b"__npgeneric__": True, b"data": <number>,
b"dtype": "<f4"}``. Decoding never unpickles and accepts only bool/int/uint/float dtypes.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

_ALLOWED_KINDS = "biuf"


def _encode(obj: Any) -> Any:
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind not in _ALLOWED_KINDS:
        raise TypeError(f"unsupported dtype {obj.dtype}")
    if isinstance(obj, np.ndarray):
        obj = np.ascontiguousarray(obj)
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot pack {type(obj).__name__}")


def _field(obj: dict, name: str) -> Any:
    return obj[name.encode()] if name.encode() in obj else obj[name]


def _decode(obj: dict) -> Any:
    if obj.get(b"__ndarray__") is True or obj.get("__ndarray__") is True:
        dtype = np.dtype(_field(obj, "dtype"))
        if dtype.kind not in _ALLOWED_KINDS:
            raise ValueError(f"refusing array dtype {dtype}")
        return np.frombuffer(_field(obj, "data"), dtype=dtype).reshape(_field(obj, "shape"))
    if obj.get(b"__npgeneric__") is True or obj.get("__npgeneric__") is True:
        dtype = np.dtype(_field(obj, "dtype"))
        if dtype.kind not in _ALLOWED_KINDS:
            raise ValueError(f"refusing scalar dtype {dtype}")
        return dtype.type(_field(obj, "data"))
    return {k.decode("utf-8") if isinstance(k, bytes) else k: v for k, v in obj.items()}


def pack(message: Any) -> bytes:
    """One message (numpy arrays and scalars included) → msgpack bytes."""
    return msgpack.packb(message, default=_encode, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """msgpack bytes → the message; arrays come back as read-only numpy arrays, keys as str."""
    return msgpack.unpackb(data, object_hook=_decode, raw=False)
