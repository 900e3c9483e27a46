"""The default capture: frame what matters.

An orbit around the bounds of every visible mesh puts the camera as far away as the floor is wide,
and small things (a mug on a table) shrink to a few pixels. The default instead starts from the
active camera's own view (where the user looks, and where a box is drawn) and orbits around what
that view sees, leaving out background surfaces (floors, walls: flat and much larger than the
objects standing on them); or around the selection when there is one. The orbit starts beside the
camera and keeps its elevation, so the first views continue the user's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...shared.camera import Intrinsics, look_at
from .capture import CapturePlan

FLAT = 0.05  # an object whose thinnest side is under this share of its longest is flat
BACKGROUND = 2.5  # ... and is background when its longest side exceeds this many times the median object's
MIN_PIXELS = 20  # an object covering fewer pixels of the camera's view is not "seen"
MARGIN = 1.1  # the orbit keeps the target's bounding sphere this much inside the view


@dataclass(frozen=True)
class Box:
    """An object's world-space axis-aligned bounds."""

    low: np.ndarray
    high: np.ndarray

    @classmethod
    def of(cls, corners) -> Box:
        corners = np.asarray(corners, float).reshape(-1, 3)
        return cls(corners.min(axis=0), corners.max(axis=0))

    @property
    def size(self) -> np.ndarray:
        return self.high - self.low


def background_objects(boxes: dict[str, Box]) -> set[str]:
    """Floors, walls, ground planes: flat, and much longer than the median object among `boxes`."""
    if len(boxes) < 2:
        return set()
    longest = {name: float(box.size.max()) for name, box in boxes.items()}
    median = float(np.median(list(longest.values())))
    return {
        name
        for name, box in boxes.items()
        if box.size.min() <= FLAT * longest[name] and longest[name] > BACKGROUND * max(median, 1e-6)
    }


def seen_objects(pixel_counts: dict[str, int], boxes: dict[str, Box]) -> list[str]:
    """What the camera's view is about: objects with at least MIN_PIXELS pixels, background left out
    (unless nothing else is seen)."""
    seen = {name: boxes[name] for name, count in pixel_counts.items() if count >= MIN_PIXELS and name in boxes}
    background = background_objects(seen)
    return sorted(name for name in seen if name not in background) or sorted(seen)


def small_objects(pixel_counts: dict[str, int], names: list[str], useful: int = 64) -> list[tuple[str, int]]:
    """Seen objects that cover fewer than `useful` pixels of the camera's view, smallest first: worth a
    word in the panel (a larger capture size helps the model see them)."""
    return sorted(((n, pixel_counts[n]) for n in names if pixel_counts.get(n, 0) < useful), key=lambda p: p[1])


def target_bounds(names: list[str], boxes: dict[str, Box]) -> tuple[np.ndarray, np.ndarray]:
    """(centre, size) of the named objects' bounds together."""
    if not names:
        raise ValueError("nothing to capture: no mesh is visible from the camera, selected, or in the scene")
    low = np.min([boxes[n].low for n in names], axis=0)
    high = np.max([boxes[n].high for n in names], axis=0)
    return (low + high) / 2, high - low


def orbit_distance(size, intrinsics: Intrinsics, margin: float = MARGIN) -> float:
    """How far from the centre of a box of `size` a camera must be to keep all of it in view."""
    radius = max(float(np.linalg.norm(size)) / 2, 0.05)
    width, height = intrinsics.size
    half_fov = min(np.arctan(width / 2 / intrinsics.fx), np.arctan(height / 2 / intrinsics.fy))
    return margin * radius / np.sin(half_fov)


def camera_orbit(
    camera_pose: np.ndarray,
    camera_intrinsics: Intrinsics,
    centre,
    size,
    frames: int,
    fps: float,
    description: str = "",
) -> CapturePlan:
    """The camera's own view first, then `frames - 1` views circling the target box (z up) from the
    camera's side and elevation, with centred intrinsics of the same size and focal length."""
    if frames < 2 or fps <= 0:
        raise ValueError(f"a capture needs at least 2 frames and fps > 0 (got {frames}, {fps})")
    centre, size = np.asarray(centre, float), np.asarray(size, float)
    width, height = camera_intrinsics.size
    orbit = Intrinsics(camera_intrinsics.fx, camera_intrinsics.fy, (width - 1) / 2, (height - 1) / 2, width, height)
    distance = orbit_distance(size, orbit)
    offset = np.asarray(camera_pose, float)[:3, 3] - centre
    azimuth = np.arctan2(offset[1], offset[0])
    elevation = np.clip(np.arctan2(offset[2], np.hypot(offset[0], offset[1])), np.radians(15), np.radians(60))
    count = frames - 1
    angles = azimuth + 2 * np.pi * (np.arange(count) + 1) / (count + 1)
    poses = [camera_pose]
    for angle in angles:
        direction = np.array([np.cos(elevation) * np.cos(angle), np.cos(elevation) * np.sin(angle), np.sin(elevation)])
        poses.append(look_at(centre + distance * direction, centre))
    per_view = np.concatenate([camera_intrinsics.as_array()[None], np.tile(orbit.as_array(), (count, 1))])
    return CapturePlan(np.array(poses), np.arange(frames) / fps, orbit, per_view, description)


def describe(names: list[str], source: str, small: list[tuple[str, int]] = ()) -> str:
    """What a capture covers, for the panel."""
    shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
    text = f"{source}: {shown}" if names else source
    if small:
        name, pixels = small[0]
        text += f" ({name} covers {pixels} px of the camera view: raise Width/Height for small things)"
    return text


def pixel_areas(index_maps, names: list[str]) -> dict[str, float]:
    """The median pixel area of each object over the frames that see it (the capture's figure of merit)."""
    counts = np.stack([np.bincount(np.asarray(m).ravel(), minlength=len(names) + 1) for m in index_maps])
    areas = {}
    for number, name in enumerate(names, 1):
        seen = counts[:, number][counts[:, number] > 0]
        areas[name] = float(np.median(seen)) if len(seen) else 0.0
    return areas
