"""The wire protocol: round trips, and every malformed message refused with a code and a sentence,
before anything is allocated for it. The corpus below keeps issue 15's reproducers."""

import json
import struct
import zlib

import numpy as np
import pytest

from scene_r1.shared.image_header import HeaderError, image_header
from scene_r1.shared.protocol import (
    MAX_QUERY_CHARS,
    QUERY_MODES,
    REPLIES,
    REQUESTS,
    Message,
    ProtocolError,
    decode,
    encode,
    encode_reply,
    error_message,
)
from scene_r1.shared.queries import check_query


def header(kind="scene.upload", id="x", payload=None, buffers=None) -> bytes:
    data = {"v": 1, "type": kind, "id": id, "payload": payload or {}, "buffers": buffers or []}
    return json.dumps(data).encode()


def descriptor(name="a", dtype="uint8", shape=(4,), codec="raw") -> dict:
    return {"name": name, "dtype": dtype, "shape": list(shape), "codec": codec}


def test_round_trip_raw_and_zlib_keep_every_byte_and_the_payload():
    rgb = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    depth = np.linspace(0, 3, 24 * 32, dtype=np.float32).reshape(24, 32)
    message = Message("scene.upload", payload={"a": "é"}, arrays={"rgb": rgb, "depth": depth})
    for codec in ("raw", "zlib"):
        back = decode(encode(message, codec=codec))
        assert back.type == "scene.upload" and back.payload == {"a": "é"} and back.id == message.id
        assert (back.arrays["rgb"] == rgb).all() and (back.arrays["depth"] == depth).all()
    smooth = np.zeros((64, 64, 3), np.uint8)
    assert len(encode(Message("result", arrays={"a": smooth}), codec="zlib")[1]) < smooth.nbytes / 20


def test_round_trip_jpeg_keeps_the_channel_order():
    pytest.importorskip("cv2")
    photo = np.stack(
        [*np.meshgrid(np.arange(32) * 8, np.arange(24) * 10, indexing="xy"), np.full((24, 32), 128)], -1
    ).astype(np.uint8)
    depth = np.ones((24, 32), np.float32)
    frames = encode(Message("result", arrays={"rgb": photo, "depth": depth}), codecs={"rgb": "jpeg", "depth": "zlib"})
    back = decode(frames)
    assert back.arrays["rgb"].shape == photo.shape and np.abs(back.arrays["rgb"].astype(int) - photo).mean() < 4
    assert (back.arrays["depth"] == depth).all()


# (frames, the error code): each from a way a peer broke, or tried to break, a server.
CORPUS = [
    ([], "bad-message"),
    ([b"\xff\xfe"], "bad-header"),
    ([b"[1, 2]"], "bad-header"),
    ([b'{"v": 99, "type": "hello", "id": "x"}'], "version"),
    ([b'{"v": true, "type": "hello", "id": "x"}'], "version"),
    # issue 15: an echoed id with a lone surrogate, NaN echoed by cancel, Infinity, 1e400
    ([b'{"v":1,"type":"hello","id":"\\ud800"}'], "bad-header"),
    ([b'{"v":1,"type":"cancel","id":"x","payload":{"request":NaN}}'], "bad-header"),
    ([b'{"v":1,"type":"cancel","id":"x","payload":{"request":Infinity}}'], "bad-header"),
    ([b'{"v":1,"type":"query","id":"x","payload":{"text":1e400}}'], "bad-header"),
    ([b'{"v":1,"type":"query","id":"x","payload":{"text":"\\udfff a mug"}}'], "bad-header"),
    # ids: list, object, number, empty, too long, not ASCII
    ([b'{"v":1,"type":"hello","id":["a"]}'], "bad-header"),
    ([b'{"v":1,"type":"hello","id":{"a":1}}'], "bad-header"),
    ([b'{"v":1,"type":"hello","id":5}'], "bad-header"),
    ([b'{"v":1,"type":"hello","id":""}'], "bad-header"),
    ([header("hello", id="a" * 65)], "bad-header"),
    ([header("hello", id="caf\u00e9")], "bad-header"),
    ([b'{"v":1,"type":"HELLO!","id":"x"}'], "bad-header"),
    ([b'{"v":1,"type":"hello","id":"x","payload":[]}'], "bad-header"),
    # deep nesting, in the payload and in the JSON itself
    ([b'{"v":1,"type":"hello","id":"x","payload":' + b'{"a":' * 40 + b"1" + b"}" * 41], "bad-header"),
    ([b'{"v":1,"type":"hello","id":"x","payload":{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}}"], "bad-header"),
    ([b"{" * 100_000], "bad-header"),
    ([b'{"v":1,"type":"hello","id":"x","payload":{"a":"' + b"x" * (1 << 20) + b'"}}'], "too-large"),
    # buffers: hello and health carry none; counts, names, dtypes, shapes, sizes
    ([header("hello", buffers=[descriptor()]), b"abcd"], "bad-buffers"),
    ([header("health", buffers=[descriptor()]), b"abcd"], "bad-buffers"),
    ([header(buffers=[descriptor()])], "bad-buffers"),
    ([header(buffers=[descriptor()]), b"abc"], "bad-buffers"),
    ([header(buffers=[descriptor(dtype="object", shape=(1,))]), b"a"], "bad-buffers"),
    ([header(buffers=[descriptor(shape=(-1,))]), b"a"], "bad-buffers"),
    ([header(buffers=[descriptor(shape=(1, 1, 1, 1, 1))]), b"a"], "bad-buffers"),
    ([header(buffers=[{"name": "a", "dtype": "uint8", "shape": [True], "codec": "raw"}]), b"a"], "bad-buffers"),
    ([header(buffers=[descriptor(), descriptor()]), b"abcd", b"abcd"], "bad-buffers"),
    ([header(buffers=[descriptor(codec="lz4")]), b"abcd"], "bad-buffers"),
    ([header(buffers=[descriptor(shape=(100000, 100000, 100), codec="zlib")]), b"a"], "too-large"),
    ([header(buffers=[descriptor(codec="zlib")]), b"not zlib"], "bad-buffers"),
    ([header(buffers=[descriptor(codec="zlib")]), zlib.compress(b"abcdefgh")], "bad-buffers"),
    # issue 15: 4 buffers of 512 MiB declared in a little zlib: refused before inflating anything
    (
        [header(buffers=[descriptor(f"b{i}", shape=(1 << 29,), codec="zlib") for i in range(4)])]
        + [zlib.compress(bytes(1 << 16))] * 4,
        "too-large",
    ),
]


@pytest.mark.parametrize("frames, code", CORPUS, ids=[f"case{i}" for i in range(len(CORPUS))])
def test_malformed_messages_get_a_code_and_a_sentence(frames, code):
    with pytest.raises(ProtocolError) as error:
        decode(frames, max_message_bytes=1 << 30)
    assert error.value.code == code and str(error.value)


def test_the_cap_counts_every_buffer_of_a_message_together():
    arrays = {f"b{i}": np.zeros(1000, np.uint8) for i in range(4)}
    frames = encode(Message("scene.upload", arrays=arrays))
    assert len(decode(frames, max_message_bytes=4000).arrays) == 4
    with pytest.raises(ProtocolError) as error:
        decode(frames, max_message_bytes=3999)
    assert error.value.code == "too-large"


def png_header(width: int, height: int, colour: int = 2) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))


def test_an_image_whose_header_disagrees_with_its_declared_shape_is_refused_before_decoding():
    # issue 15: a PNG that declares 256x192 in the message but is 20000x20000 inside
    bomb = png_header(20000, 20000) + b"\x00" * 64
    frames = [header(buffers=[descriptor("rgb/0", shape=(192, 256, 3), codec="png")]), bomb]
    with pytest.raises(ProtocolError, match="20000x20000") as error:
        decode(frames)
    assert error.value.code == "bad-buffers"
    with pytest.raises(ProtocolError, match="not a png"):
        decode([header(buffers=[descriptor("rgb/0", shape=(2, 2, 3), codec="png")]), b"GIF89a" + b"\x00" * 20])


def test_image_headers_are_read_from_real_png_and_jpeg_files():
    cv2 = pytest.importorskip("cv2")
    image = np.zeros((48, 64, 3), np.uint8)
    for suffix in (".png", ".jpg"):
        ok, data = cv2.imencode(suffix, image)
        assert ok and image_header(data.tobytes())[:3] == (64, 48, 3)
    ok, data = cv2.imencode(".png", np.zeros((5, 7), np.uint16))
    assert image_header(data.tobytes()) == (7, 5, 1, 16)
    with pytest.raises(HeaderError):
        image_header(b"\xff\xd8\xff\xe0\x00\x02")


@pytest.mark.parametrize(
    "payload",
    [
        {"request": float("nan")},
        {"text": "\ud800"},
        {"deep": [[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]},
        {"x": object()},
    ],
)
def test_the_reply_encoder_never_raises(payload):
    frames = encode_reply(Message("result", "ok-id", payload))
    back = decode(frames)
    assert back.id == "ok-id" and back.type in ("result", "error")
    frames = encode_reply(Message("hello", "\ud800", payload))  # an id no peer may see echoed
    assert decode(frames).id == "unknown"


def test_error_replies_never_echo_a_bad_id():
    assert error_message("\ud800", "bad-header", "x").id == "unknown"
    assert decode(encode(error_message("a" * 500, "bad-header", "x"))).id == "unknown"


def test_the_one_list_of_types_modes_and_options():
    assert set(REQUESTS) == {"hello", "health", "scene.has", "scene.upload", "query", "cancel", "scan.open"}
    assert "result" in REPLIES and "error" in REPLIES and set(QUERY_MODES) == {"ground", "ask", "lift"}
    check_query("ground", "the mug", {"every": True, "no_cache": True})
    check_query("ground", "la tasse rouge\n\tà gauche 🍵", {})  # any language, tabs and newlines
    check_query("lift", "", {"frame": 3, "box": [1, 2, 3.5, 4]})
    for mode, text, options in (
        ("dance", "x", {}),
        ("ask", " ", {}),
        ("ask", "x" * (MAX_QUERY_CHARS + 1), {}),
        ("ask", "why", {"repeat": 1}),
        ("ask", "caf\udce9?", {}),  # undecodable bytes from a command line
        ("ground", "the mug\x00; rm -rf /", {}),  # a NUL byte
        ("ground", "the \x1b[31mred\x1b[0m mug", {}),  # terminal escapes
        ("ground", "a", {"no_cache": "yes"}),
        ("lift", "", {"frame": -1, "box": [1, 2, 3, 4]}),
        ("lift", "", {"frame": True, "box": [1, 2, 3, 4]}),
        ("lift", "", {"frame": 0, "box": [1, 2, 3]}),
        ("lift", "", {"frame": 0, "box": [1, 2, 3, float("inf")]}),
        ("lift", "", {"frame": 0, "box": [1, 2, 3, 1e9]}),
    ):
        with pytest.raises(ProtocolError) as error:
            check_query(mode, text, options)
        assert error.value.code == "bad-payload"
