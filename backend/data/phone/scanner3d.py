"""3D Scanner App's "All Data" export: per frame N (5 digits), `frame_N.jpg`, `frame_N.json`
("cameraPoseARFrame": 16 numbers, the row-major 4x4 camera-to-world pose in ARKit's camera axes;
"intrinsics": 9 numbers, the row-major 3x3 matrix of the JPEG; "time": seconds), `depth_N.png`
(16-bit millimetres, 256x192) and `conf_N.png` (0 low, 1 medium, 2 high). Recordings keep depth
for more frames than colour: a frame is read where its JPEG, JSON and depth are all present.
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
    masked_depth,
    matrix_from,
    read_confidence_png,
    read_json,
    relative_times,
)

FRAME_JSON = r"frame_(\d+)\.json"


def is_scanner3d(path: Path) -> bool:
    return any(path.glob("frame_*.json")) and any(path.glob("depth_*.png"))


def _frame_json(path: Path) -> tuple[np.ndarray, np.ndarray, float]:
    data = read_json(path, "3D Scanner App frame")
    if not isinstance(data, dict) or "cameraPoseARFrame" not in data or "intrinsics" not in data:
        raise SceneError(f"{path} lacks cameraPoseARFrame or intrinsics (not a 3D Scanner App frame)")
    pose = matrix_from(data["cameraPoseARFrame"], (4, 4), f"{path.name} cameraPoseARFrame")
    k = matrix_from(data["intrinsics"], (3, 3), f"{path.name} intrinsics")
    try:
        time = float(data.get("time", np.nan))
    except (TypeError, ValueError):
        raise SceneError(f"{path} has a non-numeric time {data.get('time')!r}") from None
    return pose, np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2]]), time


def open_scanner3d(path: Path) -> Scene:
    jsons = numbered_files(path, FRAME_JSON)
    numbers = [n for n in sorted(jsons) if (path / f"frame_{n:05d}.jpg").is_file()]
    numbers = [n for n in numbers if (path / f"depth_{n:05d}.png").is_file()]
    if not numbers:
        raise SceneError(f"3D Scanner App folder {path}: no frame has all of frame_N.jpg, frame_N.json and depth_N.png")
    skipped = len(jsons) - len(numbers)
    parsed = [_frame_json(jsons[n]) for n in numbers]
    rgb = [path / f"frame_{n:05d}.jpg" for n in numbers]
    depth = [path / f"depth_{n:05d}.png" for n in numbers]
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
        FileSource(rgb, depth, read_depth),
        np.array([k for _, k, _ in parsed]),
        arkit_to_opencv(np.stack([pose for pose, _, _ in parsed])),
        relative_times(stamps),
        image_size(rgb[0]),
        image_size(depth[0]),
        name=path.name,
        format="3dscanner",
        frame_numbers=numbers,
        notes=notes,
    )
