"""Stray Scanner's dataset folder: `rgb.mp4` (the colour video, HEVC, typically 1920x1440),
`depth/000000.png` (16-bit millimetres, 256x192, one per video frame), `confidence/000000.png`
(0 low, 1 medium, 2 high), `odometry.csv` (header, then timestamp, frame, x, y, z, qx, qy, qz, qw
per frame: camera-to-world in ARKit's camera axes) and `camera_matrix.csv` (3x3, for the video's
resolution). The video is decoded with PyAV (FFmpeg), seeking to the frame asked for.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from ....shared.scene import Scene, SceneError
from .. import images
from ..readers import image_size
from .common import (
    ARKIT_MEDIUM,
    LoaderSource,
    arkit_to_opencv,
    masked_depth,
    matrix_from,
    quaternion_pose,
    read_confidence_png,
    relative_times,
)
from .video import VideoFrames

ODOMETRY_FIELDS = ("timestamp", "frame", "x", "y", "z", "qx", "qy", "qz", "qw")


def is_stray(path: Path) -> bool:
    return (path / "odometry.csv").is_file() and (path / "rgb.mp4").is_file()


def read_odometry(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(timestamps, frame numbers, ARKit camera-to-world poses) from odometry.csv."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError) as error:
        raise SceneError(f"cannot read {path}: {error}") from None
    if not rows:
        raise SceneError(f"{path} is empty")
    header = [h.strip() for h in rows[0]]
    columns = {name: header.index(name) for name in ODOMETRY_FIELDS if name in header}
    if len(columns) != len(ODOMETRY_FIELDS):
        missing = [n for n in ODOMETRY_FIELDS if n not in columns]
        raise SceneError(f"{path} lacks column(s) {', '.join(missing)} (header: {', '.join(header)})")
    stamps, numbers, poses = [], [], []
    for line, row in enumerate(rows[1:], 2):
        if not any(cell.strip() for cell in row):
            continue
        try:
            values = {name: float(row[i]) for name, i in columns.items()}
        except (IndexError, ValueError):
            raise SceneError(
                f"{path} line {line} is not {len(ODOMETRY_FIELDS)} numbers: {','.join(row)[:80]}"
            ) from None
        stamps.append(values["timestamp"])
        numbers.append(int(values["frame"]))
        poses.append(quaternion_pose(*(values[k] for k in ("qx", "qy", "qz", "qw", "x", "y", "z"))))
    if not poses:
        raise SceneError(f"{path} has a header but no poses")
    return np.array(stamps), np.array(numbers), np.stack(poses)


def read_camera_matrix(path: Path) -> np.ndarray:
    try:
        rows = [row for row in csv.reader(path.read_text(encoding="utf-8").splitlines()) if row]
        return matrix_from([[float(v) for v in row] for row in rows], (3, 3), path.name)
    except FileNotFoundError:
        raise SceneError(f"Stray Scanner folder {path.parent} lacks camera_matrix.csv") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise SceneError(f"{path} is not a 3x3 matrix of comma-separated numbers: {error}") from None


def open_stray(path: Path) -> Scene:
    stamps, numbers, poses = read_odometry(path / "odometry.csv")
    k = read_camera_matrix(path / "camera_matrix.csv")
    video = VideoFrames(path / "rgb.mp4")
    width, height = video.size
    if not (0 < k[0, 2] < width and 0 < k[1, 2] < height):
        raise SceneError(
            f"camera_matrix.csv's principal point ({k[0, 2]:.1f}, {k[1, 2]:.1f}) lies outside the "
            f"{width}x{height} video"
        )
    depth = [path / "depth" / f"{n:06d}.png" for n in numbers]
    confidence = [path / "confidence" / f"{n:06d}.png" for n in numbers]
    has_confidence = (path / "confidence").is_dir()
    missing = [p for p in depth + (confidence if has_confidence else []) if not p.is_file()]
    if missing:
        raise SceneError(
            f"Stray Scanner folder {path} lacks {len(missing)} file(s), e.g. {missing[0].relative_to(path)}"
        )
    n = len(numbers)
    if numbers.max() >= video.frame_count:
        raise SceneError(f"odometry.csv names frame {numbers.max()} but rgb.mp4 holds {video.frame_count} frames")

    def load_depth(index: int) -> np.ndarray:
        conf = read_confidence_png(confidence[index]) if has_confidence else None
        return masked_depth(images.read_depth_png(depth[index], 0.001), conf, ARKIT_MEDIUM, depth[index])

    return Scene(
        LoaderSource(n, lambda index: video.frame(int(numbers[index])), load_depth),
        np.tile([k[0, 0], k[1, 1], k[0, 2], k[1, 2]], (n, 1)),
        arkit_to_opencv(poses),
        relative_times(stamps),
        (width, height),
        image_size(depth[0]),
        name=path.name,
        format="stray",
        frame_numbers=[int(n) for n in numbers],
    )
