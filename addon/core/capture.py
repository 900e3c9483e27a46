"""Capture planning and result geometry for the Blender extension, as plain numpy functions
(the add-on's decisions, tested without Blender; addon/ only applies them with bpy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...shared.camera import Intrinsics, look_at, opencv_to_blender_pose


@dataclass(frozen=True)
class CapturePlan:
    """Which views to render: OpenCV camera-to-world poses with their timestamps. All views share
    the image size of `intrinsics`; `frame_intrinsics` (n, 4: fx fy cx cy) overrides it per view
    (the user's camera may have lens shift, the orbit around it has none)."""

    poses: np.ndarray  # (n, 4, 4)
    timestamps: np.ndarray  # (n,)
    intrinsics: Intrinsics
    frame_intrinsics: np.ndarray | None = None
    description: str = ""  # what the capture covers, in words (shown in the panel)

    def blender_matrices(self) -> list[np.ndarray]:
        return [opencv_to_blender_pose(p) for p in self.poses]

    def intrinsics_at(self, index: int) -> Intrinsics:
        if self.frame_intrinsics is None:
            return self.intrinsics
        fx, fy, cx, cy = (float(v) for v in self.frame_intrinsics[index])
        return Intrinsics(fx, fy, cx, cy, *self.intrinsics.size)

    def all_intrinsics(self) -> np.ndarray:
        """(n, 4) fx fy cx cy of every view."""
        if self.frame_intrinsics is None:
            return np.tile(self.intrinsics.as_array(), (len(self.poses), 1))
        return np.asarray(self.frame_intrinsics, float)


def bounds_of(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(centre, size) of the axis-aligned box around world points (e.g. objects' bound-box corners)."""
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 3)
    if len(corners) == 0:
        raise ValueError("nothing to capture: no geometry in the selection or the scene")
    low, high = corners.min(axis=0), corners.max(axis=0)
    return (low + high) / 2, high - low


def orbit_plan(
    centre,
    size,
    frames: int = 24,
    width: int = 320,
    height: int = 240,
    fps: float = 4.0,
    horizontal_fov_deg: float = 60.0,
    elevation_deg: float = 30.0,
    turns: float = 1.0,
    intrinsics: Intrinsics | None = None,
) -> CapturePlan:
    """A camera circling the box (z up), far enough that the whole box stays in view, looking at
    its centre from `elevation_deg` above the horizon: every side is seen by several frames,
    which is what multi-view lifting needs."""
    if frames < 2 or width < 8 or height < 8 or fps <= 0:
        raise ValueError(
            "an orbit needs at least 2 frames of at least 8x8 pixels and fps > 0"
            f" (got {frames}, {width}x{height}, {fps})"
        )
    centre, size = np.asarray(centre, float), np.asarray(size, float)
    if intrinsics is None:
        fx = width / 2 / np.tan(np.radians(horizontal_fov_deg) / 2)
        intrinsics = Intrinsics(fx, fx, (width - 1) / 2, (height - 1) / 2, width, height)
    fx = intrinsics.fx
    width, height = intrinsics.size
    radius_of_box = max(float(np.linalg.norm(size)) / 2, 0.05)
    half_fov = np.arctan(min(width, height) / 2 / fx)
    distance = 1.15 * radius_of_box / np.sin(half_fov)
    elevation = np.radians(elevation_deg)
    angles = np.linspace(0, 2 * np.pi * turns, frames, endpoint=False)
    poses = []
    for angle in angles:
        eye = centre + distance * np.array(
            [np.cos(elevation) * np.cos(angle), np.cos(elevation) * np.sin(angle), np.sin(elevation)]
        )
        poses.append(look_at(eye, centre))
    return CapturePlan(np.array(poses), np.arange(frames) / fps, intrinsics)


def with_first_view(
    plan: CapturePlan, pose: np.ndarray, fps: float, intrinsics: Intrinsics | None = None
) -> CapturePlan:
    """The plan with one more view in front (the user's camera, where a box was drawn), seen with
    `intrinsics` (same image size as the plan's; default: the plan's)."""
    first = plan.intrinsics if intrinsics is None else intrinsics
    if first.size != plan.intrinsics.size:
        raise ValueError(f"the first view is {first.size}, the plan's views are {plan.intrinsics.size}")
    return CapturePlan(
        np.concatenate([np.asarray(pose, float)[None], plan.poses]),
        np.arange(len(plan.poses) + 1) / fps,
        plan.intrinsics,
        np.concatenate([first.as_array()[None], plan.all_intrinsics()]),
        plan.description,
    )


def animation_frames(frame_start: int, frame_end: int, frames: int) -> list[int]:
    """At most `frames` evenly spaced scene frames of the active camera's animation range."""
    if frame_end < frame_start:
        raise ValueError(f"the animation range {frame_start}..{frame_end} is empty")
    total = frame_end - frame_start + 1
    count = max(1, min(frames, total))
    return sorted({int(round(v)) for v in np.linspace(frame_start, frame_end, count)})


# ---- results as geometry ---------------------------------------------------------------------
def box_mesh(aabb) -> tuple[np.ndarray, list[tuple[int, int, int, int]]]:
    """The 8 corners and 6 quads of an axis-aligned box [[min xyz], [max xyz]]."""
    low, high = np.asarray(aabb, float)
    corners = np.array([[x, y, z] for z in (low[2], high[2]) for y in (low[1], high[1]) for x in (low[0], high[0])])
    faces = [(0, 2, 3, 1), (4, 5, 7, 6), (0, 1, 5, 4), (2, 6, 7, 3), (0, 4, 6, 2), (1, 3, 7, 5)]
    return corners, faces


def thin_points(points: np.ndarray, limit: int = 20000, seed: int = 0) -> np.ndarray:
    """At most `limit` of the mask's points (evenly drawn): a viewport stays responsive."""
    points = np.asarray(points, np.float32).reshape(-1, 3)
    if len(points) <= limit:
        return points
    return points[np.sort(np.random.default_rng(seed).choice(len(points), limit, replace=False))]


def vote_objects(
    distances: dict[str, np.ndarray], radius: float, min_share: float = 0.15, min_points: int = 10
) -> list[str]:
    """Which existing objects a 3D mask covers.

    `distances[name]` holds each mask point's distance to that object's surface. Each point
    votes for its nearest object within `radius`; an object is selected when it wins at least
    `min_share` of the voting points (and `min_points`), so a few stray points on a neighbour or
    the floor select nothing. Sorted by votes, most first.
    """
    names = list(distances)
    if not names:
        return []
    table = np.stack([np.asarray(distances[n], float) for n in names])  # objects x points
    nearest = table.argmin(axis=0)
    close = table.min(axis=0) <= radius
    votes = np.bincount(nearest[close], minlength=len(names))
    voting = max(int(close.sum()), 1)
    chosen = [
        (int(votes[i]), names[i])
        for i in range(len(names))
        if votes[i] >= min_points and votes[i] / voting >= min_share
    ]
    return [name for _, name in sorted(chosen, reverse=True)]


def covered_faces(face_centres: np.ndarray, mask_points: np.ndarray, radius: float) -> np.ndarray:
    """Indices of faces whose centre lies within `radius` of a mask point (a scanned mesh's part
    the mask covers). Brute force in chunks: numpy only, as in Blender's Python."""
    centres = np.asarray(face_centres, float).reshape(-1, 3)
    points = np.asarray(mask_points, float).reshape(-1, 3)
    if len(centres) == 0 or len(points) == 0:
        return np.zeros(0, np.int64)
    # A voxel grid prefilter keeps this near linear: only faces in voxels next to a mask
    # point are measured exactly, in blocks.
    cell = max(radius, 1e-6)
    origin = np.minimum(points.min(axis=0), centres.min(axis=0)) - 2 * cell
    span = np.floor((np.maximum(points.max(axis=0), centres.max(axis=0)) - origin) / cell).astype(np.int64) + 3

    def encode(voxels):
        return (voxels[:, 0] * span[1] + voxels[:, 1]) * span[2] + voxels[:, 2]

    occupied = np.unique(encode(np.floor((points - origin) / cell).astype(np.int64)))
    face_voxels = np.floor((centres - origin) / cell).astype(np.int64)
    candidate = np.zeros(len(centres), bool)
    for offset in np.array([[dx, dy, dz] for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)]):
        candidate |= np.isin(encode(face_voxels + offset), occupied)
    indices = np.flatnonzero(candidate)
    hits = []
    for start in range(0, len(indices), 256):
        block = indices[start : start + 256]
        squared = ((centres[block, None, :] - points[None, :, :]) ** 2).sum(axis=2)
        hits.append(block[(squared <= radius * radius).any(axis=1)])
    return np.concatenate(hits) if hits else np.zeros(0, np.int64)
