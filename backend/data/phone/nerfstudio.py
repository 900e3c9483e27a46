"""nerfstudio's `transforms.json` (what many tools convert captures to), with depth, read as
nerfstudio's own dataparser (nerfstudio/data/dataparsers/nerfstudio_dataparser.py) reads it:
intrinsics fl_x, fl_y, cx, cy, w, h per frame or at the top (instant-ngp's camera_angle_x/_y stand in
for missing focal lengths, w and h default to the image's size, cx and cy to its centre);
`camera_model` one of COLMAP's pinhole family (distortion is noted, not undone); frames sorted by
file_path, numbers compared as numbers (for zero-padded names, the dataparser's plain sort's order);
per frame `transform_matrix` (4x4 camera-to-world in OpenGL's
camera axes: x right, y up, z backwards; the world as written, `applied_transform` having been
applied already) and `depth_file_path` (16-bit PNG or .npy, both in units of
`depth_unit_scale_factor` metres, 1e-3 by default; it may be smaller than the image). nerfstudio
puts pixel centres at +0.5 (its cx is w/2 for a centred lens); Scene-R1's are at integer
coordinates, so cx and cy lose half a pixel here.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from ....shared.scene import Scene, SceneError
from .. import images
from ..readers import FileSource, image_size
from .common import arkit_to_opencv, matrix_from, read_json

INTRINSIC_KEYS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
# nerfstudio's CAMERA_MODEL_TO_TYPE entries that are pinhole cameras (with or without distortion).
PINHOLE_MODELS = ("OPENCV", "PINHOLE", "SIMPLE_PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV_FISHEYE")
DISTORTION_KEYS = ("k1", "k2", "k3", "k4", "p1", "p2")
DEFAULT_FPS = 30.0


def is_nerfstudio(path: Path) -> bool:
    return (path / "transforms.json").is_file()


def _number(frame: dict, top: dict, key: str, number: int) -> float | None:
    value = frame.get(key, top.get(key))
    if value is None:
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise SceneError(f"transforms.json: frame {number}'s {key} is not a number: {value!r}") from None
    if not np.isfinite(value):
        raise SceneError(f"transforms.json: frame {number}'s {key} is not finite")
    return value


def _frame_camera(frame: dict, top: dict, number: int, image: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    values = {key: _number(frame, top, key, number) for key in INTRINSIC_KEYS + ("camera_angle_x", "camera_angle_y")}
    w = values["w"] if values["w"] is not None else image[0]
    h = values["h"] if values["h"] is not None else image[1]
    fx, fy = values["fl_x"], values["fl_y"]
    if fx is None and values["camera_angle_x"] is not None:  # instant-ngp: horizontal field of view
        fx = 0.5 * w / np.tan(0.5 * values["camera_angle_x"])
    if fy is None:
        fy = 0.5 * h / np.tan(0.5 * values["camera_angle_y"]) if values["camera_angle_y"] is not None else fx
    if fx is None or not (fx > 0 and fy > 0):
        raise SceneError(f"transforms.json: frame {number} has no positive fl_x/fl_y (nor camera_angle_x)")
    cx = values["cx"] if values["cx"] is not None else w / 2
    cy = values["cy"] if values["cy"] is not None else h / 2
    return np.array([fx, fy, cx - 0.5, cy - 0.5]), (int(w), int(h))


def _distortion(frame: dict, top: dict) -> bool:
    """Whether a frame (or the file, for all frames) declares non-zero lens distortion."""
    values = [frame.get(k, top.get(k)) for k in DISTORTION_KEYS]
    values += list(frame.get("distortion_params", top.get("distortion_params")) or [])
    try:
        return any(float(v or 0) != 0 for v in values)
    except (TypeError, ValueError):
        raise SceneError("transforms.json: a distortion coefficient is not a number") from None


def _natural_key(frame: dict) -> list:
    """file_path order, numbers compared as numbers (frame_2 before frame_10)."""
    parts = re.split(r"(\d+)", str(frame.get("file_path", "")))
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in parts]


def _read_depth(path: Path, scale: float) -> np.ndarray:
    if path.suffix.lower() == ".npy":
        try:
            depth = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise SceneError(f"cannot read depth {path}: {error}") from None
        if depth.ndim != 2:
            raise SceneError(f"depth {path} must be a 2D array, got shape {depth.shape}")
        depth = np.nan_to_num(depth.astype(np.float32) * np.float32(scale), nan=0.0, posinf=0.0, neginf=0.0)
        return np.where(depth > 0, depth, 0).astype(np.float32)
    return images.read_depth_png(path, scale)


def open_nerfstudio(path: Path) -> Scene:
    meta = read_json(path / "transforms.json", "nerfstudio transforms")
    frames = meta.get("frames") if isinstance(meta, dict) else None
    if not isinstance(frames, list) or not frames or not all(isinstance(f, dict) for f in frames):
        raise SceneError(f"{path / 'transforms.json'} has no list of frames")
    models = {str(f.get("camera_model", meta.get("camera_model", "OPENCV"))).upper() for f in frames}
    if not models <= set(PINHOLE_MODELS):
        other = sorted(models - set(PINHOLE_MODELS))[0]
        raise SceneError(f"transforms.json: camera_model {other} is not a pinhole camera (one of {PINHOLE_MODELS})")
    frames = sorted(frames, key=_natural_key)
    no_depth = [i for i, f in enumerate(frames) if not f.get("depth_file_path")]
    if no_depth:
        raise SceneError(
            f"transforms.json: frame {frames[no_depth[0]].get('file_path')} (and {len(no_depth) - 1} more) has no "
            "depth_file_path; Scene-R1 needs a depth map per frame"
        )
    try:
        scale = float(meta.get("depth_unit_scale_factor", 1e-3))
        fps = float(meta.get("fps", DEFAULT_FPS))
        rgb = [path / str(f["file_path"]) for f in frames]
        depth = [path / str(f["depth_file_path"]) for f in frames]
    except (KeyError, TypeError, ValueError) as error:
        raise SceneError(f"transforms.json is malformed ({type(error).__name__}: {error})") from None
    if not (np.isfinite(fps) and fps > 0 and np.isfinite(scale) and scale > 0):
        raise SceneError(f"transforms.json: fps ({fps}) and depth_unit_scale_factor ({scale}) must be positive")
    missing = [p for p in rgb + depth if not p.is_file()]
    if missing:
        raise SceneError(f"nerfstudio folder {path} lacks {len(missing)} file(s), e.g. {missing[0]}")
    color_size = image_size(rgb[0])
    cameras = [_frame_camera(f, meta, i, color_size) for i, f in enumerate(frames)]
    if any(size != color_size for _, size in cameras):
        raise SceneError(f"transforms.json: every frame must be {color_size[0]}x{color_size[1]} like {rgb[0].name}")
    poses = np.stack(
        [matrix_from(f.get("transform_matrix"), (4, 4), f"frame {i} transform_matrix") for i, f in enumerate(frames)]
    )
    notes = [] if "fps" in meta else [f"transforms.json carries no frame times; taken as {DEFAULT_FPS:g} fps"]
    distorted = any(_distortion(f, meta) for f in frames)
    if distorted or "OPENCV_FISHEYE" in models:
        notes.append("lens distortion in transforms.json is ignored (frames are taken as pinhole images)")
    depth_size = image_size(depth[0]) if depth[0].suffix.lower() != ".npy" else _npy_size(depth[0])
    return Scene(
        FileSource(rgb, depth, lambda p: _read_depth(p, scale)),
        np.array([k for k, _ in cameras]),
        arkit_to_opencv(poses),
        np.arange(len(frames)) / fps,
        color_size,
        depth_size,
        name=path.name,
        format="nerfstudio",
        notes=notes,
    )


def _npy_size(path: Path) -> tuple[int, int]:
    try:
        shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
    except (OSError, ValueError) as error:
        raise SceneError(f"cannot read depth {path}: {error}") from None
    if len(shape) != 2:
        raise SceneError(f"depth {path} must be a 2D array, got shape {shape}")
    return shape[1], shape[0]
