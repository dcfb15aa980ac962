"""The wire codec and message schema, without a network."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest

from mobile_vla.serve import protocol
from mobile_vla.serve.protocol import ProtocolError, parse_message


def _array_map(data: bytes, dtype: str, shape: list, text_keys: bool = False) -> dict:
    fields = {"__ndarray__": True, "data": data, "dtype": dtype, "shape": shape}
    return fields if text_keys else {k.encode(): v for k, v in fields.items()}


@pytest.mark.parametrize("dtype", ["uint8", "int16", "float32", "float64", "bool"])
def test_arrays_round_trip_with_dtype_and_shape(dtype):
    array = (np.arange(24).reshape(2, 3, 4) % 3).astype(dtype)
    back = protocol.unpack(protocol.pack({"a": array, "nested": [{"b": array[0]}]}))
    np.testing.assert_array_equal(back["a"], array)
    assert back["a"].dtype == array.dtype and back["a"].shape == array.shape
    np.testing.assert_array_equal(back["nested"][0]["b"], array[0])


def test_packed_array_uses_openpis_binary_keys():
    raw = msgpack.unpackb(protocol.pack({"x": np.zeros((2, 5), np.float32)}), raw=False)
    assert set(raw["x"]) == {b"__ndarray__", b"data", b"dtype", b"shape"}
    assert raw["x"][b"dtype"] == "<f4" and raw["x"][b"shape"] == [2, 5] and len(raw["x"][b"data"]) == 40


def test_numpy_scalars_round_trip():
    back = protocol.unpack(protocol.pack({"f": np.float32(1.5), "i": np.int64(-3), "b": np.bool_(True)}))
    assert back["f"] == np.float32(1.5) and back["f"].dtype == np.float32
    assert back["i"] == -3 and back["i"].dtype == np.int64
    assert bool(back["b"]) is True


def test_text_keys_are_accepted_for_arrays():
    data = msgpack.packb({"x": _array_map(np.arange(3, dtype="<i4").tobytes(), "<i4", [3], text_keys=True)})
    np.testing.assert_array_equal(protocol.unpack(data)["x"], [0, 1, 2])


@pytest.mark.parametrize(
    "array, expected",
    [
        (_array_map(b"\x00" * 8, "|O", [1]), "not allowed"),
        (_array_map(b"\x00" * 8, "|V8", [1]), "not allowed"),
        (_array_map(b"\x00" * 8, "<c8", [1]), "not allowed"),
        (_array_map(b"\x00" * 8, "nonsense", [1]), "unknown array dtype"),
        (_array_map(b"\x00" * 5, "<f4", [2]), "has 5 bytes, expected 8"),
        (_array_map(b"\x00" * 8, "<f4", [-2]), "'shape'"),
        (_array_map(b"\x00" * 8, "<f4", "2"), "'shape'"),
        (_array_map("text", "<f4", [1]), "'data' must be a binary string"),
        (_array_map(np.array([1.0, np.nan], "<f4").tobytes(), "<f4", [2]), "NaN"),
        (_array_map(np.array([np.inf], "<f8").tobytes(), "<f8", [1]), "NaN or infinite"),
    ],
)
def test_unsafe_or_inconsistent_arrays_are_rejected_naming_the_field(array, expected):
    with pytest.raises(ProtocolError, match=expected) as info:
        protocol.unpack(msgpack.packb({"outer": {"state": array}}))
    assert "outer.state" in str(info.value)


def test_non_finite_scalars_and_garbage_are_rejected():
    with pytest.raises(ProtocolError, match="timestamp: nan is not a finite"):
        protocol.unpack(msgpack.packb({"timestamp": float("nan")}))
    with pytest.raises(ProtocolError, match="not valid msgpack"):
        protocol.unpack(b"\xc1\xc1")
    deep: list = []
    for _ in range(40):
        deep = [deep]
    with pytest.raises(ProtocolError, match="nested deeper"):
        protocol.unpack(msgpack.packb(deep))


def _msg(**fields) -> bytes:
    return protocol.pack(fields)


FRAME = np.zeros((6, 8, 3), np.uint8)


def test_parse_typed_messages():
    reset = parse_message(_msg(type="reset", instruction="go left", token="t"))
    assert isinstance(reset, protocol.Reset) and reset.instruction == "go left" and reset.token == "t"
    step = parse_message(_msg(type="step", image=FRAME, channel_order="bgr", timestamp=3.5))
    assert isinstance(step, protocol.Step) and step.channel_order == "bgr" and step.timestamp == 3.5
    assert step.image.shape == (6, 8, 3)
    assert isinstance(parse_message(_msg(type="health")), protocol.Health)
    assert parse_message(_msg(type="auth", token="abc")).token == "abc"
    obs = parse_message(_msg(image=FRAME, prompt="go right", extra=np.ones(2)))
    assert isinstance(obs, protocol.Observation) and obs.prompt == "go right" and obs.channel_order == "rgb"
    assert isinstance(parse_message(_msg(**{"observation/image": FRAME})), protocol.Observation)


@pytest.mark.parametrize(
    "data, expected, openpi_style",
    [
        ("a text frame", "text frames are not accepted", False),
        (msgpack.packb(5), "must be a msgpack map, got int", False),
        (_msg(type=3), "'type' must be a string", False),
        (_msg(type="fly"), "unknown message type 'fly'", False),
        (_msg(type="reset"), "missing field 'instruction'", False),
        (_msg(type="reset", instruction=["go"]), "'instruction' must be a string", False),
        (_msg(type="reset", instruction="  "), "must not be empty", False),
        (_msg(type="step"), "missing field 'image'", False),
        (_msg(type="step", image=[[1, 2, 3]]), "must be a msgpack-numpy array", False),
        (_msg(type="step", image=FRAME.astype(np.float32)), "dtype uint8, got float32", False),
        (_msg(type="step", image=FRAME[..., 0]), r"shape \(H, W, 3\), got \(6, 8\)", False),
        (_msg(type="step", image=np.zeros((6, 8, 4), np.uint8)), r"got \(6, 8, 4\)", False),
        (_msg(type="step", image=np.zeros((0, 8, 3), np.uint8)), "pixels per side", False),
        (_msg(type="step", image=FRAME, channel_order="hsv"), "'channel_order' must be one of", False),
        (_msg(type="step", image=FRAME, timestamp="now"), "'timestamp' has the wrong type", False),
        (_msg(type="auth"), "needs a string field 'token'", False),
        (_msg(type="health", token=5), "'token' has the wrong type", False),
        (_msg(prompt="go left"), "needs an 'image' field", True),
        (_msg(image=FRAME, prompt=7), "'prompt' must be a string", True),
    ],
)
def test_bad_messages_say_what_was_wrong(data, expected, openpi_style):
    with pytest.raises(ProtocolError, match=expected) as info:
        parse_message(data)
    assert info.value.openpi_style is openpi_style


def test_size_cap_is_checked_before_decoding():
    data = _msg(type="step", image=np.zeros((64, 64, 3), np.uint8))
    assert isinstance(parse_message(data, max_bytes=len(data)), protocol.Step)
    with pytest.raises(ProtocolError, match=f"{len(data)} bytes, over the server's cap of 1000"):
        parse_message(data, max_bytes=1000)


def test_a_refusal_lost_in_a_closing_handshake_is_read_on_a_second_try(monkeypatch):
    """Under TLS the server's HTTP 401 can race its close; the client tries once more and reports it."""
    from websockets.datastructures import Headers
    from websockets.exceptions import ConnectionClosedError, InvalidStatus
    from websockets.http11 import Response

    from mobile_vla.serve import client

    attempts = []

    def refuse(url, **kwargs):
        attempts.append(url)
        if len(attempts) == 1:
            raise ConnectionClosedError(None, None)
        raise InvalidStatus(Response(401, "Unauthorized", Headers(), b"error: wrong token\n"))

    monkeypatch.setattr(client, "connect", refuse)
    with pytest.raises(client.RemoteError, match=r"HTTP 401\): error: wrong token"):
        client._Channel("ws://127.0.0.1:1", token="guess", token_in="header", timeout_s=1.0)
    assert len(attempts) == 2
