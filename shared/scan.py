"""A capture folder opened by the backend (`scan.open`), as it travels back to Blender or the viewer:
the fused mesh, the camera path and the scene's content hash (docs/protocol.md).

The hash names the scene in the backend's cache exactly as an upload would, so queries on the scan
run on its own recorded RGB-D frames and re-send nothing. numpy + the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .protocol import MAX_NAME_CHARS, ProtocolError, is_scene_hash

MAX_PATH_CHARS = 4096  # a folder path on the backend's machine
SCAN_OPTIONS = ("path", "voxel", "max_triangles", "no_cache")
VOXEL_RANGE = (0.002, 0.5)  # metres: a TSDF voxel finer than 2 mm or coarser than 50 cm is a typo
MAX_TRIANGLES = 2_000_000  # default cap on the mesh sent back (about 40 MB); decimated above it
TRIANGLES_RANGE = (1000, 50_000_000)
MESH_BUFFERS = ("mesh/vertices", "mesh/triangles", "mesh/colors")
CAMERA_BUFFERS = ("camera/poses", "camera/intrinsics", "camera/timestamps")


@dataclass
class ScanReply:
    """What `scan.open` answers. Poses are camera-to-world in the OpenCV convention (shared/camera.py);
    intrinsics are per frame fx, fy, cx, cy in colour pixels of a `color_size` (width, height) image."""

    hash: str
    name: str
    format: str
    color_size: tuple[int, int]
    vertices: np.ndarray  # (V, 3) float32, metres, the scene's world frame
    triangles: np.ndarray  # (T, 3) int32
    colors: np.ndarray  # (V, 3) uint8 RGB
    poses: np.ndarray  # (N, 4, 4) float64
    intrinsics: np.ndarray  # (N, 4) float64
    timestamps: np.ndarray  # (N,) float64 seconds
    triangles_fused: int = 0  # before decimation
    voxel: float = 0.0
    cached: bool = False
    timings: dict | None = None
    worker: str = ""  # the backend that opened it (behind a broker, the one its queries go to)

    @property
    def frames(self) -> int:
        return len(self.poses)


def check_scan_request(payload) -> None:
    """ProtocolError("bad-payload") unless the payload is a scan.open request: a folder path (the
    folder itself is checked where it lives, on the backend) and optional voxel / max_triangles."""
    if not isinstance(payload, dict) or set(payload) - set(SCAN_OPTIONS):
        raise ProtocolError("bad-payload", f"scan.open takes {', '.join(SCAN_OPTIONS)}")
    path = payload.get("path")
    if not isinstance(path, str) or not path.strip() or len(path) > MAX_PATH_CHARS or "\x00" in path:
        raise ProtocolError(
            "bad-payload", f"scan.open needs 'path': a folder on the backend's machine (1-{MAX_PATH_CHARS} characters)"
        )
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise ProtocolError("bad-payload", "the scan's path is not valid UTF-8 text") from None
    voxel = payload.get("voxel")
    if voxel is not None and not (_number(voxel) and VOXEL_RANGE[0] <= voxel <= VOXEL_RANGE[1]):
        raise ProtocolError("bad-payload", f"option voxel is metres in {VOXEL_RANGE[0]}..{VOXEL_RANGE[1]}")
    cap = payload.get("max_triangles")
    if cap is not None and not (
        isinstance(cap, int) and not isinstance(cap, bool) and TRIANGLES_RANGE[0] <= cap <= TRIANGLES_RANGE[1]
    ):
        low, high = TRIANGLES_RANGE
        raise ProtocolError("bad-payload", f"option max_triangles is an integer in {low}..{high}")
    if payload.get("no_cache") is not None and not isinstance(payload["no_cache"], bool):
        raise ProtocolError("bad-payload", "option no_cache must be true or false")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def scan_to_wire(scan: ScanReply) -> tuple[dict, dict[str, np.ndarray]]:
    payload = {
        "hash": scan.hash,
        "name": scan.name[:MAX_NAME_CHARS],
        "format": scan.format,
        "frames": scan.frames,
        "color_size": [int(scan.color_size[0]), int(scan.color_size[1])],
        "triangles_fused": int(scan.triangles_fused),
        "voxel": float(scan.voxel),
        "timings": {k: round(float(v), 4) for k, v in (scan.timings or {}).items()},
    }
    arrays = {
        "mesh/vertices": np.ascontiguousarray(scan.vertices, dtype=np.float32).reshape(-1, 3),
        "mesh/triangles": np.ascontiguousarray(scan.triangles, dtype=np.int32).reshape(-1, 3),
        "mesh/colors": np.ascontiguousarray(scan.colors, dtype=np.uint8).reshape(-1, 3),
        "camera/poses": np.ascontiguousarray(scan.poses, dtype=np.float64).reshape(-1, 4, 4),
        "camera/intrinsics": np.ascontiguousarray(scan.intrinsics, dtype=np.float64).reshape(-1, 4),
        "camera/timestamps": np.ascontiguousarray(scan.timestamps, dtype=np.float64).reshape(-1),
    }
    return payload, arrays


def scan_from_wire(payload: dict, arrays: dict[str, np.ndarray]) -> ScanReply:
    """The inverse of scan_to_wire, checked: ValueError naming what is malformed."""
    missing = [name for name in MESH_BUFFERS + CAMERA_BUFFERS if name not in arrays]
    if missing or not is_scene_hash(payload.get("hash")):
        raise ValueError(f"a scan reply needs a scene hash and the buffers {', '.join(missing) or '(all present)'}")
    vertices, triangles, colors = (np.asarray(arrays[name]) for name in MESH_BUFFERS)
    poses, intrinsics, timestamps = (np.asarray(arrays[name]) for name in CAMERA_BUFFERS)
    n = len(poses)
    if vertices.ndim != 2 or vertices.shape[1:] != (3,) or colors.shape != vertices.shape:
        raise ValueError(f"a scan's vertices and colours are V x 3, got {vertices.shape} and {colors.shape}")
    if triangles.ndim != 2 or triangles.shape[1:] != (3,) or triangles.dtype != np.int32:
        raise ValueError(f"a scan's triangles are T x 3 int32, got {triangles.shape} {triangles.dtype}")
    if len(triangles) and (triangles.min() < 0 or triangles.max() >= len(vertices)):
        raise ValueError("a scan's triangles index vertices it does not have")
    if n == 0 or poses.shape != (n, 4, 4) or intrinsics.shape != (n, 4) or timestamps.shape != (n,):
        raise ValueError(f"a scan's camera path is N poses, intrinsics and timestamps; got {n} poses")
    size = payload.get("color_size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise ValueError("a scan reply needs color_size: [width, height]")
    return ScanReply(
        hash=payload["hash"],
        name=str(payload.get("name", "scan")),
        format=str(payload.get("format", "")),
        color_size=(size[0], size[1]),
        vertices=vertices,
        triangles=triangles,
        colors=colors,
        poses=poses,
        intrinsics=intrinsics,
        timestamps=timestamps,
        triangles_fused=int(payload.get("triangles_fused", len(triangles))),
        voxel=float(payload.get("voxel", 0.0)),
        cached=bool(payload.get("cached", False)),
        timings=dict(payload.get("timings") or {}),
        worker=str(payload.get("worker", "")),
    )
