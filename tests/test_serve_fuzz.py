"""Property-based fuzzing of the server: every message is answered and the connection stays open.

More than 1000 generated messages go over one connection — random msgpack values, wrong types
for every field, hostile ``__ndarray__`` maps, deep nesting, container headers that claim more
entries than the message holds, very long strings — each followed by a valid step on the same
connection. No message may close the connection or log a server traceback.
"""

from __future__ import annotations

import logging
import struct

import msgpack
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.sync.client import connect

from mobile_vla.serve import protocol
from mobile_vla.serve.fake import FakePolicy
from mobile_vla.serve.server import ServerConfig, serve_in_thread
from serve_fixtures import LEFT

CAP = 1024 * 1024
EXAMPLES = 1200
REPLY_TYPES = {"error", "actions", "reset", "health", "auth"}

# --------------------------------------------------------------------------- generators


class Payload(bytes):
    """Message bytes whose repr stays short when hypothesis reports a failing example."""

    def __repr__(self) -> str:
        shown = bytes.__repr__(self)
        return shown if len(shown) <= 300 else f"{shown[:300]}... ({len(self)} bytes)"


scalars = (
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
    | st.text(max_size=20) | st.binary(max_size=20)
)
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | st.binary(max_size=8),
                                                                         inner, max_size=4),
    max_leaves=20,
)
# Anything but what a field wants (None counts as "absent" for the optional fields).
wrong = values.filter(lambda v: v is not None and not isinstance(v, str))

ODD_DTYPES = ["(-1,)i", "(2,)f4", "(2,3)u1", "i4,i4", "[('a','<i4')]", "O", "|O", "V8", "|V0", "c16", "S10",
              "U3", "M8[s]", "m8", "<f4", "|u1", ">i8", "?", "f2", "", "x" * 8, "f4 (2)", "<f99", "i0"]
dtypes = st.sampled_from(ODD_DTYPES) | st.text(max_size=10) | st.binary(max_size=10) | wrong
dims = st.integers(-5, 8) | st.integers(2**31 - 2, 2**63 - 1) | st.integers(-(2**63), -1) | st.sampled_from([0, 2**62])
shapes = st.lists(dims, max_size=10) | wrong
datas = st.binary(max_size=256) | wrong


@st.composite
def hostile_arrays(draw):
    fields = {b"__ndarray__": draw(st.sampled_from([True, 1, "yes"])) if draw(st.booleans()) else True,
              b"dtype": draw(dtypes), b"shape": draw(shapes), b"data": draw(datas)}
    if draw(st.booleans()):  # a well-formed header whose data disagrees with it
        dtype = draw(st.sampled_from(["|u1", "<f4", "<i8", "|b1"]))
        shape = draw(st.lists(st.integers(0, 6), min_size=1, max_size=3))
        size = int(np.prod(shape)) * np.dtype(dtype).itemsize
        data = draw(st.binary(max_size=size + 3).filter(lambda b, s=size: len(b) != s))
        fields = {b"__ndarray__": True, b"dtype": dtype, b"shape": shape, b"data": data}
    for key in draw(st.lists(st.sampled_from(list(fields)), max_size=2, unique=True)):
        del fields[key]
    if draw(st.booleans()):
        fields = {k.decode(): v for k, v in fields.items()}
    return fields


@st.composite
def hostile_scalars(draw):
    return {b"__npgeneric__": True, b"dtype": draw(dtypes), b"data": draw(values)}


def message_with(field_values: dict) -> bytes:
    return msgpack.packb(field_values, use_bin_type=True)


READ_FIELDS = {  # the fields each kind of message reads
    "step": ["image", "channel_order", "timestamp", "token", "type"],
    "reset": ["instruction", "token", "type"],
    "health": ["token", "type"],
    "auth": ["token", "type"],
    "openpi": ["image", "observation/image", "prompt", "channel_order", "token"],
}


@st.composite
def wrong_fields(draw):
    """A message with one or more of the fields it reads of the wrong type; the field named."""
    kind = draw(st.sampled_from(sorted(READ_FIELDS)))
    fields = {"type": kind} if kind != "openpi" else {}
    candidates = {
        "image": wrong | hostile_arrays() | hostile_scalars(),
        "observation/image": wrong | hostile_arrays(),
        "instruction": wrong,
        "prompt": wrong,
        "channel_order": values.filter(lambda v: v not in ("rgb", "bgr")),
        "timestamp": wrong.filter(lambda v: not isinstance(v, (int, float)) or isinstance(v, bool)),
        "token": wrong,
        "type": wrong,
    }
    names = draw(st.lists(st.sampled_from(READ_FIELDS[kind]), min_size=1, max_size=3, unique=True))
    for name in names:
        fields[name] = draw(candidates[name])
    return message_with(fields), None


@st.composite
def arrays_in_fields(draw):
    """A hostile array where the image goes, or in another field of a reset."""
    array = draw(hostile_arrays() | hostile_scalars())
    if draw(st.booleans()):
        return message_with({"type": "step", "image": array}), "image"
    return message_with({"type": "reset", "instruction": LEFT, "state": array}), "state"


@st.composite
def deep_nesting(draw):
    depth = draw(st.integers(10, 5000))
    opener = draw(st.sampled_from([b"\x91", b"\x81\xa1k", b"\xdc\x00\x01"]))  # [x], {"k": x}, array16 of 1
    inner = draw(st.sampled_from([b"\xc0", b"", b"\x80"]))
    return opener * depth + inner, None


@st.composite
def lying_headers(draw):
    """Container or string headers that claim more than the message holds."""
    claim = draw(st.integers(1, 2**32 - 1))
    header = draw(st.sampled_from([
        b"\xdf" + struct.pack(">I", claim),  # map32
        b"\xdd" + struct.pack(">I", claim),  # array32
        b"\xdb" + struct.pack(">I", claim),  # str32
        b"\xc6" + struct.pack(">I", claim),  # bin32
        b"\xde" + struct.pack(">H", claim & 0xFFFF),  # map16
        b"\xdc" + struct.pack(">H", claim & 0xFFFF),  # array16
    ]))
    prefix = draw(st.sampled_from([b"", b"\x82\xa4type\xa4step\xa5image"]))
    return prefix + header + draw(st.binary(max_size=16)), None


@st.composite
def long_strings(draw):
    char = draw(st.sampled_from(["a", "é", "\x00", "🤖"]))
    text = char * draw(st.integers(10_000, 300_000 // len(char.encode())))
    field = draw(st.sampled_from(["type", "instruction", "prompt", "channel_order", "token", "key"]))
    fields = {"type": "reset", "instruction": LEFT}
    if field == "key":
        fields[text] = 1
    else:
        fields[field] = text
    return message_with(fields), None


@st.composite
def garbage(draw):
    valid = protocol.pack({"type": "health"})
    return draw(st.sampled_from([
        draw(st.binary(max_size=64)),
        valid + draw(st.binary(min_size=1, max_size=8)),  # trailing bytes
        valid[: draw(st.integers(0, len(valid) - 1))],  # truncated
        b"\xc1",  # never used
        # ext types, reserved ones too (-1 is msgpack's timestamp): fixext 1, 4, 8
        draw(st.sampled_from([b"\xd4", b"\xd6", b"\xd7"])) + struct.pack("b", draw(st.integers(-128, 127)))
        + draw(st.binary(min_size=8, max_size=8)),
        msgpack.packb({1: 2}),  # non-string key
    ])), None


random_values = values.map(lambda v: (msgpack.packb(v, use_bin_type=True), None))
hostile = wrong_fields() | arrays_in_fields() | deep_nesting() | lying_headers() | long_strings() | garbage()
messages = (st.tuples(st.just("random"), random_values) | st.tuples(st.just("hostile"), hostile)).map(
    lambda case: (case[0], (Payload(case[1][0]), case[1][1]))
)

# --------------------------------------------------------------------------- the test


class _Errors(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        if record.levelno >= logging.ERROR or record.exc_info:
            self.records.append(record)


@pytest.fixture()
def error_log():
    handler = _Errors()
    logging.getLogger().addHandler(handler)
    try:
        yield handler.records
    finally:
        logging.getLogger().removeHandler(handler)


def check_reply(reply, payload: bytes, field: str | None) -> bool:
    """The reply is of the documented shape; an error exactly when the message breaks the protocol.

    The codec itself is the oracle: ``parse_message`` must raise nothing but ``ProtocolError``.
    Returns whether the reply was an error.
    """
    try:
        protocol.parse_message(payload, CAP)
        invalid = False
    except protocol.ProtocolError:
        invalid = True
    if isinstance(reply, str):  # openpi's convention: a text frame is an error
        assert reply.strip(), "empty text-frame error"
        message = reply
    else:
        fields = protocol.unpack(reply)
        assert isinstance(fields, dict) and fields.get("type") in REPLY_TYPES, fields
        if fields["type"] != "error":
            assert not invalid, f"a message that breaks the protocol was accepted: {fields}"
            return False
        assert set(fields) <= {"type", "message", "code"}, fields
        message = fields["message"]
        assert isinstance(message, str) and message, fields
    assert len(message) < 2000, "the error quotes too much of the message"
    if field is not None and invalid:
        assert field in message, f"the error does not name {field!r}: {message}"
    return True


def test_every_fuzzed_message_is_answered_and_the_connection_stays_open(error_log):
    config = ServerConfig(port=0, max_message_bytes=CAP, batch_window_ms=0)
    frame = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    step = protocol.pack({"type": "step", "image": frame})
    sent = {"random": 0, "hostile": 0}
    errors = {"random": 0, "hostile": 0}
    with serve_in_thread(FakePolicy(), config) as server, connect(server.url, compression=None) as ws:
        protocol.unpack(ws.recv(timeout=10))
        ws.send(protocol.pack({"type": "reset", "instruction": LEFT}))
        assert protocol.unpack(ws.recv(timeout=10))["ok"] is True

        @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                  suppress_health_check=list(HealthCheck))
        @given(messages)
        def answer(case):
            kind, (payload, field) = case
            assert len(payload) <= CAP
            ws.send(payload)
            errors[kind] += check_reply(ws.recv(timeout=10), payload, field)
            ws.send(step)  # the same connection still serves
            after = protocol.unpack(ws.recv(timeout=10))
            assert after["type"] == "actions" and after["actions"].shape == (10, 2), after
            sent[kind] += 1

        answer()
    assert sum(sent.values()) >= 1000 and sent["hostile"] >= 500, sent
    assert errors["hostile"] >= 0.8 * sent["hostile"], (errors, sent)  # the generators do make bad messages
    assert not error_log, [r.getMessage() for r in error_log[:5]]
