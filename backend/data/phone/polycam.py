"""Polycam's raw data export (developer mode), as polyform's README (PolyCam/polyform) specifies it:
`keyframes/` holding, per keyframe named by its timestamp in microseconds,

- `images/N.jpg` (as captured, slightly distorted) and `corrected_images/N.jpg` (undistorted);
- `cameras/N.json` and `corrected_cameras/N.json` (globally optimised; absent when the session was
  too large to optimise): fx, fy, cx, cy, width, height (1024x768), blur_score, timestamp and
  t_00..t_23, the 3x4 camera-to-world matrix row-major (t_ij is row i, column j) in ARKit's
  gravity-aligned world and camera axes (+y up, camera looking down -z);
- `depth/N.png`: 16-bit millimetres, 256x192;
- `confidence/N.png`: 8-bit, 0 = low, 127 = medium, 255 = high.

Like polyform and nerfstudio's polycam importer, the corrected cameras and images are used when both
folders exist, the ARKit ones otherwise; a keyframe lacking its image or depth map is skipped
(polyform's Keyframe.is_valid). The export unzips to a folder holding `keyframes/`; that folder, its
parent or `keyframes/` itself may be given.
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
    masked_depth,
    read_confidence_png,
    read_json,
    relative_times,
)

TRANSFORM_KEYS = [f"t_{row}{column}" for row in range(3) for column in range(4)]
MICROSECONDS = 1e-6  # keyframe names are timestamps in microseconds (polyform README)


def _keyframes(path: Path) -> Path:
    if not path.is_dir():
        return path
    if path.name == "keyframes" and _has_cameras(path):
        return path
    if (path / "keyframes").is_dir():
        return path / "keyframes"
    subfolders = [p for p in path.iterdir() if p.is_dir() and not p.name.startswith(("__MACOSX", "."))]
    if len(subfolders) == 1 and (subfolders[0] / "keyframes").is_dir():  # the zip's own top folder
        return subfolders[0] / "keyframes"
    return path


def _has_cameras(keyframes: Path) -> bool:
    return (keyframes / "cameras").is_dir() or (keyframes / "corrected_cameras").is_dir()


def is_polycam(path: Path) -> bool:
    keyframes = _keyframes(path)
    return _has_cameras(keyframes) and (keyframes / "depth").is_dir()


def _camera(path: Path, image: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    data = read_json(path, "Polycam camera")
    if not isinstance(data, dict):
        raise SceneError(f"{path} is not a Polycam camera (not a JSON object)")
    arkit = path.parent.parent / "cameras" / path.name
    if path.parent.name == "corrected_cameras" and arkit.is_file():
        # Corrected cameras may leave out what the optimisation does not change: take it from cameras/.
        original = read_json(arkit, "Polycam camera")
        data = (original if isinstance(original, dict) else {}) | data
    data = {"width": image[0], "height": image[1]} | data
    try:
        fxfycxcy = np.array([float(data[k]) for k in ("fx", "fy", "cx", "cy")])
        size = (int(data["width"]), int(data["height"]))
        pose = np.eye(4)
        pose[:3] = np.array([float(data[k]) for k in TRANSFORM_KEYS]).reshape(3, 4)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise SceneError(f"{path} is not a Polycam camera ({type(error).__name__}: {error})") from None
    if not (np.isfinite(fxfycxcy).all() and np.isfinite(pose).all()):
        raise SceneError(f"{path} holds non-finite numbers")
    check_principal_point(fxfycxcy, size, str(path))
    return fxfycxcy, pose, size


def _frames(keyframes: Path, path: Path) -> tuple[list[int], bool, list[str]]:
    """Keyframe numbers with a camera, an image and a depth map; whether they are the corrected ones."""
    corrected = (keyframes / "corrected_cameras").is_dir() and (keyframes / "corrected_images").is_dir()
    prefix = "corrected_" if corrected else ""
    cameras = numbered_files(keyframes / f"{prefix}cameras", r"(\d+)\.json")
    if not cameras:
        raise SceneError(f"Polycam folder {path}: {prefix}cameras/ holds no <timestamp>.json cameras")
    usable = [
        n
        for n in sorted(cameras)
        if (keyframes / f"{prefix}images" / f"{n}.jpg").is_file() and (keyframes / "depth" / f"{n}.png").is_file()
    ]
    if not usable:
        raise SceneError(f"Polycam folder {path}: no keyframe has all of its camera, image and depth map")
    notes = ["read the corrected (bundle-adjusted, undistorted) keyframes"] if corrected else []
    if len(usable) < len(cameras):
        notes.append(f"skipped {len(cameras) - len(usable)} keyframe(s) without an image or depth map")
    return usable, corrected, notes


def open_polycam(path: Path) -> Scene:
    keyframes = _keyframes(path)
    numbers, corrected, notes = _frames(keyframes, path)
    prefix = "corrected_" if corrected else ""
    rgb = [keyframes / f"{prefix}images" / f"{n}.jpg" for n in numbers]
    depth = [keyframes / "depth" / f"{n}.png" for n in numbers]
    has_confidence = (keyframes / "confidence").is_dir()
    color_size, depth_size = image_size(rgb[0]), image_size(depth[0])
    parsed = [_camera(keyframes / f"{prefix}cameras" / f"{n}.json", color_size) for n in numbers]
    wrong = next((i for i, (_, _, size) in enumerate(parsed) if size != color_size), None)
    if wrong is not None:
        raise SceneError(
            f"Polycam keyframe {numbers[wrong]} describes a {parsed[wrong][2][0]}x{parsed[wrong][2][1]} image "
            f"but {rgb[0].name} is {color_size[0]}x{color_size[1]} (keyframes of different sizes are not supported)"
        )

    def read_depth(p: Path) -> np.ndarray:
        conf_path = p.parent.parent / "confidence" / p.name
        conf = read_confidence_png(conf_path) if has_confidence and conf_path.is_file() else None
        return masked_depth(images.read_depth_png(p, 0.001), conf, ARKIT_MEDIUM, p)

    return Scene(
        FileSource(rgb, depth, read_depth, color_size=color_size),
        np.array([k for k, _, _ in parsed]),
        arkit_to_opencv(np.stack([pose for _, pose, _ in parsed])),
        relative_times(numbers, MICROSECONDS),
        color_size,
        depth_size,
        name=path.name,
        format="polycam",
        frame_numbers=numbers,
        notes=notes + ([] if corrected else ["no corrected_images/: the ARKit poses and distorted images are used"]),
    )
