"""Pure numpy geometry on the OpenCV camera convention (see camera.py). No torch, no bpy."""

from __future__ import annotations

import numpy as np

from .camera import Intrinsics


def transform_points(transform: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a 4x4 rigid transform to (N, 3) points."""
    points = np.asarray(points)
    return points @ transform[:3, :3].T + transform[:3, 3]


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Inverse of a rigid 4x4 transform (cheaper and more exact than np.linalg.inv)."""
    inverse = np.eye(4, dtype=np.float64)
    rotation = pose[:3, :3]
    inverse[:3, :3] = rotation.T
    inverse[:3, 3] = -rotation.T @ pose[:3, 3]
    return inverse


def valid_depth(depth: np.ndarray) -> np.ndarray:
    """Boolean map of usable depth: finite and > 0 (0 and NaN mark invalid pixels)."""
    return np.isfinite(depth) & (depth > 0)


def backproject_depth(
    depth: np.ndarray,
    intrinsics: Intrinsics,
    pose: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    stride: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """3D points of the valid (and, if given, masked) pixels of a planar depth map; with
    `stride` > 1 only every stride-th of those pixels (thinned before any arithmetic).

    Returns (points, pixels): points (N, 3) in the world frame when `pose` (camera-to-world) is
    given, else in the camera frame; pixels (N, 2) integer (u, v) of each point.
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise ValueError(f"depth must be an HxW array, got shape {depth.shape}")
    if (depth.shape[1], depth.shape[0]) != intrinsics.size:
        raise ValueError(
            f"depth is {depth.shape[1]}x{depth.shape[0]} "
            f"but intrinsics are for {intrinsics.size[0]}x{intrinsics.size[1]}"
        )
    keep = valid_depth(depth)
    if mask is not None:
        if mask.shape != depth.shape:
            raise ValueError(f"mask shape {mask.shape} differs from depth shape {depth.shape}")
        keep &= mask.astype(bool)
    v, u = np.nonzero(keep)
    if stride > 1:
        v, u = v[::stride], u[::stride]
    z = depth[v, u].astype(np.float64)
    x = (u - intrinsics.cx) / intrinsics.fx * z
    y = (v - intrinsics.cy) / intrinsics.fy * z
    points = np.stack([x, y, z], axis=1)
    if pose is not None:
        points = transform_points(pose, points)
    return points, np.stack([u, v], axis=1)


def project_points(points: np.ndarray, intrinsics: Intrinsics, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Project world points into a camera: returns (uv (N, 2) float pixels, z (N,) depth)."""
    camera = transform_points(invert_pose(pose), points)
    z = camera[:, 2]
    with np.errstate(divide="ignore", invalid="ignore"):
        u = intrinsics.fx * camera[:, 0] / z + intrinsics.cx
        v = intrinsics.fy * camera[:, 1] / z + intrinsics.cy
    return np.stack([u, v], axis=1), z


def radial_to_planar_depth(distance: np.ndarray, intrinsics: Intrinsics) -> np.ndarray:
    """Convert distance along each pixel's ray (some renderers' 'depth') to planar z."""
    h, w = distance.shape
    u = (np.arange(w) - intrinsics.cx) / intrinsics.fx
    v = (np.arange(h) - intrinsics.cy) / intrinsics.fy
    ray_length = np.sqrt(1.0 + u[None, :] ** 2 + v[:, None] ** 2)
    return (distance / ray_length).astype(np.float32)
