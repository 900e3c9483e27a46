"""What the phone-app readers share: ARKit's conventions converted to ours, confidence-masked depth,
JSON and CSV reading with one-line errors, and a frame source built from two loader functions.

ARKit (and so every iPhone scanning app) gives camera-to-world poses with the camera's x right,
y up and z backwards (OpenGL's camera, Blender's too), in a gravity-aligned world with y up.
Scene-R1 uses OpenCV's camera axes (x right, y down, z forwards): the conversion flips the
camera's y and z, on the right of the pose, and nothing else. The world frame is kept as recorded.
ARKit's depth confidence is 0 (low), 1 (medium), 2 (high); low-confidence depth is marked invalid.
Apps store those levels as 0/1/2 (Stray Scanner, 3D Scanner App, Record3D) or 0/127/255 (Polycam,
polyform's README): `confidence_levels` reads either.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from ....shared.camera import BLENDER_TO_OPENCV_CAMERA
from ....shared.scene import SceneError
from .. import images

ARKIT_LOW, ARKIT_MEDIUM, ARKIT_HIGH = 0, 1, 2


class LoaderSource:
    """A FrameSource from two functions index -> image (for layouts that are not one file per image)."""

    def __init__(self, count: int, load_rgb: Callable[[int], np.ndarray], load_depth: Callable[[int], np.ndarray]):
        self.count, self._rgb, self._depth = count, load_rgb, load_depth

    def __len__(self) -> int:
        return self.count

    def load_rgb(self, index: int) -> np.ndarray:
        return self._rgb(index)

    def load_depth(self, index: int) -> np.ndarray:
        return self._depth(index)


def arkit_to_opencv(camera_to_world: np.ndarray) -> np.ndarray:
    """Camera-to-world pose(s) with ARKit's camera axes -> the same pose(s) with OpenCV's."""
    return np.asarray(camera_to_world, dtype=np.float64) @ BLENDER_TO_OPENCV_CAMERA


def quaternion_pose(
    qx: float, qy: float, qz: float, qw: float, x: float, y: float, z: float, where: str = "a pose"
) -> np.ndarray:
    """4x4 from a position and a (Hamilton, x y z w) unit quaternion; a zero quaternion is refused.
    `where` names the pose in errors ("odometry.csv row 12")."""
    norm = float(np.linalg.norm([qw, qx, qy, qz]))
    if not np.isfinite(norm) or norm < 1e-9:
        raise SceneError(f"{where}: quaternion ({qx}, {qy}, {qz}, {qw}) is not a rotation")
    pose = np.eye(4)
    import open3d as o3d  # on first use: `scene-r1 info` and the CLI's start stay light

    pose[:3, :3] = o3d.geometry.get_rotation_matrix_from_quaternion(np.array([qw, qx, qy, qz]) / norm)
    pose[:3, 3] = (x, y, z)
    return pose


def masked_depth(depth: np.ndarray, confidence: np.ndarray | None, minimum: int, path: Path) -> np.ndarray:
    """Depth (float32 metres) with pixels below the confidence `minimum` set to 0 (invalid)."""
    if confidence is None:
        return depth
    if confidence.shape != depth.shape:
        raise SceneError(
            f"{path}: the depth map is {depth.shape[1]}x{depth.shape[0]} but its confidence map is "
            f"{confidence.shape[1]}x{confidence.shape[0]}"
        )
    depth = depth.copy()
    depth[confidence < minimum] = 0.0
    return depth


def confidence_levels(raw: np.ndarray) -> np.ndarray:
    """ARKit levels 0/1/2 from a confidence map stored as the levels themselves or as 0/127/255."""
    raw = np.asarray(raw, dtype=np.int32)
    if raw.size and raw.max() > ARKIT_HIGH:  # 8-bit grey encoding: 0 low, 127 medium, 255 high
        return np.clip(np.rint(raw / 127.5), ARKIT_LOW, ARKIT_HIGH).astype(np.int32)
    return raw


def read_confidence_png(path: Path) -> np.ndarray:
    """An 8-bit (or 16-bit) single-channel confidence PNG as integers."""
    import cv2

    data = images._read_bytes(path)
    images.check_dimensions(data, path)
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 2:
        raise SceneError(f"cannot decode confidence map {path} (needs a single-channel PNG)")
    return confidence_levels(raw)


def read_json(path: Path, what: str):
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SceneError(f"missing file: {path}") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise SceneError(f"{path} is not valid {what} JSON: {error}") from None


def relative_times(values, unit: float = 1.0) -> np.ndarray:
    """Timestamps as seconds from the first frame, checked to be finite and non-decreasing."""
    times = np.asarray(values, dtype=np.float64) * unit
    if len(times) and not np.isfinite(times).all():
        raise SceneError("timestamps are not all finite numbers")
    times = times - times[0] if len(times) else times
    if (np.diff(times) < 0).any():
        raise SceneError(f"timestamps go backwards (at frame {int(np.argmax(np.diff(times) < 0)) + 1})")
    return times


def matrix_from(values, shape: tuple[int, int], what: str, order: str = "C") -> np.ndarray:
    """A flat or nested list of numbers as a finite matrix of `shape`, or a one-line error."""
    try:
        matrix = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise SceneError(f"{what} is not a list of numbers") from None
    if matrix.size != shape[0] * shape[1]:
        raise SceneError(f"{what} holds {matrix.size} numbers, expected {shape[0]}x{shape[1]}")
    matrix = matrix.reshape(shape, order=order)
    if not np.isfinite(matrix).all():
        raise SceneError(f"{what} holds non-finite numbers")
    return matrix


def intrinsics_from_flat(values, what: str) -> np.ndarray:
    """fx, fy, cx, cy from a 3x3 camera matrix given as 9 numbers (or nested), row-major
    [fx, 0, cx, 0, fy, cy, 0, 0, 1] or column-major [fx, 0, 0, 0, fy, 0, cx, cy, 1]: apps disagree
    (3D Scanner App writes row-major, Record3D column-major), and the zeros tell which."""
    k = matrix_from(values, (3, 3), what)
    if k[0, 2] == 0 and k[1, 2] == 0 and (k[2, 0] != 0 or k[2, 1] != 0):
        k = k.T  # column-major: the principal point sits in the bottom row
    if k[2, 0] != 0 or k[2, 1] != 0 or k[0, 1] != 0 or k[1, 0] != 0 or k[2, 2] != 1:
        raise SceneError(f"{what} is not a pinhole camera matrix [fx, 0, cx, 0, fy, cy, 0, 0, 1]: {k.ravel().tolist()}")
    fxfycxcy = np.array([k[0, 0], k[1, 1], k[0, 2], k[1, 2]])
    if fxfycxcy[0] <= 0 or fxfycxcy[1] <= 0:
        raise SceneError(f"{what}: focal lengths must be positive, got {fxfycxcy[0]}, {fxfycxcy[1]}")
    return fxfycxcy


def pose_from_flat(values, what: str) -> np.ndarray:
    """A 4x4 rigid transform from 16 numbers, row-major (last row 0 0 0 1) or column-major (last
    column 0 0 0 1, the translation in elements 12..14 as simd_float4x4 stores it)."""
    pose = matrix_from(values, (4, 4), what)
    bottom = np.array([0.0, 0.0, 0.0, 1.0])
    if not np.allclose(pose[3], bottom, atol=1e-6) and np.allclose(pose[:, 3], bottom, atol=1e-6):
        pose = pose.T
    if not np.allclose(pose[3], bottom, atol=1e-6):
        raise SceneError(f"{what} is not a rigid transform (no 0 0 0 1 row): {pose.ravel().round(4).tolist()}")
    return pose


def check_principal_point(fxfycxcy: np.ndarray, size: tuple[int, int], what: str) -> None:
    """Intrinsics describe the image they come with: a principal point outside it means they were
    written for another resolution (or orientation), which no reader can guess."""
    cx, cy = float(fxfycxcy[2]), float(fxfycxcy[3])
    if not (0 < cx < size[0] and 0 < cy < size[1]):
        raise SceneError(
            f"{what}: principal point ({cx:.1f}, {cy:.1f}) lies outside the {size[0]}x{size[1]} image "
            "(intrinsics for another resolution or orientation)"
        )
