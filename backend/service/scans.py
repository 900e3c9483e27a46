"""`scan.open`: a capture folder on the backend's machine, opened with the readers (auto-detected),
named by its content hash exactly as an upload of the same frames would be, TSDF-fused, and sent
back as a mesh and a camera path (shared/scan.py). Blender then needs neither torch nor Open3D, and
queries on the scan run on its own recorded RGB-D frames.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from ...shared.protocol import ProtocolError
from ...shared.scan import MAX_TRIANGLES, ScanReply
from ...shared.scene import Scene, SceneError, check_depth, check_rgb
from ...shared.scene_wire import knows_objects, scene_hash, scene_meta, wire_depth, wire_instance
from ..data.readers import detect_format, open_scene

MAX_FUSED_FRAMES = 400  # a longer scan is fused at every k-th frame: a 30 fps video repeats itself
BYTES_PER_TRIANGLE = 30  # a decimated mesh has about half as many vertices as triangles (12 + 15 bytes each)
Progress = Callable[[str, int, int], None]


def scan_folder(path: str, roots: Sequence[Path] = ()) -> tuple[Path, str]:
    """(the folder, its detected format), or a one-line ProtocolError("bad-scan") saying why not:
    no such folder, a file (other than Record3D's .r3d archive), outside the server's --scan-root
    folders, not a capture layout."""
    folder = Path(path).expanduser()
    if not folder.is_absolute():
        raise ProtocolError("bad-scan", f"the scan's path must be absolute on the backend's machine, got {path!r}")
    if not folder.exists():
        raise ProtocolError("bad-scan", f"no folder {folder} on the backend's machine")
    if not folder.is_dir() and folder.suffix.lower() != ".r3d":  # Record3D's archive is read as it is
        raise ProtocolError("bad-scan", f"{folder} is a file; pick the capture's folder (or a .r3d file)")
    folder = folder.resolve()
    if roots and not any(folder.is_relative_to(Path(root).resolve()) for root in roots):
        shown = ", ".join(str(r) for r in roots)
        raise ProtocolError("bad-scan", f"{folder} is outside the folders this backend opens scans from ({shown})")
    try:
        return folder, detect_format(folder)
    except (SceneError, OSError) as error:
        raise ProtocolError("bad-scan", str(error).splitlines()[0]) from None


class _WireFrames(Mapping):
    """rgb/i and depth/i of a scene on disk, decoded one at a time as the hash reads them (the
    same bytes scene_to_wire would send), so hashing a long scan never holds it all in memory."""

    def __init__(self, scene: Scene, progress: Progress | None):
        self.scene, self.progress, self.seen = scene, progress, 0
        self.kinds = ("rgb", "depth", "instance") if knows_objects(scene) else ("rgb", "depth")
        self.names = [f"{kind}/{i}" for i in range(len(scene)) for kind in self.kinds]

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self):
        return iter(self.names)

    def __getitem__(self, name: str) -> np.ndarray:
        kind, index = name.split("/")
        index = int(index)
        source, scene = self.scene.source, self.scene
        if kind == "rgb":
            array = check_rgb(source.load_rgb(index), scene.color_size, f"colour image of frame {index}")
        elif kind == "depth":
            array = wire_depth(check_depth(source.load_depth(index), scene.depth_size, f"depth map of frame {index}"))
        else:
            array = wire_instance(scene, index)
        self.seen += 1
        if self.progress is not None and self.seen % len(self.kinds) == 0:  # one event per frame's worth of images
            self.progress("read", self.seen // len(self.kinds), len(self.scene))
        return array


def content_hash(scene: Scene, progress: Progress | None = None) -> tuple[str, int]:
    """(the scene's content hash as an upload would carry it, its frames' decoded bytes)."""
    frames = _WireFrames(scene, progress)
    meta = {k: v for k, v in scene_meta(scene).items() if k != "name"}
    key = scene_hash(frames, meta)
    width, height = scene.color_size
    depth_width, depth_height = scene.depth_size
    return key, len(scene) * (width * height * 3 + depth_width * depth_height * 4)


def triangle_cap(requested: int | None, max_message_bytes: int, frames: int) -> int:
    """Triangles the reply may carry: the request's cap (default MAX_TRIANGLES), and never more
    than fits the protocol's message cap beside the camera path."""
    room = max_message_bytes - frames * (16 + 4 + 1) * 8 - (1 << 20)
    return max(1000, min(requested or MAX_TRIANGLES, room // BYTES_PER_TRIANGLE))


def decimate(vertices, triangles, colors, max_triangles: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The mesh as is when it has at most `max_triangles`, else Open3D's quadric decimation of it
    (vertex colours carried along)."""
    if len(triangles) <= max_triangles:
        return vertices, triangles, colors
    import open3d as o3d  # here only: the service starts without Open3D

    mesh = o3d.geometry.TriangleMesh(
        o3d.utility.Vector3dVector(np.asarray(vertices, np.float64)), o3d.utility.Vector3iVector(triangles)
    )
    mesh.vertex_colors = o3d.utility.Vector3dVector(np.asarray(colors, np.float64))
    small = mesh.simplify_quadric_decimation(target_number_of_triangles=int(max_triangles))
    small.remove_unreferenced_vertices()
    return (
        np.asarray(small.vertices, np.float32),
        np.asarray(small.triangles, np.int32),
        np.asarray(small.vertex_colors, np.float32).clip(0, 1),
    )


def folder_fingerprint(folder: Path) -> str:
    """What the folder holds, by every file's name, size and modification time (no file is read):
    an unchanged folder opened again is known by its content hash without decoding its frames."""
    digest = hashlib.sha256(str(folder).encode("utf-8", "surrogateescape"))
    if folder.is_file():  # a .r3d archive
        stat = folder.stat()
        digest.update(f"{stat.st_size}\0{stat.st_mtime_ns}".encode("ascii"))
    for root, folders, files in os.walk(folder):
        folders.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            try:
                stat = os.stat(path)
            except OSError:
                continue
            entry = f"{os.path.relpath(path, folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n"
            digest.update(entry.encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def open_scan(folder: Path, scan_format: str, progress: Progress | None = None) -> tuple[Scene, str, int]:
    """(the scene read lazily from disk, its content hash, its decoded bytes)."""
    scene = open_scene(folder, scan_format)
    key, nbytes = content_hash(scene, progress)
    return scene, key, nbytes


def fuse_scan(
    scene: Scene,
    key: str,
    voxel: float | None,
    max_triangles: int,
    progress: Progress | None = None,
) -> ScanReply:
    """The scene TSDF-fused into a coloured mesh (decimated to `max_triangles`), with its camera path."""
    from ..geometry.fusion import FusionSettings, fuse_scene  # Open3D, loaded on the first scan

    stride = math.ceil(len(scene) / MAX_FUSED_FRAMES)
    settings = FusionSettings(voxel=voxel or FusionSettings.voxel, frame_stride=stride)
    start = time.perf_counter()
    fused = fuse_scene(scene, settings, progress=None if progress is None else lambda d, t: progress("fusion", d, t))
    decimated = time.perf_counter()
    vertices, triangles, colors = decimate(fused.mesh_vertices, fused.mesh_triangles, fused.mesh_colors, max_triangles)
    timings = {"fusion": decimated - start, "decimation": time.perf_counter() - decimated}
    return ScanReply(
        hash=key,
        name=scene.name,
        format=scene.format,
        color_size=scene.color_size,
        vertices=vertices,
        triangles=triangles,
        colors=np.round(np.asarray(colors) * 255).astype(np.uint8),
        poses=scene.poses,
        intrinsics=scene.intrinsics,
        timestamps=scene.timestamps,
        triangles_fused=len(fused.mesh_triangles),
        voxel=settings.voxel,
        timings=timings,
    )
