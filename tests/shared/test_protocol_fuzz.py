"""Property-based fuzzing (Hypothesis) of the decoder: whatever the frames, decode() either gives a
message whose every echoed value encodes again, or raises ProtocolError, within the byte cap."""

import json

import pytest

hypothesis = pytest.importorskip("hypothesis")  # the Blender environments run tests/shared without it
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from scene_r1.shared.protocol import (  # noqa: E402
    CODECS,
    DTYPES,
    REQUESTS,
    Message,
    ProtocolError,
    decode,
    encode,
    encode_reply,
    error_message,
)

CAP = 1 << 20
FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(1 << 70), max_value=1 << 70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0xFFFF), max_size=20),  # surrogates included
)
json_values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
)
descriptors = st.fixed_dictionaries(
    {
        "name": st.text(max_size=8) | st.integers(),
        "dtype": st.sampled_from([*DTYPES, "object", "complex128"]),
        "shape": st.lists(st.integers(min_value=-2, max_value=1 << 33), max_size=5) | st.text(max_size=3),
        "codec": st.sampled_from([*CODECS, "lz4"]),
    }
)
headers = st.fixed_dictionaries(
    {
        "v": st.sampled_from([1, 1, 1, 2, "1", True, None]),
        "type": st.sampled_from([*REQUESTS, "result", "x", "", "HELLO"]) | st.text(max_size=5),
        "id": st.text(max_size=70) | st.integers() | st.lists(st.text(max_size=3), max_size=2),
        "payload": json_values,
        "buffers": st.lists(descriptors, max_size=3),
    }
)


def to_json(header) -> bytes:
    return json.dumps(header, allow_nan=True).encode("utf-8", "surrogatepass")


@FAST
@given(header=headers, blobs=st.lists(st.binary(max_size=64), max_size=4))
def test_decode_accepts_or_refuses_never_crashes(header, blobs):
    try:
        message = decode([to_json(header), *blobs], max_message_bytes=CAP)
    except ProtocolError as error:
        assert error.code and str(error)
        return
    assert sum(a.nbytes for a in message.arrays.values()) <= CAP
    encode(Message("error", message.id, message.payload))  # everything echoed encodes again


@FAST
@given(frames=st.lists(st.binary(max_size=200), max_size=5))
def test_random_bytes_are_refused_with_a_code(frames):
    try:
        decode(frames, max_message_bytes=CAP)
    except ProtocolError as error:
        assert error.code


@FAST
@given(kind=st.text(max_size=10), request_id=st.text(max_size=80), payload=json_values)
def test_every_reply_encodes_and_decodes(kind, request_id, payload):
    reply = Message(kind, request_id, payload if isinstance(payload, dict) else {"value": payload})
    frames = encode_reply(reply)
    try:
        back = decode(frames, max_message_bytes=CAP)
    except ProtocolError as error:  # only an unusable type can be refused: the reply itself went out
        assert error.code == "bad-header" and "type" in str(error)
        back = decode(encode_reply(error_message(request_id, "internal", "x")))
    assert back.id == request_id or back.id == "unknown"
