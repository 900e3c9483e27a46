"""Stray Scanner's dataset folder, as the app writes it (strayrobots/scanner, Helpers/*Encoder.swift;
read the same way by kekeblom/StrayVisualizer's stray_visualize.py):

- `rgb.mp4`: the colour video (HEVC, 1920x1440), one picture per saved frame, in frame order;
- `depth/000000.png`: 16-bit millimetres, 256x192 (app versions before 2022 wrote `000000.npy`,
  uint16 millimetres too);
- `confidence/000000.png`: ARKit's levels 0 low, 1 medium, 2 high;
- `odometry.csv`: a header `timestamp, frame, x, y, z, qx, qy, qz, qw`, then one row per frame
  (the first app versions wrote `x, y, z, qx, qy, qz, qw` rows without header, time or frame);
- `camera_matrix.csv`: the 3x3 camera matrix of the video's resolution, comma-separated rows.

The pose rotation is NOT in ARKit's camera axes: OdometryEncoder writes q_WA * q_AC with q_AC a half
turn about x, i.e. the camera already in OpenCV's axes (x right, y down, z forwards), which is how
StrayVisualizer hands it to Open3D untouched. So no axis conversion is applied here.
The video is decoded with PyAV (FFmpeg); the i-th odometry row is the video's i-th picture.
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
    check_principal_point,
    masked_depth,
    matrix_from,
    quaternion_pose,
    read_confidence_png,
    relative_times,
)
from .video import VideoFrames

ODOMETRY_FIELDS = ("timestamp", "frame", "x", "y", "z", "qx", "qy", "qz", "qw")
POSE_FIELDS = ODOMETRY_FIELDS[2:]
VIDEO_TIMESCALE = 60.0  # VideoEncoder stamps frame n at n/60 s: the rate when odometry has no times
MAX_DEPTH_NPY_BYTES = 64 * 1024 * 1024


def is_stray(path: Path) -> bool:
    return (path / "odometry.csv").is_file() and (path / "rgb.mp4").is_file()


def _columns(path: Path, first: list[str]) -> tuple[dict[str, int], bool]:
    """Column of each field, and whether the first row is a header."""
    cells = [c.strip() for c in first]
    try:
        [float(c) for c in cells]
    except ValueError:
        columns = {name: cells.index(name) for name in ODOMETRY_FIELDS if name in cells}
        missing = [n for n in POSE_FIELDS if n not in columns]
        if missing:
            raise SceneError(f"{path} lacks column(s) {', '.join(missing)} (header: {', '.join(cells)})") from None
        return columns, True
    if len(cells) == len(ODOMETRY_FIELDS):
        return {name: i for i, name in enumerate(ODOMETRY_FIELDS)}, False
    if len(cells) == len(POSE_FIELDS):
        return {name: i for i, name in enumerate(POSE_FIELDS)}, False
    raise SceneError(f"{path}: rows of {len(cells)} numbers, expected 9 (timestamp, frame, x..qw) or 7 (x..qw)")


def read_odometry(path: Path) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(timestamps or None, frame numbers, camera-to-world poses in OpenCV axes) from odometry.csv."""
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = [row for row in csv.reader(handle) if any(cell.strip() for cell in row)]
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise SceneError(f"cannot read {path}: {error}") from None
    if not rows:
        raise SceneError(f"{path} is empty")
    columns, has_header = _columns(path, rows[0])
    stamps, numbers, poses = [], [], []
    for line, row in enumerate(rows[1:] if has_header else rows, 2 if has_header else 1):
        try:
            values = {name: float(row[i]) for name, i in columns.items()}
        except (IndexError, ValueError):
            raise SceneError(f"{path} line {line} is not {len(columns)} numbers: {','.join(row)[:80]}") from None
        stamps.append(values.get("timestamp", np.nan))
        numbers.append(values.get("frame", len(numbers)))
        pose = (values[k] for k in ("qx", "qy", "qz", "qw", "x", "y", "z"))
        poses.append(quaternion_pose(*pose, where=f"{path} line {line}"))
    if not poses:
        raise SceneError(f"{path} has a header but no poses")
    numbers = np.array(numbers)
    if not (np.isfinite(numbers).all() and (numbers >= 0).all() and (numbers == np.round(numbers)).all()):
        raise SceneError(f"{path}: frame numbers must be whole numbers >= 0")
    if len(set(numbers.tolist())) != len(numbers):
        raise SceneError(f"{path} names a frame twice")
    times = None if "timestamp" not in columns else np.array(stamps)
    return times, numbers.astype(np.int64), np.stack(poses)


def read_camera_matrix(path: Path) -> np.ndarray:
    try:
        rows = [row for row in csv.reader(path.read_text(encoding="utf-8").splitlines()) if any(c.strip() for c in row)]
        return matrix_from([[float(v) for v in row] for row in rows], (3, 3), path.name)
    except FileNotFoundError:
        raise SceneError(f"Stray Scanner folder {path.parent} lacks camera_matrix.csv") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise SceneError(f"{path} is not a 3x3 matrix of comma-separated numbers: {error}") from None


def read_depth_npy(path: Path) -> np.ndarray:
    """Depth saved by app versions before 2022: a .npy of uint16 millimetres."""
    if path.stat().st_size > MAX_DEPTH_NPY_BYTES:
        raise SceneError(f"{path} is larger than any depth map should be")
    try:
        raw = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise SceneError(f"cannot read depth {path}: {error}") from None
    if raw.ndim != 2 or raw.dtype != np.uint16:
        raise SceneError(f"depth {path} must be a 2D uint16 array (millimetres), got {raw.dtype} {raw.shape}")
    return raw.astype(np.float32) * np.float32(0.001)


def _depth_files(path: Path, numbers: np.ndarray) -> list[Path]:
    found = []
    for n in numbers:
        png, npy = path / "depth" / f"{n:06d}.png", path / "depth" / f"{n:06d}.npy"
        found.append(png if png.is_file() or not npy.is_file() else npy)
    return found


def _depth_size(depth: Path) -> tuple[int, int]:
    if depth.suffix == ".npy":
        shape = read_depth_npy(depth).shape
        return shape[1], shape[0]
    return image_size(depth)


def open_stray(path: Path) -> Scene:
    stamps, numbers, poses = read_odometry(path / "odometry.csv")
    k = read_camera_matrix(path / "camera_matrix.csv")
    video = VideoFrames(path / "rgb.mp4")
    fxfycxcy = np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2]])
    check_principal_point(fxfycxcy, video.size, "camera_matrix.csv (for rgb.mp4)")
    n = len(numbers)
    if n > video.frame_count:
        raise SceneError(f"odometry.csv lists {n} frames but rgb.mp4 holds {video.frame_count}")
    # DatasetEncoder saves depth and confidence only when ARKit gave them ("scene depth missing"):
    # such rows are skipped, a missing confidence map leaves that frame's depth unfiltered.
    all_depth = _depth_files(path, numbers)
    rows = [i for i, file in enumerate(all_depth) if file.is_file()]
    if not rows:
        raise SceneError(f"Stray Scanner folder {path} has no depth/NNNNNN.png (or .npy) for any odometry row")
    depth = [all_depth[i] for i in rows]
    confidence = [path / "confidence" / f"{numbers[i]:06d}.png" for i in rows]
    notes = [f"skipped {n - len(rows)} frame(s) without a depth map"] if len(rows) < n else []
    if stamps is None:
        stamps = numbers / VIDEO_TIMESCALE
        notes.append(f"odometry.csv carries no timestamps (early app version); frames taken at {VIDEO_TIMESCALE:g} fps")

    def load_depth(index: int) -> np.ndarray:
        file = depth[index]
        metres = read_depth_npy(file) if file.suffix == ".npy" else images.read_depth_png(file, 0.001)
        conf = read_confidence_png(confidence[index]) if confidence[index].is_file() else None
        return masked_depth(metres, conf, ARKIT_MEDIUM, file)

    return Scene(
        LoaderSource(len(rows), lambda index: video.frame(rows[index]), load_depth),  # row i: picture i
        np.tile(fxfycxcy, (len(rows), 1)),
        poses[rows],
        relative_times(stamps[rows]),
        video.size,
        _depth_size(depth[0]),
        name=path.name,
        format="stray",
        frame_numbers=[int(numbers[i]) for i in rows],
        notes=notes,
    )
