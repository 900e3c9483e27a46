"""Polycam's raw data export (developer mode): `keyframes/` holding, per keyframe named by its
timestamp, `images/N.jpg` (or `corrected_images/`), `cameras/N.json` (or `corrected_cameras/`:
fx, fy, cx, cy, width, height of the image, t_00..t_23 the 3x4 camera-to-world matrix in ARKit's
camera axes, timestamp), `depth/N.png` (16-bit millimetres, typically 256x192) and
`confidence/N.png` (8-bit: 0 low, 54 medium, 255 high).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ....shared.scene import Scene, SceneError
from .. import images
from ..readers import FileSource, image_size, numbered_files
from .common import arkit_to_opencv, masked_depth, read_confidence_png, read_json, relative_times

POLYCAM_MEDIUM = 54  # Polycam stores ARKit's confidence levels as 0 / 54 / 255
TRANSFORM_KEYS = [f"t_{row}{column}" for row in range(3) for column in range(4)]


def _keyframes(path: Path) -> Path:
    return path / "keyframes" if (path / "keyframes").is_dir() else path


def is_polycam(path: Path) -> bool:
    keyframes = _keyframes(path)
    has_cameras = (keyframes / "cameras").is_dir() or (keyframes / "corrected_cameras").is_dir()
    return has_cameras and (keyframes / "depth").is_dir()


def _camera(path: Path) -> tuple[np.ndarray, np.ndarray, tuple[int, int], float]:
    data = read_json(path, "Polycam camera")
    try:
        fxfycxcy = np.array([float(data[k]) for k in ("fx", "fy", "cx", "cy")])
        size = (int(data["width"]), int(data["height"]))
        pose = np.eye(4)
        pose[:3] = np.array([float(data[k]) for k in TRANSFORM_KEYS]).reshape(3, 4)
        timestamp = float(data.get("timestamp", np.nan))
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise SceneError(f"{path} is not a Polycam camera ({type(error).__name__}: {error})") from None
    return fxfycxcy, pose, size, timestamp


def _seconds_per_unit(stamps: np.ndarray) -> float:
    """Polycam writes integer timestamps without a unit: take the one (s, ms, us, ns) that makes the
    median gap between keyframes closest to a second."""
    gaps = np.diff(stamps)
    gap = float(np.median(gaps[gaps > 0])) if (gaps > 0).any() else 1.0
    return min((1.0, 1e-3, 1e-6, 1e-9), key=lambda unit: abs(np.log10(gap * unit)))


def open_polycam(path: Path) -> Scene:
    keyframes = _keyframes(path)
    corrected = (keyframes / "corrected_cameras").is_dir() and (keyframes / "corrected_images").is_dir()
    cameras_dir = keyframes / ("corrected_cameras" if corrected else "cameras")
    images_dir = keyframes / ("corrected_images" if corrected else "images")
    cameras = numbered_files(cameras_dir, r"(\d+)\.json")
    if not cameras:
        raise SceneError(f"Polycam folder {path}: {cameras_dir.name}/ holds no <timestamp>.json cameras")
    numbers = sorted(cameras)
    rgb = [images_dir / f"{n}.jpg" for n in numbers]
    depth = [keyframes / "depth" / f"{n}.png" for n in numbers]
    confidence = [keyframes / "confidence" / f"{n}.png" for n in numbers]
    has_confidence = (keyframes / "confidence").is_dir()
    missing = [p for p in rgb + depth + (confidence if has_confidence else []) if not p.is_file()]
    if missing:
        raise SceneError(f"Polycam folder {path} lacks {len(missing)} file(s), e.g. {missing[0].relative_to(path)}")
    parsed = [_camera(cameras[n]) for n in numbers]
    color_size, depth_size = image_size(rgb[0]), image_size(depth[0])
    if any(size != color_size for _, _, size, _ in parsed):
        raise SceneError(f"Polycam folder {path}: keyframes of different image sizes are not supported")
    if parsed[0][2] != color_size:
        raise SceneError(f"{cameras[numbers[0]]} describes a {parsed[0][2]} image but {rgb[0].name} is {color_size}")
    stamps = np.array([t for _, _, _, t in parsed])
    if not np.isfinite(stamps).all():
        stamps = np.array(numbers, dtype=np.float64)  # the file names are the timestamps
    notes = ["read the corrected (bundle-adjusted) keyframes"] if corrected else []

    def read_depth(p: Path) -> np.ndarray:
        conf = read_confidence_png(p.parent.parent / "confidence" / p.name) if has_confidence else None
        return masked_depth(images.read_depth_png(p, 0.001), conf, POLYCAM_MEDIUM, p)

    return Scene(
        FileSource(rgb, depth, read_depth),
        np.array([k for k, _, _, _ in parsed]),
        arkit_to_opencv(np.stack([pose for _, pose, _, _ in parsed])),
        relative_times(stamps, _seconds_per_unit(stamps)),
        color_size,
        depth_size,
        name=path.name,
        format="polycam",
        frame_numbers=numbers,
        notes=notes,
    )
