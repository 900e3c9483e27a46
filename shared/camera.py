"""Camera conventions: intrinsics, and the one place Blender's camera frame meets OpenCV's.

Everything in Scene-R1 uses the OpenCV convention: camera-to-world 4x4 poses with the camera
looking down +z, x right, y down; pixel centres at integer coordinates (pixel (u, v) covers
[u - 0.5, u + 0.5)); depth is planar z in metres. Blender cameras look down -z with +y up, so
the conversion is a flip of the camera's y and z axes, applied on the right of the pose.

numpy only: this module runs inside Blender (numpy 1.26) and in the backend (numpy 2.x).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Right-multiplying a camera-to-world pose by this swaps between Blender's camera axes
# (x right, y up, z backwards) and OpenCV's (x right, y down, z forwards). It is its own inverse.
BLENDER_TO_OPENCV_CAMERA = np.diag([1.0, -1.0, -1.0, 1.0])


class CameraError(ValueError):
    """Camera parameters that cannot describe a real camera."""


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of one image, in pixels, for an image of width x height."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(np.isfinite(v) for v in values):
            raise CameraError(f"intrinsics must be finite, got fx={self.fx} fy={self.fy} cx={self.cx} cy={self.cy}")
        if self.fx <= 0 or self.fy <= 0:
            raise CameraError(f"focal lengths must be positive, got fx={self.fx} fy={self.fy}")
        if int(self.width) <= 0 or int(self.height) <= 0:
            raise CameraError(f"image size must be positive, got {self.width}x{self.height}")

    @property
    def matrix(self) -> np.ndarray:
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def size(self) -> tuple[int, int]:
        return int(self.width), int(self.height)

    def as_array(self) -> np.ndarray:
        return np.array([self.fx, self.fy, self.cx, self.cy], dtype=np.float64)

    @classmethod
    def from_matrix(cls, matrix: np.ndarray, width: int, height: int) -> Intrinsics:
        k = np.asarray(matrix, dtype=np.float64)
        if k.shape not in ((3, 3), (4, 4)):
            raise CameraError(f"an intrinsic matrix is 3x3 (or 4x4 padded), got shape {k.shape}")
        return cls(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), int(width), int(height))

    def scaled(self, width: int, height: int) -> Intrinsics:
        """The same camera seen at another resolution (e.g. the depth sensor's)."""
        sx, sy = width / self.width, height / self.height
        # Pixel centres sit at integer coordinates, so scale about the image's outer edge (-0.5).
        return Intrinsics(
            self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5, width, height
        )

    def cropped(self, left: int, top: int, width: int, height: int) -> Intrinsics:
        """The same camera seen through a window of the image whose top-left pixel is (left, top)."""
        return Intrinsics(self.fx, self.fy, self.cx - left, self.cy - top, width, height)


def blender_to_opencv_pose(matrix_world: np.ndarray) -> np.ndarray:
    """Camera-to-world pose of a Blender camera (its matrix_world) in the OpenCV convention."""
    pose = np.asarray(matrix_world, dtype=np.float64)
    if pose.shape != (4, 4):
        raise CameraError(f"a camera pose is a 4x4 matrix, got shape {pose.shape}")
    return pose @ BLENDER_TO_OPENCV_CAMERA


def opencv_to_blender_pose(pose: np.ndarray) -> np.ndarray:
    """The matrix_world a Blender camera needs to see what an OpenCV camera at `pose` sees."""
    pose = np.asarray(pose, dtype=np.float64)
    if pose.shape != (4, 4):
        raise CameraError(f"a camera pose is a 4x4 matrix, got shape {pose.shape}")
    return pose @ BLENDER_TO_OPENCV_CAMERA


def intrinsics_from_blender(
    lens_mm: float,
    sensor_width_mm: float,
    sensor_height_mm: float,
    sensor_fit: str,
    resolution_x: int,
    resolution_y: int,
    shift_x: float = 0.0,
    shift_y: float = 0.0,
    pixel_aspect_x: float = 1.0,
    pixel_aspect_y: float = 1.0,
) -> Intrinsics:
    """Pinhole intrinsics of a Blender perspective camera at its render resolution.

    Follows Blender's own rule (BKE_camera_params_compute_viewplane): the sensor size along the
    fitted axis spans that axis of the image; shift moves the principal point by shift * that
    span. Blender's principal point sits at the image's outer centre (W/2, H/2 in edge
    coordinates), which is (W - 1)/2 with OpenCV's integer pixel centres.
    """
    if lens_mm <= 0 or sensor_width_mm <= 0 or sensor_height_mm <= 0:
        raise CameraError("lens and sensor sizes must be positive")
    if resolution_x <= 0 or resolution_y <= 0:
        raise CameraError(f"resolution must be positive, got {resolution_x}x{resolution_y}")
    fit = sensor_fit.upper()
    if fit == "AUTO":
        fit = "HORIZONTAL" if pixel_aspect_x * resolution_x >= pixel_aspect_y * resolution_y else "VERTICAL"
    if fit not in ("HORIZONTAL", "VERTICAL"):
        raise CameraError(f"sensor_fit must be AUTO, HORIZONTAL or VERTICAL, got {sensor_fit!r}")
    aspect = pixel_aspect_y / pixel_aspect_x
    if fit == "HORIZONTAL":
        sensor_mm, view_px = sensor_width_mm, float(resolution_x)
    else:
        # AUTO picks the larger side's sensor width; an explicit VERTICAL fit uses sensor height.
        sensor_mm = sensor_height_mm if sensor_fit.upper() == "VERTICAL" else sensor_width_mm
        view_px = aspect * resolution_y
    fx = lens_mm / sensor_mm * view_px
    fy = fx / aspect
    cx = resolution_x / 2.0 - shift_x * view_px - 0.5
    cy = resolution_y / 2.0 + shift_y * view_px / aspect - 0.5
    return Intrinsics(fx, fy, cx, cy, int(resolution_x), int(resolution_y))


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray = np.array([0.0, 0.0, 1.0])) -> np.ndarray:
    """OpenCV camera-to-world pose at `eye` looking at `target`, with `up` pointing up in the image."""
    eye, target, up = (np.asarray(v, dtype=np.float64) for v in (eye, target, up))
    forward = target - eye
    norm = np.linalg.norm(forward)
    if norm < 1e-9:
        raise CameraError("eye and target coincide")
    forward /= norm
    right = np.cross(forward, up)
    if np.linalg.norm(right) < 1e-9:
        raise CameraError("viewing direction is parallel to up")
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = right, down, forward, eye
    return pose
