"""The wire protocol between Blender / the viewer / the CLI and the backend (docs/protocol.md).

Every message is multipart: frame 0 is a UTF-8 JSON header
    {"v": 1, "type": "...", "id": "...", "payload": {...},
     "buffers": [{"name": "...", "dtype": "uint8", "shape": [h, w, 3], "codec": "raw"}, ...]}
and frame i+1 holds buffer i: raw array bytes (sent zero-copy), or zlib-compressed bytes, or a
PNG/JPEG image (remote links; needs OpenCV on the side that encodes or decodes). Never pickle.

numpy + the standard library only: Blender's Python (numpy 1.26) and the backend (numpy 2.x).
"""

from __future__ import annotations

import hashlib
import json
import math
import uuid
import zlib
from dataclasses import dataclass, field

import numpy as np

PROTOCOL_VERSION = 1

# Request types (client -> server) and reply types (server -> client).
REQUESTS = ("hello", "health", "scene.has", "scene.upload", "query", "cancel")
REPLIES = ("hello", "health", "scene.has", "scene.stored", "accepted", "progress", "result", "error", "cancelled")
QUERY_MODES = ("ground", "ask", "lift")

DTYPES = ("uint8", "uint16", "int32", "int64", "float32", "float64", "bool")
CODECS = ("raw", "zlib", "png", "jpeg")
MAX_HEADER_BYTES = 1 << 20


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


def encode(message: Message, codec: str = "raw", codecs: dict[str, str] | None = None) -> list:
    """Message -> multipart frames. `codec` applies to every array unless `codecs[name]` says
    otherwise; raw arrays are sent as memoryviews (zero-copy)."""
    descriptors, frames = [], []
    for name, array in message.arrays.items():
        array = np.asarray(array)
        if array.dtype.name not in DTYPES:
            raise ProtocolError(
                "bad-dtype", f"array {name!r} has dtype {array.dtype}, the protocol carries {', '.join(DTYPES)}"
            )
        chosen = (codecs or {}).get(name, codec)
        frames.append(_compress(array, chosen, name))
        descriptors.append({"name": name, "dtype": array.dtype.name, "shape": list(array.shape), "codec": chosen})
    header = {
        "v": PROTOCOL_VERSION,
        "type": message.type,
        "id": message.id,
        "payload": message.payload,
        "buffers": descriptors,
    }
    return [json.dumps(header, ensure_ascii=False, allow_nan=False).encode("utf-8")] + frames


def decode(frames: list, max_array_bytes: int = 1 << 31) -> Message:
    """Multipart frames (bytes, zmq.Frame or memoryview) -> Message, or a ProtocolError saying
    exactly what is wrong."""
    if not frames:
        raise ProtocolError("bad-message", "an empty message")
    raw_header = _bytes(frames[0])
    if len(raw_header) > MAX_HEADER_BYTES:
        raise ProtocolError("too-large", f"the JSON header is {len(raw_header)} bytes; the limit is {MAX_HEADER_BYTES}")
    try:
        header = json.loads(raw_header.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise ProtocolError("bad-header", f"frame 0 is not a UTF-8 JSON header: {error}") from None
    if not isinstance(header, dict):
        raise ProtocolError("bad-header", "the header is not a JSON object")
    if header.get("v") != PROTOCOL_VERSION:
        raise ProtocolError(
            "version", f"protocol version {header.get('v')!r} is not supported; this side speaks {PROTOCOL_VERSION}"
        )
    kind, message_id, payload = header.get("type"), header.get("id"), header.get("payload", {})
    if not isinstance(kind, str) or not isinstance(message_id, str) or not message_id or len(message_id) > 128:
        raise ProtocolError(
            "bad-header", "the header needs a string 'type' and a non-empty string 'id' (at most 128 characters)"
        )
    if not isinstance(payload, dict):
        raise ProtocolError("bad-header", "'payload' must be a JSON object")
    descriptors = header.get("buffers", [])
    if not isinstance(descriptors, list) or len(descriptors) != len(frames) - 1:
        count = len(descriptors) if isinstance(descriptors, list) else "no"
        raise ProtocolError("bad-buffers", f"the header describes {count} buffers but {len(frames) - 1} follow it")
    arrays = {}
    for descriptor, frame in zip(descriptors, frames[1:]):
        name, array = _array(descriptor, frame, max_array_bytes)
        if name in arrays:
            raise ProtocolError("bad-buffers", f"two buffers are named {name!r}")
        arrays[name] = array
    return Message(kind, message_id, payload, arrays)


def _array(descriptor, frame, max_array_bytes: int) -> tuple[str, np.ndarray]:
    if not isinstance(descriptor, dict):
        raise ProtocolError("bad-buffers", "a buffer descriptor is not a JSON object")
    name, dtype, shape, codec = (descriptor.get(k) for k in ("name", "dtype", "shape", "codec"))
    if not isinstance(name, str) or dtype not in DTYPES or codec not in CODECS:
        raise ProtocolError(
            "bad-buffers",
            f"buffer descriptor {descriptor!r:.200} needs a name, a dtype in {DTYPES} and a codec in {CODECS}",
        )
    if (
        not isinstance(shape, list)
        or len(shape) > 4
        or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
    ):
        raise ProtocolError(
            "bad-buffers", f"buffer {name!r}: shape must be up to 4 non-negative integers, got {shape!r:.100}"
        )
    expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if expected > max_array_bytes:
        raise ProtocolError("too-large", f"buffer {name!r} would be {expected} bytes; the limit is {max_array_bytes}")
    data = _bytes(frame) if codec != "raw" else frame
    if codec == "raw":
        buffer = frame.buffer if hasattr(frame, "buffer") else frame  # zmq.Frame: no copy
        if memoryview(buffer).nbytes != expected:
            raise ProtocolError(
                "bad-buffers",
                f"buffer {name!r}: {memoryview(buffer).nbytes} bytes for shape {shape} {dtype} ({expected} expected)",
            )
        return name, np.frombuffer(buffer, dtype=dtype).reshape(shape)
    if codec == "zlib":
        try:
            inflater = zlib.decompressobj()
            raw = inflater.decompress(data, expected + 1)  # bounded: a zip bomb stops here
        except zlib.error as error:
            raise ProtocolError("bad-buffers", f"buffer {name!r} is not valid zlib data: {error}") from None
        if len(raw) != expected or inflater.unconsumed_tail:
            raise ProtocolError("bad-buffers", f"buffer {name!r} inflates to the wrong size for shape {shape} {dtype}")
        return name, np.frombuffer(raw, dtype=dtype).reshape(shape)
    array = _decode_image(data, name)
    if list(array.shape) != shape or array.dtype.name != dtype:
        raise ProtocolError(
            "bad-buffers",
            f"buffer {name!r}: the {codec} image is {array.shape} {array.dtype}, the header says {shape} {dtype}",
        )
    return name, array


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


MAX_POINTS = 64


def check_lift_options(options: dict) -> None:
    """A lift query's options: frame (an integer), box (a list [x1, y1, x2, y2], or null) and points
    (an optional list of [x, y, label]: finite numbers, label 1 on the object and 0 not); a box or a
    positive point."""
    box, points = options.get("box"), options.get("points", [])

    def finite(value) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)

    if not isinstance(options.get("frame"), int) or isinstance(options.get("frame"), bool):
        raise ProtocolError("bad-payload", "a lift query needs options frame (an integer)")
    if box is not None and not isinstance(box, list):  # its numbers are checked against the frame later
        raise ProtocolError("bad-payload", "a lift query's box is a list [x1, y1, x2, y2]")
    if not isinstance(points, list) or len(points) > MAX_POINTS:
        raise ProtocolError("bad-payload", f"a lift query's points are a list of at most {MAX_POINTS} [x, y, label]")
    for point in points:
        if not (isinstance(point, list) and len(point) == 3 and all(finite(v) for v in point) and point[2] in (0, 1)):
            raise ProtocolError(
                "bad-payload", f"a point is [x, y, label] (finite numbers, label 0 or 1), got {point!r}"
            )
    if box is None and not any(point[2] == 1 for point in points):
        raise ProtocolError("bad-payload", "a lift query needs a box or at least one point with label 1")


def error_message(request_id: str, code: str, text: str) -> Message:
    return Message("error", request_id, {"code": code, "message": text})


# ---- scenes on the wire ---------------------------------------------------------------------
def scene_hash(arrays: dict[str, np.ndarray], meta: dict) -> str:
    """Content hash of a scene: its metadata and every frame's bytes (SHA-256, which CPUs with
    SHA extensions run at over 2 GB/s; truncated to 128 bits)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(meta, sort_keys=True).encode("utf-8"))
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.name}:{array.shape}".encode("ascii"))
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()[:32]


def scene_to_wire(scene) -> tuple[dict, dict[str, np.ndarray]]:
    """A Scene -> (metadata payload incl. its content hash, arrays rgb/N and depth/N)."""
    arrays = {}
    for index in range(len(scene)):
        frame = scene.frame(index)
        arrays[f"rgb/{index}"] = frame.rgb
        arrays[f"depth/{index}"] = np.nan_to_num(frame.depth, nan=0.0).astype(np.float32, copy=False)
    meta = {
        "name": scene.name,
        "frames": len(scene),
        "intrinsics": np.asarray(scene.intrinsics, dtype=np.float64).round(9).tolist(),
        "depth_intrinsics": None
        if scene.depth_intrinsics is None
        else np.asarray(scene.depth_intrinsics, dtype=np.float64).round(9).tolist(),
        "poses": np.asarray(scene.poses, dtype=np.float64).round(12).tolist(),
        "timestamps": np.asarray(scene.timestamps, dtype=np.float64).round(9).tolist(),
    }
    meta["hash"] = scene_hash(arrays, {k: v for k, v in meta.items() if k != "name"})
    return meta, arrays


def scene_from_wire(meta: dict, arrays: dict[str, np.ndarray], max_frames: int = 5000):
    """The inverse of scene_to_wire, validated (SceneError / ProtocolError on bad input)."""
    from .scene import Scene

    try:
        count = int(meta["frames"])
        intrinsics, poses, timestamps = (
            np.asarray(meta[k], dtype=np.float64) for k in ("intrinsics", "poses", "timestamps")
        )
        depth_intrinsics = (
            None if meta.get("depth_intrinsics") is None else np.asarray(meta["depth_intrinsics"], dtype=np.float64)
        )
    except (KeyError, TypeError, ValueError) as error:
        raise ProtocolError(
            "bad-scene", f"scene metadata needs frames, intrinsics, poses and timestamps: {error}"
        ) from None
    if not 0 < count <= max_frames:
        raise ProtocolError("too-large", f"a scene of {count} frames; this server takes 1 to {max_frames}")
    missing = [f"{kind}/{i}" for i in range(count) for kind in ("rgb", "depth") if f"{kind}/{i}" not in arrays]
    if missing:
        raise ProtocolError("bad-scene", f"the upload lacks {len(missing)} frame buffers, e.g. {missing[:3]}")
    expected = scene_hash(
        {k: v for k, v in arrays.items() if k.split("/")[0] in ("rgb", "depth")},
        {k: v for k, v in meta.items() if k not in ("name", "hash")},
    )
    if meta.get("hash") != expected:
        raise ProtocolError(
            "bad-scene", "the scene's content hash does not match its bytes (corrupted or edited in transit)"
        )
    scene = Scene.from_arrays(
        [arrays[f"rgb/{i}"] for i in range(count)],
        [arrays[f"depth/{i}"] for i in range(count)],
        intrinsics,
        poses,
        timestamps,
        depth_intrinsics=depth_intrinsics,
        name=str(meta.get("name", "scene"))[:200],
        cache_frames=count,
    )
    for index in range(count):  # every image checked (shape, dtype, depth) once, and held decoded
        scene.frame(index)
    return scene
