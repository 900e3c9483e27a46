"""Record3D's "EXR + JPG" export: `metadata.json` (or `metadata`: the same JSON as inside a .r3d
file, see record3d_r3d) beside `rgb/N.jpg` and `depth/N.exr` (float32 metres), N = 0, 1, ... as
nerfstudio's `ns-process-data record3d` reads it (rgb/ and metadata.json), or both in `rgbd/`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ....shared.scene import Scene, SceneError
from .. import images
from ..readers import FileSource
from .common import arkit_to_opencv, quaternion_pose, relative_times
from .record3d_r3d import record3d_intrinsics


def _metadata_path(path: Path) -> Path | None:
    return next((p for p in (path / "metadata.json", path / "metadata") if p.is_file()), None)


def is_record3d(path: Path) -> bool:
    return _metadata_path(path) is not None and ((path / "rgbd").is_dir() or (path / "rgb").is_dir())


def _read_metadata(meta_path: Path) -> tuple[dict, np.ndarray, float]:
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        int(meta["w"]), int(meta["h"])
        quat_poses = np.asarray(meta["poses"], dtype=np.float64)
        fps = float(meta.get("fps", 60))
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, AttributeError) as error:
        raise SceneError(f"{meta_path} is not Record3D metadata ({type(error).__name__}: {error})") from None
    if quat_poses.ndim != 2 or quat_poses.shape[1] != 7 or len(quat_poses) == 0:
        raise SceneError(f"{meta_path}: poses must be [qx, qy, qz, qw, x, y, z] per frame")
    if not (np.isfinite(fps) and fps > 0):
        raise SceneError(f"{meta_path}: fps must be a positive number, got {meta.get('fps')!r}")
    return meta, quat_poses, fps


def open_record3d(path: Path) -> Scene:
    meta_path = _metadata_path(path)
    meta, quat_poses, fps = _read_metadata(meta_path)
    width, height, n = int(meta["w"]), int(meta["h"]), len(quat_poses)
    rgb_dir = path / "rgbd" if (path / "rgbd").is_dir() else path / "rgb"
    depth_dir = path / "rgbd" if (path / "rgbd").is_dir() else path / "depth"
    rgb = [rgb_dir / f"{i}.jpg" for i in range(n)]
    depth = [depth_dir / f"{i}.exr" for i in range(n)]
    missing = [p for p in rgb + depth if not p.is_file()]
    if missing:
        raise SceneError(
            f"Record3D folder {path} lists {n} frames but lacks {len(missing)} file(s), e.g. "
            f"{missing[0].relative_to(path)} (an EXR + JPG export holds rgb/N.jpg and depth/N.exr; a .r3d file "
            "is read as it is)"
        )
    intrinsics = record3d_intrinsics(meta, n, str(meta_path))
    if "dw" in meta and "dh" in meta:
        depth_size = (int(meta["dw"]), int(meta["dh"]))
    else:
        first = images.read_exr_depth(depth[0])
        depth_size = (first.shape[1], first.shape[0])
    stamps = meta.get("frameTimestamps")
    times = relative_times(stamps) if isinstance(stamps, list) and len(stamps) == n else np.arange(n) / fps
    return Scene(
        FileSource(rgb, depth, images.read_exr_depth, color_size=(width, height)),
        intrinsics,
        arkit_to_opencv(np.stack([quaternion_pose(*p, where=f"metadata pose {i}") for i, p in enumerate(quat_poses)])),
        times,
        (width, height),
        depth_size,
        name=path.name,
        format="record3d",
    )
