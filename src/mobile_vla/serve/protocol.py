"""The wire protocol: msgpack-numpy codec, client message schema and validation, reply builders.

Every websocket message is a binary frame holding one msgpack map (``docs/protocol.md`` is
the contract other languages implement). Numpy arrays travel the way openpi's
``openpi_client.msgpack_numpy`` packs them, so openpi's client works unchanged::

    {b"__ndarray__": True, b"data": <raw bytes, C order>, b"dtype": "<f4", b"shape": [N, 2]}

(numpy scalars: ``{b"__npgeneric__": True, b"data": <python scalar>, b"dtype": "<f4"}``). We
pack with binary-string keys exactly like openpi and accept text keys too. Decoding never
unpickles and accepts only bool/int/uint/float dtypes; the byte count must match the shape.

Parsing is strict about what it reads (types, ranks, dtypes, finiteness) and lenient about
what it does not (unknown extra fields are ignored, for forward compatibility).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import msgpack
import numpy as np

from mobile_vla.errors import MobileVLAError

PROTOCOL_NAME = "mobile-vla"
PROTOCOL_VERSION = 1
CHANNEL_ORDERS = ("rgb", "bgr")
MESSAGE_TYPES = ("reset", "step", "health", "auth")
DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # a 1920x1080 RGB frame is ~6 MB
MAX_IMAGE_SIDE = 8192
_ARRAY_KINDS = "biuf"  # bool, int, uint, float: nothing that could carry objects
_MAX_DEPTH = 16
_MAX_NDIM = 8
_SHOWN_CHARS = 60  # of a client's value quoted back in an error message
_MAX_DIM = 2**31 - 1  # per axis; numpy cannot even describe some larger shapes of zero elements


class ProtocolError(MobileVLAError):
    """A message that breaks the protocol. ``openpi_style`` selects the reply form (text frame)."""

    def __init__(self, message: str, openpi_style: bool = False):
        super().__init__(message)
        self.openpi_style = openpi_style


# --------------------------------------------------------------------------- codec


def _pack_default(obj: Any) -> Any:
    """msgpack ``default`` hook, byte-for-byte the layout of openpi's ``msgpack_numpy.pack_array``."""
    if isinstance(obj, (np.ndarray, np.generic)) and obj.dtype.kind in ("V", "O", "c"):
        raise ValueError(f"unsupported dtype {obj.dtype}")
    if isinstance(obj, np.ndarray):
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    raise TypeError(f"cannot pack {type(obj).__name__}")


def pack(message: dict[str, Any]) -> bytes:
    """Encode one message (numpy arrays and scalars included) as msgpack bytes."""
    return msgpack.packb(message, default=_pack_default, use_bin_type=True)


def unpack(data: bytes) -> Any:
    """Decode msgpack bytes; arrays come back as (read-only) numpy arrays.

    Raises :class:`ProtocolError` naming the field at fault (``image``, ``state[2]``...).
    """
    try:
        raw = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except Exception as exc:  # msgpack raises several types (ExtraData, ValueError, StackError...)
        raise ProtocolError(f"message is not valid msgpack: {exc}") from None
    return _decode(raw, "message", 0)


def _decode(obj: Any, path: str, depth: int) -> Any:
    if depth > _MAX_DEPTH:
        raise ProtocolError(f"{path}: nested deeper than {_MAX_DEPTH} levels")
    if isinstance(obj, dict):
        fields = {_key(k, path): v for k, v in obj.items()}
        if fields.get("__ndarray__") is True:
            return _decode_array(fields, path)
        if fields.get("__npgeneric__") is True:
            return _decode_scalar(fields, path)
        return {k: _decode(v, _join(path, k), depth + 1) for k, v in fields.items()}
    if isinstance(obj, list):
        return [_decode(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(obj)]
    if isinstance(obj, float) and not math.isfinite(obj):
        raise ProtocolError(f"{path}: {obj} is not a finite number")
    return obj


def _join(path: str, key: str) -> str:
    key = key if len(key) <= _SHOWN_CHARS else key[:_SHOWN_CHARS] + "..."
    return key if path == "message" else f"{path}.{key}"


def _show(value: Any) -> str:
    """A bounded repr for error messages: a hostile value may be megabytes long or deeply nested."""
    if isinstance(value, (str, bytes)) and len(value) > _SHOWN_CHARS:
        return repr(value[:_SHOWN_CHARS]) + "..."
    if isinstance(value, (dict, list)):
        if isinstance(value, list) and len(value) <= _MAX_NDIM and all(type(v) is int for v in value):
            return repr(value)[:_SHOWN_CHARS]
        return f"{_type_name(value)} of {len(value)}"
    shown = repr(value)
    return shown if len(shown) <= _SHOWN_CHARS else shown[:_SHOWN_CHARS] + "..."


def _key(key: Any, path: str) -> str:
    if isinstance(key, bytes):
        try:
            return key.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolError(f"{path}: map key {_show(key)} is not UTF-8") from None
    return key


def _dtype(fields: dict[str, Any], path: str) -> np.dtype:
    spec = fields.get("dtype")
    if isinstance(spec, bytes):
        spec = spec.decode("ascii", "replace")
    if not isinstance(spec, str) or len(spec) > 8:
        raise ProtocolError(f"{path}: array 'dtype' must be a numpy dtype string like '<f4', got {_show(spec)}")
    try:
        dtype = np.dtype(spec)
    except Exception:  # numpy raises TypeError, ValueError or SyntaxError depending on the string
        raise ProtocolError(f"{path}: unknown array dtype {_show(spec)}") from None
    if dtype.kind not in _ARRAY_KINDS or dtype.shape or dtype.fields is not None:
        raise ProtocolError(f"{path}: array dtype {_show(spec)} is not allowed (only bool, int, uint, float)")
    return dtype


def _decode_array(fields: dict[str, Any], path: str) -> np.ndarray:
    dtype = _dtype(fields, path)
    shape, data = fields.get("shape"), fields.get("data")
    if (
        not isinstance(shape, list)
        or len(shape) > _MAX_NDIM
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s <= _MAX_DIM for s in shape)
    ):
        raise ProtocolError(
            f"{path}: array 'shape' must be a list of at most {_MAX_NDIM} ints in 0..{_MAX_DIM}, got {_show(shape)}"
        )
    if not isinstance(data, bytes):
        raise ProtocolError(f"{path}: array 'data' must be a binary string, got {type(data).__name__}")
    expected = math.prod(shape) * dtype.itemsize
    if len(data) != expected:
        raise ProtocolError(
            f"{path}: array 'data' has {len(data)} bytes, expected {expected} for shape {tuple(shape)} {dtype.str}"
        )
    try:
        array = np.frombuffer(data, dtype=dtype).reshape(shape)
    except ValueError as exc:  # e.g. zero elements but axes whose product overflows
        raise ProtocolError(f"{path}: array 'shape' {tuple(shape)} is not usable: {exc}") from None
    if dtype.kind == "f" and not np.isfinite(array).all():
        raise ProtocolError(f"{path}: array contains NaN or infinite values")
    return array


def _decode_scalar(fields: dict[str, Any], path: str) -> np.generic:
    dtype = _dtype(fields, path)
    value = fields.get("data")
    is_bool = isinstance(value, bool)
    if (dtype.kind == "b") != is_bool or not isinstance(value, (int, float)):
        raise ProtocolError(f"{path}: numpy scalar 'data' does not match dtype {dtype.str}: {_show(value)}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ProtocolError(f"{path}: {value} is not a finite number")
    try:
        with np.errstate(all="raise"):
            scalar = dtype.type(value)
    except (OverflowError, ValueError, TypeError, FloatingPointError) as exc:
        raise ProtocolError(f"{path}: {_show(value)} does not fit dtype {dtype.str}: {exc}") from None
    if dtype.kind == "f" and not np.isfinite(scalar):
        raise ProtocolError(f"{path}: {_show(value)} does not fit dtype {dtype.str}")
    return scalar


# --------------------------------------------------------------------------- client messages


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClientMessage:
    """Base of every client message; any message may carry the auth ``token``."""

    token: str | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Reset(ClientMessage):
    """Open or restart the connection's session with ``instruction``."""

    instruction: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Step(ClientMessage):
    """One camera frame ``image`` (H, W, 3) uint8; answered by an action chunk."""

    image: np.ndarray
    channel_order: str = "rgb"
    timestamp: float | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Health(ClientMessage):
    pass


@dataclasses.dataclass(frozen=True, kw_only=True)
class Auth(ClientMessage):
    pass


@dataclasses.dataclass(frozen=True, kw_only=True)
class Observation(ClientMessage):
    """An openpi-style observation (a map without ``type``): a step whose ``prompt`` resets on change."""

    image: np.ndarray
    prompt: str | None = None
    channel_order: str = "rgb"


OPENPI_IMAGE_KEYS = ("image", "observation/image")


def parse_message(data: bytes | str, max_bytes: int = DEFAULT_MAX_MESSAGE_BYTES) -> ClientMessage:
    """Validate one received websocket message and return the typed message.

    Raises :class:`ProtocolError` saying what was wrong (``openpi_style`` set when the map
    had no ``type``, so that the server answers the way openpi's client expects).
    """
    if isinstance(data, str):
        raise ProtocolError("text frames are not accepted: send a binary frame holding one msgpack map")
    if len(data) > max_bytes:
        raise ProtocolError(f"message is {len(data)} bytes, over the server's cap of {max_bytes} bytes")
    fields = unpack(data)
    if not isinstance(fields, dict):
        raise ProtocolError(f"message must be a msgpack map, got {_type_name(fields)}")
    token = _optional(fields, "token", str)
    if "type" not in fields:
        try:
            return _parse_observation(fields, token)
        except ProtocolError as exc:
            raise ProtocolError(str(exc), openpi_style=True) from None
    kind = fields["type"]
    if not isinstance(kind, str):
        raise ProtocolError(f"field 'type' must be a string, got {_type_name(kind)}")
    if kind == "reset":
        return Reset(instruction=_instruction(fields, "instruction", required=True), token=token)
    if kind == "step":
        return Step(
            image=_image(fields, "image"),
            channel_order=_channel_order(fields),
            timestamp=_optional(fields, "timestamp", (int, float)),
            token=token,
        )
    if kind == "health":
        return Health(token=token)
    if kind == "auth":
        if token is None:
            raise ProtocolError("auth message needs a string field 'token'")
        return Auth(token=token)
    raise ProtocolError(f"unknown message type {_show(kind)}; expected one of {', '.join(MESSAGE_TYPES)}")


def _parse_observation(fields: dict[str, Any], token: str | None) -> Observation:
    key = next((k for k in OPENPI_IMAGE_KEYS if k in fields), None)
    if key is None:
        raise ProtocolError(
            "message has no 'type'; as an openpi-style observation it needs an 'image' field "
            f"(one of {', '.join(OPENPI_IMAGE_KEYS)})"
        )
    return Observation(
        image=_image(fields, key),
        prompt=_instruction(fields, "prompt", required=False),
        channel_order=_channel_order(fields),
        token=token,
    )


def _type_name(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"array {value.dtype} {value.shape}"
    return {dict: "map", list: "list", str: "string", bytes: "binary", type(None): "nil"}.get(
        type(value), type(value).__name__
    )


def _optional(fields: dict[str, Any], name: str, kind) -> Any:
    value = fields.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ProtocolError(f"field '{name}' has the wrong type: got {_type_name(value)}")
    return value


def _instruction(fields: dict[str, Any], name: str, required: bool) -> str | None:
    if name not in fields:
        if required:
            raise ProtocolError(f"missing field '{name}' (a non-empty string)")
        return None
    value = fields[name]
    if not isinstance(value, str):
        raise ProtocolError(f"field '{name}' must be a string, got {_type_name(value)}")
    if not value.strip():
        raise ProtocolError(f"field '{name}' must not be empty")
    return value


def _channel_order(fields: dict[str, Any]) -> str:
    order = fields.get("channel_order", "rgb")
    if not isinstance(order, str) or order not in CHANNEL_ORDERS:
        shown = _show(order) if isinstance(order, str) else _type_name(order)
        raise ProtocolError(f"field 'channel_order' must be one of {CHANNEL_ORDERS}, got {shown}")
    return order


def _image(fields: dict[str, Any], name: str) -> np.ndarray:
    if name not in fields:
        raise ProtocolError(f"missing field '{name}' (a uint8 array of shape (H, W, 3))")
    image = fields[name]
    if not isinstance(image, np.ndarray):
        raise ProtocolError(
            f"field '{name}' must be a msgpack-numpy array (uint8, shape (H, W, 3)), got {_type_name(image)}"
        )
    if image.dtype != np.uint8:
        raise ProtocolError(f"field '{name}' must have dtype uint8, got {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3:
        raise ProtocolError(f"field '{name}' must have shape (H, W, 3), got {image.shape}")
    h, w = image.shape[:2]
    if not (1 <= h <= MAX_IMAGE_SIDE and 1 <= w <= MAX_IMAGE_SIDE):
        raise ProtocolError(f"field '{name}' must be 1..{MAX_IMAGE_SIDE} pixels per side, got {h}x{w}")
    return image


# --------------------------------------------------------------------------- server replies


def actions_reply(actions: np.ndarray, timing: dict[str, float], timestamp: float | None = None) -> dict:
    """``actions``: ``(N, D)`` float32 in physical units."""
    reply: dict[str, Any] = {"type": "actions", "actions": actions, "server_timing": timing}
    if timestamp is not None:
        reply["timestamp"] = timestamp
    return reply


def error_reply(message: str) -> dict:
    return {"type": "error", "message": message}
