"""3D Scanner App's "All Data" export (Laan Labs). Per frame N (5 digits): `frame_N.json` with
"cameraPoseARFrame" (16 numbers, the 4x4 camera-to-world pose, row-major, ARKit's camera axes),
"intrinsics" (9 numbers, the 3x3 matrix of the JPEG, row-major [fx, 0, cx, 0, fy, cy, 0, 0, 1]),
"time" (seconds of system uptime) and more (projectionMatrix, motionQuality, frame_index...);
`frame_N.jpg` (1920x1440 landscape, tagged EXIF orientation 6, which is ignored: the intrinsics are
the landscape grid's); `depth_N.png` (16-bit millimetres, 256x192) and `conf_N.png` (ARKit levels
0/1/2). Sources: the 3DScannerApp parser in github.com/pwais/psegs, which reads the pose and
intrinsics row-major and the depth in millimetres, and public readers of real exports. The app keeps
metadata and depth for more frames than it saves JPEGs, and writes depth maps only for some capture
modes ("low res"): a frame is read where its JPEG, JSON and depth map are all present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ....shared.scene import Scene, SceneError
from .. import images
from ..readers import FileSource, image_size, numbered_files
from .common import (
    ARKIT_MEDIUM,
    arkit_to_opencv,
    check_principal_point,
    intrinsics_from_flat,
    masked_depth,
    pose_from_flat,
    read_confidence_png,
    read_json,
    relative_times,
)

FRAME_JSON = r"frame_(\d+)\.json"


def is_scanner3d(path: Path) -> bool:
    return any(path.glob("frame_*.json")) and (any(path.glob("depth_*.png")) or any(path.glob("frame_*.jpg")))


def _frame_json(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    data = read_json(path, "3D Scanner App frame")
    if not isinstance(data, dict) or "cameraPoseARFrame" not in data or "intrinsics" not in data:
        raise SceneError(f"{path} lacks cameraPoseARFrame or intrinsics (not a 3D Scanner App frame)")
    pose = pose_from_flat(data["cameraPoseARFrame"], f"{path.name} cameraPoseARFrame")
    k = intrinsics_from_flat(data["intrinsics"], f"{path.name} intrinsics")
    try:
        time = float(data.get("time", np.nan))
    except (TypeError, ValueError):
        raise SceneError(f"{path} has a non-numeric time {data.get('time')!r}") from None
    return pose, k, time


def _numbers(path: Path) -> tuple[list[int], dict[int, Path]]:
    jsons = numbered_files(path, FRAME_JSON)
    if not any(path.glob("depth_*.png")):
        raise SceneError(
            f"3D Scanner App folder {path} has no depth_N.png maps (the app exports them only for some "
            "capture modes, e.g. low-res LiDAR scans); Scene-R1 needs depth"
        )
    numbers = [
        n for n in sorted(jsons) if (path / f"frame_{n:05d}.jpg").is_file() and (path / f"depth_{n:05d}.png").is_file()
    ]
    if not numbers:
        raise SceneError(f"3D Scanner App folder {path}: no frame has all of frame_N.jpg, frame_N.json and depth_N.png")
    return numbers, jsons


def open_scanner3d(path: Path) -> Scene:
    numbers, jsons = _numbers(path)
    skipped = len(jsons) - len(numbers)
    parsed = [_frame_json(jsons[n]) for n in numbers]
    rgb = [path / f"frame_{n:05d}.jpg" for n in numbers]
    depth = [path / f"depth_{n:05d}.png" for n in numbers]
    color_size = image_size(rgb[0])
    for n, (_, k, _) in zip(numbers, parsed):
        check_principal_point(k, color_size, f"frame_{n:05d}.json intrinsics")
    stamps = np.array([t for _, _, t in parsed])
    notes = [f"skipped {skipped} frame(s) without a colour image or depth map"] if skipped else []
    if not np.isfinite(stamps).all():
        stamps = np.array(numbers) / 60.0  # ARKit's frame rate, when the export lacks times
        notes.append("frames carry no time; taken as 60 fps")

    def read_depth(p: Path) -> np.ndarray:
        conf_path = p.with_name(p.name.replace("depth_", "conf_"))
        conf = read_confidence_png(conf_path) if conf_path.is_file() else None
        return masked_depth(images.read_depth_png(p, 0.001), conf, ARKIT_MEDIUM, p)

    return Scene(
        FileSource(rgb, depth, read_depth, color_size=color_size),
        np.array([k for _, k, _ in parsed]),
        arkit_to_opencv(np.stack([pose for pose, _, _ in parsed])),
        relative_times(stamps),
        color_size,
        image_size(depth[0]),
        name=path.name,
        format="3dscanner",
        frame_numbers=numbers,
        notes=notes,
    )
