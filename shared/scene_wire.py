"""A scene on the wire: its metadata payload, its frame buffers and its content hash.

numpy + the standard library only (Blender's Python and the backend).
"""

from __future__ import annotations

import hashlib
import json

import numpy as np

from .protocol import MAX_FRAMES, MAX_NAME_CHARS, Encoded, ProtocolError, _compress, _decode_image, is_scene_hash

META_KEYS = ("name", "frames", "intrinsics", "depth_intrinsics", "poses", "timestamps", "hash", "candidates")


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


def knows_objects(scene) -> bool:
    """A scene that carries its candidate table and per-frame object-id maps (Blender, synthetic)."""
    return bool(scene.has_instances and getattr(scene, "candidates", None) is not None)


def scene_to_wire(scene) -> tuple[dict, dict[str, np.ndarray]]:
    """A Scene -> (metadata payload incl. its content hash, arrays rgb/N and depth/N; and when the
    scene knows its objects, instance/N object-id maps and the candidate table in the metadata)."""
    arrays = {}
    for index in range(len(scene)):
        frame = scene.frame(index)
        arrays[f"rgb/{index}"] = frame.rgb
        arrays[f"depth/{index}"] = wire_depth(frame.depth)
        if knows_objects(scene):
            arrays[f"instance/{index}"] = wire_instance(scene, index)
    meta = scene_meta(scene)
    meta["hash"] = scene_hash(arrays, {k: v for k, v in meta.items() if k != "name"})
    return meta, arrays


def wire_depth(depth: np.ndarray) -> np.ndarray:
    """A frame's depth as it travels (and is hashed): float32 metres, 0 = invalid."""
    return np.nan_to_num(depth, nan=0.0).astype(np.float32, copy=False)


def wire_instance(scene, index: int) -> np.ndarray:
    """A frame's object-id map as it travels (and is hashed), for a scene that knows its objects."""
    return np.asarray(scene.instance(index), dtype=np.int32)


def scene_meta(scene) -> dict:
    """A scene's metadata payload, without its hash."""
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
    if knows_objects(scene):
        meta["candidates"] = scene.candidates.to_json()
    return meta


def lossy_colour_wire(meta: dict, arrays: dict[str, np.ndarray], codec: str = "jpeg") -> tuple[dict, dict]:
    """(meta, arrays) with every colour frame encoded once with a lossy `codec` and the content hash
    recomputed over the decoded pixels: the hash names what the server will hold. Depth is untouched."""
    sent, held = {}, {}
    for name, array in arrays.items():
        if name.startswith("rgb/"):
            data = _compress(array, codec, name)
            held[name] = _decode_image(data, name)
            sent[name] = Encoded(data, np.asarray(array).dtype.name, tuple(np.shape(array)), codec)
        else:
            sent[name] = held[name] = array
    body = {k: v for k, v in meta.items() if k not in ("name", "hash")}
    return {**meta, "hash": scene_hash(held, body)}, sent


def check_scene_meta(meta: dict, max_frames: int = MAX_FRAMES) -> int:
    """The upload payload's shape, before any buffer is looked at: its frame count."""
    unknown = sorted(set(meta) - set(META_KEYS))
    if unknown:
        raise ProtocolError("bad-scene", f"unknown scene metadata {', '.join(unknown)[:80]}; known: {META_KEYS}")
    count = meta.get("frames")
    if not isinstance(count, int) or isinstance(count, bool):
        raise ProtocolError("bad-scene", "scene metadata needs 'frames', an integer")
    if not 0 < count <= max_frames:
        raise ProtocolError("too-large", f"a scene of {count} frames; this server takes 1 to {max_frames}")
    if not is_scene_hash(meta.get("hash")):
        raise ProtocolError("bad-scene", "scene metadata needs 'hash': 32 lower-case hex digits")
    if not isinstance(meta.get("name", ""), str) or len(meta.get("name", "")) > MAX_NAME_CHARS:
        raise ProtocolError("bad-scene", f"a scene's name is a string of at most {MAX_NAME_CHARS} characters")
    return count


def _matrix(meta: dict, key: str, shape: tuple) -> np.ndarray:
    try:
        array = np.asarray(meta.get(key), dtype=np.float64)
    except (TypeError, ValueError):
        array = np.zeros(0)
    if array.shape != shape or not np.isfinite(array).all():
        raise ProtocolError("bad-scene", f"scene metadata '{key}' must be finite numbers of shape {list(shape)}")
    return array


def scene_from_wire(meta: dict, arrays: dict[str, np.ndarray], max_frames: int = MAX_FRAMES):
    """The inverse of scene_to_wire, validated (SceneError / ProtocolError on bad input)."""
    from .scene import Scene

    count = check_scene_meta(meta, max_frames)
    intrinsics, poses = _matrix(meta, "intrinsics", (count, 4)), _matrix(meta, "poses", (count, 4, 4))
    timestamps = _matrix(meta, "timestamps", (count,))
    depth_intrinsics = None if meta.get("depth_intrinsics") is None else _matrix(meta, "depth_intrinsics", (count, 4))
    kinds = ("rgb", "depth", "instance") if meta.get("candidates") is not None else ("rgb", "depth")
    expected_names = {f"{kind}/{i}" for i in range(count) for kind in kinds}
    if set(arrays) != expected_names:
        missing, extra = sorted(expected_names - set(arrays)), sorted(set(arrays) - expected_names)
        raise ProtocolError(
            "bad-scene",
            f"an upload of {count} frames carries {'/i, '.join(kinds)}/i only (instance/i with candidates); "
            f"missing {missing[:3]}, extra {extra[:3]}",
        )
    expected = scene_hash(arrays, {k: v for k, v in meta.items() if k not in ("name", "hash")})
    if meta["hash"] != expected:
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
        name=meta.get("name", "scene") or "scene",
        cache_frames=count,
        **_objects_from_wire(meta, arrays, count),
    )
    for index in range(count):  # every image checked (shape, dtype, depth) once, and held decoded
        scene.frame(index)
    return scene


def _objects_from_wire(meta: dict, arrays: dict[str, np.ndarray], count: int) -> dict:
    """instance= (object-id maps) and candidates= (the table) for Scene, when the upload has them."""
    if meta.get("candidates") is None:
        return {}
    from .candidates import CandidateError, CandidateTable

    try:
        table = CandidateTable.from_json(meta["candidates"])
    except CandidateError as error:
        raise ProtocolError("bad-scene", f"bad candidate table: {error}") from None
    maps = [arrays[f"instance/{i}"] for i in range(count)]
    if any(m.ndim != 2 or not np.issubdtype(m.dtype, np.integer) for m in maps):
        raise ProtocolError("bad-scene", "instance/i maps must be 2D integer object ids")
    return {"instance": maps, "candidates": table}
