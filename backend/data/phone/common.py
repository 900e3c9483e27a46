"""What the phone-app readers share: ARKit's conventions converted to ours, confidence-masked depth,
JSON and CSV reading with one-line errors, and a frame source built from two loader functions.

ARKit (and so every iPhone scanning app) gives camera-to-world poses with the camera's x right,
y up and z backwards (OpenGL's camera, Blender's too), in a gravity-aligned world with y up.
Scene-R1 uses OpenCV's camera axes (x right, y down, z forwards): the conversion flips the
camera's y and z, on the right of the pose, and nothing else. The world frame is kept as recorded.
ARKit's depth confidence is 0 (low), 1 (medium), 2 (high); low-confidence depth is marked invalid.
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


def quaternion_pose(qx: float, qy: float, qz: float, qw: float, x: float, y: float, z: float) -> np.ndarray:
    """4x4 from a position and a (Hamilton, x y z w) unit quaternion; a zero quaternion is refused."""
    norm = float(np.linalg.norm([qw, qx, qy, qz]))
    if not np.isfinite(norm) or norm < 1e-9:
        raise SceneError(f"pose quaternion ({qx}, {qy}, {qz}, {qw}) is not a rotation")
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
            f"confidence map {path} is {confidence.shape[1]}x{confidence.shape[0]} but its depth map is "
            f"{depth.shape[1]}x{depth.shape[0]}"
        )
    depth = depth.copy()
    depth[confidence < minimum] = 0.0
    return depth


def read_confidence_png(path: Path) -> np.ndarray:
    """An 8-bit (or 16-bit) single-channel confidence PNG as integers."""
    import cv2

    data = images._read_bytes(path)
    images.check_dimensions(data, path)
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 2:
        raise SceneError(f"cannot decode confidence map {path} (needs a single-channel PNG)")
    return raw.astype(np.int32)


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
