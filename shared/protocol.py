"""The wire protocol between Blender / the viewer / the CLI and the backend (docs/protocol.md).

Every message is multipart: frame 0 is a JSON header
    {"v": 1, "type": "...", "id": "...", "payload": {...},
     "buffers": [{"name": "...", "dtype": "uint8", "shape": [h, w, 3], "codec": "raw"}, ...]}
and frame i+1 holds buffer i: raw array bytes (sent zero-copy), or zlib-compressed bytes, or a
PNG/JPEG image (remote links; needs OpenCV on the side that encodes or decodes). Never pickle.

Everything a peer sends is checked here, before it is used or allocated for: the header's ids
and numbers (anything echoed back must be encodable again), each request's payload against
the one list of modes, options and limits below, and every buffer's size (declared, inflated
and, for images, read from the image header) against a cap on the whole message.

numpy + the standard library only: Blender's Python (numpy 1.26) and the backend (numpy 2.x).
"""

from __future__ import annotations

import json
import math
import re
import uuid
import zlib
from dataclasses import dataclass, field

import numpy as np

from .image_header import HeaderError, image_header

PROTOCOL_VERSION = 1

# Request types (client -> server) and reply types (server -> client).
REQUESTS = ("hello", "health", "scene.has", "scene.upload", "query", "cancel", "scan.open")
REPLIES = (
    "hello",
    "health",
    "scene.has",
    "scene.stored",
    "accepted",
    "progress",
    "result",
    "error",
    "cancel",
    "scan.opened",
)
WITH_BUFFERS = ("scene.upload", "result", "scan.opened")  # every other message carries none
QUERY_MODES = ("ground", "ask", "lift")
# The options each query mode takes; `no_cache` asks for a fresh run instead of a memoised result.
QUERY_OPTIONS = {"ground": ("every", "no_cache"), "ask": ("no_cache",), "lift": ("frame", "box", "points", "no_cache")}

DTYPES = ("uint8", "uint16", "int32", "int64", "float32", "float64", "bool")
CODECS = ("raw", "zlib", "png", "jpeg")

# ---- limits ------------------------------------------------------------------------------------
MAX_HEADER_BYTES = 1 << 20
MAX_MESSAGE_BYTES = 4 << 30  # default cap on one message's decoded (and compressed) buffer bytes
MAX_BUFFERS = 20_002  # 10,000 frames of colour + depth, and a little
MAX_NESTING = 16  # JSON depth of a header
MAX_QUERY_CHARS = 2000  # a query's text
MAX_NAME_CHARS = 200  # a scene's or worker's name
MAX_FRAMES = 5000  # frames in one uploaded scene (a server may take fewer)
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")  # request ids: short ASCII
HASH_PATTERN = re.compile(r"[0-9a-f]{32}")  # scene content hashes
TYPE_PATTERN = re.compile(r"[a-z][a-z.]{0,31}")


class ProtocolError(ValueError):
    """A message that breaks the protocol. `code` is machine-readable, the text is for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


@dataclass
class Message:
    type: str
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    payload: dict = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Encoded:
    """A buffer already encoded with `codec` (sent as is): what an array of `dtype`/`shape` becomes."""

    data: bytes
    dtype: str
    shape: tuple
    codec: str


def is_request_id(value) -> bool:
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None


def is_scene_hash(value) -> bool:
    return isinstance(value, str) and HASH_PATTERN.fullmatch(value) is not None


def safe_id(value) -> str:
    """A value fit to echo as a reply's id: itself when it is a valid request id, else "unknown"."""
    return value if is_request_id(value) else "unknown"


# ---- encoding ------------------------------------------------------------------------------------
def encode(message: Message, codec: str = "raw", codecs: dict[str, str] | None = None) -> list:
    """Message -> multipart frames. `codec` applies to every array unless `codecs[name]` says
    otherwise; raw arrays are sent as memoryviews (zero-copy). ProtocolError on what the
    protocol cannot carry (a dtype, NaN in the payload, a lone surrogate)."""
    descriptors, frames = [], []
    for name, array in message.arrays.items():
        if isinstance(array, Encoded):  # encoded once by the sender (e.g. JPEG colour whose hash names its pixels)
            frames.append(array.data)
            descriptors.append({"name": name, "dtype": array.dtype, "shape": list(array.shape), "codec": array.codec})
            continue
        array = np.asarray(array)
        if array.dtype.name not in DTYPES:
            raise ProtocolError(
                "bad-dtype", f"array {name!r} has dtype {array.dtype}, the protocol carries {', '.join(DTYPES)}"
            )
        chosen = (codecs or {}).get(name, codec)
        frames.append(_compress(array, chosen, name))
        descriptors.append({"name": name, "dtype": array.dtype.name, "shape": list(array.shape), "codec": chosen})
    header = {"v": PROTOCOL_VERSION, "type": message.type, "id": message.id, "payload": message.payload}
    header["buffers"] = descriptors
    try:
        _check_tree(message.payload, 0)  # what the other side's decoder would refuse
        text = json.dumps(header, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as error:
        raise ProtocolError("bad-message", f"the message cannot be sent as JSON: {str(error)[:200]}") from None
    return [text] + frames


def encode_reply(message: Message) -> list:
    """Frames for a reply; never raises. A payload the protocol cannot carry is sent scrubbed
    (NaN -> null, lone surrogates -> U+FFFD); failing that, an `internal` error goes instead."""
    reply_id = safe_id(message.id)
    try:
        return encode(Message(message.type, reply_id, message.payload, message.arrays))
    except Exception:  # noqa: BLE001 - scrub and try again below
        pass
    try:
        return encode(Message(message.type, reply_id, _scrub(message.payload, 0), message.arrays))
    except Exception as error:  # noqa: BLE001 - the error below is plain ASCII: it always encodes
        text = f"the reply could not be encoded ({type(error).__name__})"
        return encode(error_message(reply_id, "internal", text))


def _scrub(value, depth: int):
    if depth > MAX_NESTING:
        return None
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        return value.encode("utf-8", "replace").decode("utf-8")
    if isinstance(value, dict):
        return {str(_scrub(str(k), depth)): _scrub(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int)):
        return value
    return _scrub(str(value), depth)


def error_message(request_id: str, code: str, text: str) -> Message:
    return Message("error", safe_id(request_id), {"code": code, "message": text})


# ---- decoding --------------------------------------------------------------------------------------
def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:20]} is out of range")
    return value


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def decode_header(raw: bytes) -> dict:
    """Frame 0 -> the header as a dict, checked: version, a type, a short ASCII id, a payload
    object of finite numbers and well-formed strings, at most MAX_NESTING deep."""
    if len(raw) > MAX_HEADER_BYTES:
        raise ProtocolError("too-large", f"the JSON header is {len(raw)} bytes; the limit is {MAX_HEADER_BYTES}")
    try:
        header = json.loads(raw.decode("utf-8"), parse_float=_finite_float, parse_constant=_no_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise ProtocolError("bad-header", f"frame 0 is not a UTF-8 JSON header: {str(error)[:200]}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad-header", "the header is not a JSON object")
    if header.get("v") != PROTOCOL_VERSION or isinstance(header.get("v"), bool):
        shown = str(header.get("v"))[:20] if isinstance(header.get("v"), (int, str)) else "missing or not a number"
        text = f"protocol version {shown} is not supported; this side speaks {PROTOCOL_VERSION}"
        raise ProtocolError("version", text)
    kind, message_id = header.get("type"), header.get("id")
    if not isinstance(kind, str) or not TYPE_PATTERN.fullmatch(kind):
        raise ProtocolError("bad-header", "the header needs a 'type' of lower-case letters and dots")
    if not is_request_id(message_id):
        raise ProtocolError(
            "bad-header", f"the header needs an 'id' of 1 to 64 ASCII letters, digits or ._:- ({ID_PATTERN.pattern})"
        )
    if not isinstance(header.setdefault("payload", {}), dict):
        raise ProtocolError("bad-header", "'payload' must be a JSON object")
    _check_tree(header["payload"], 0)
    descriptors = header.setdefault("buffers", [])
    if not isinstance(descriptors, list) or len(descriptors) > MAX_BUFFERS:
        raise ProtocolError("bad-buffers", f"'buffers' must be a list of at most {MAX_BUFFERS} descriptors")
    if descriptors and kind not in WITH_BUFFERS:
        raise ProtocolError("bad-buffers", f"a {kind} message carries no buffers (only {', '.join(WITH_BUFFERS)} do)")
    return header


def _check_tree(value, depth: int) -> None:
    """No lone surrogates (they cannot be encoded back to UTF-8) and no deeper than MAX_NESTING."""
    if depth > MAX_NESTING:
        raise ProtocolError("bad-header", f"the payload is nested deeper than {MAX_NESTING} levels")
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ProtocolError("bad-header", "the payload holds a lone UTF-16 surrogate (not valid text)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_tree(key, depth + 1)
            _check_tree(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_tree(item, depth + 1)


def decode(frames: list, max_message_bytes: int = MAX_MESSAGE_BYTES) -> Message:
    """Multipart frames (bytes, zmq.Frame or memoryview) -> Message, or a ProtocolError saying
    exactly what is wrong. Nothing is allocated for buffers until every descriptor is checked
    and their total is within `max_message_bytes`."""
    if not frames:
        raise ProtocolError("bad-message", "an empty message")
    header = decode_header(_bytes(frames[0]))
    descriptors = header["buffers"]
    if len(descriptors) != len(frames) - 1:
        text = f"the header describes {len(descriptors)} buffers but {len(frames) - 1} follow"
        raise ProtocolError("bad-buffers", text)
    checked = [_descriptor(d) for d in descriptors]
    names = [name for name, *_ in checked]
    if len(set(names)) != len(names):
        raise ProtocolError("bad-buffers", "two buffers have the same name")
    total = sum(nbytes for *_, nbytes in checked)
    total += sum(_nbytes(frame) for (_, _, _, codec, _), frame in zip(checked, frames[1:]) if codec != "raw")
    if total > max_message_bytes:
        raise ProtocolError(
            "too-large", f"the message's buffers need {total} bytes; this side takes at most {max_message_bytes}"
        )
    arrays = {desc[0]: _array(desc, frame) for desc, frame in zip(checked, frames[1:])}
    return Message(header["type"], header["id"], header["payload"], arrays)


def _descriptor(descriptor) -> tuple[str, str, list, str, int]:
    if not isinstance(descriptor, dict):
        raise ProtocolError("bad-buffers", "a buffer descriptor is not a JSON object")
    name, dtype, shape, codec = (descriptor.get(k) for k in ("name", "dtype", "shape", "codec"))
    if not isinstance(name, str) or not 0 < len(name) <= 64 or dtype not in DTYPES or codec not in CODECS:
        raise ProtocolError(
            "bad-buffers",
            f"a buffer descriptor needs a name (1-64 characters), a dtype in {DTYPES} and a codec in {CODECS}",
        )
    if (
        not isinstance(shape, list)
        or len(shape) > 4
        or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 1 << 40 for s in shape)
    ):
        raise ProtocolError("bad-buffers", f"buffer {name!r}: shape must be up to 4 non-negative integers")
    return name, dtype, shape, codec, math.prod(shape) * np.dtype(dtype).itemsize


def _array(checked: tuple, frame) -> np.ndarray:
    name, dtype, shape, codec, expected = checked
    if codec == "raw":
        buffer = frame.buffer if hasattr(frame, "buffer") else frame  # zmq.Frame: no copy
        if memoryview(buffer).nbytes != expected:
            raise ProtocolError(
                "bad-buffers", f"buffer {name!r}: {memoryview(buffer).nbytes} bytes for shape {shape} {dtype}"
            )
        return np.frombuffer(buffer, dtype=dtype).reshape(shape)
    data = _bytes(frame)
    if codec == "zlib":
        try:
            inflater = zlib.decompressobj()
            raw = inflater.decompress(data, expected + 1)  # bounded: a zip bomb stops here
        except zlib.error as error:
            raise ProtocolError("bad-buffers", f"buffer {name!r} is not valid zlib data: {error}") from None
        if len(raw) != expected or inflater.unconsumed_tail:
            raise ProtocolError("bad-buffers", f"buffer {name!r} inflates to the wrong size for shape {shape} {dtype}")
        return np.frombuffer(raw, dtype=dtype).reshape(shape)
    _check_image_header(data, name, shape, codec)
    array = _decode_image(data, name)
    if list(array.shape) != shape or array.dtype.name != dtype:
        raise ProtocolError(
            "bad-buffers", f"buffer {name!r}: the {codec} image is {array.shape} {array.dtype}, the header says {shape}"
        )
    return array


def _check_image_header(data: bytes, name: str, shape: list, codec: str) -> None:
    """The image's own header must declare the buffer's shape before a decoder allocates it."""
    try:
        width, height, channels, _ = image_header(data)
    except (HeaderError, IndexError, ValueError) as error:
        raise ProtocolError("bad-buffers", f"buffer {name!r} is not a {codec} image: {error}") from None
    declared = (shape[1], shape[0], shape[2] if len(shape) == 3 else 1) if len(shape) in (2, 3) else None
    if declared is None or (width, height, channels) != declared:
        raise ProtocolError(
            "bad-buffers", f"buffer {name!r}: the image header says {width}x{height}x{channels}, the message {shape}"
        )


def _compress(array: np.ndarray, codec: str, name: str):
    if codec == "raw":
        return memoryview(np.ascontiguousarray(array)).cast("B")
    if codec == "zlib":
        return zlib.compress(np.ascontiguousarray(array).tobytes(), 1)  # level 1: speed over the last percent
    if codec in ("png", "jpeg"):
        try:
            import cv2
        except ImportError:
            raise ProtocolError("bad-codec", f"the {codec} codec needs OpenCV on the sending side; use zlib") from None
        image = array[..., ::-1] if array.ndim == 3 and array.shape[2] == 3 else array  # cv2 is BGR
        ok, data = cv2.imencode(
            "." + ("jpg" if codec == "jpeg" else "png"),
            np.ascontiguousarray(image),
            [cv2.IMWRITE_JPEG_QUALITY, 92] if codec == "jpeg" else [],
        )
        if not ok:
            raise ProtocolError("bad-codec", f"{codec} cannot encode array {name!r} of {array.shape} {array.dtype}")
        return data.tobytes()
    raise ProtocolError("bad-codec", f"unknown codec {codec!r}; known: {', '.join(CODECS)}")


def _decode_image(data: bytes, name: str) -> np.ndarray:
    try:
        import cv2
    except ImportError:
        raise ProtocolError("bad-codec", "PNG/JPEG buffers need OpenCV on the receiving side") from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise ProtocolError("bad-buffers", f"buffer {name!r} is not a decodable image")
    return image[..., ::-1].copy() if image.ndim == 3 else image


def _bytes(frame) -> bytes:
    if hasattr(frame, "bytes"):
        return frame.bytes
    return bytes(frame)


def _nbytes(frame) -> int:
    return memoryview(frame.buffer if hasattr(frame, "buffer") else frame).nbytes
