"""Carrying a key frame's mask through the video. `Tracker` is what the pipeline asks of any tracker
(SAM2 in models/, the geometric tracker here); the geometric tracker needs no learned weights."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from ...shared.geometry import project_points
from ...shared.scene import Frame, Scene, SceneError
from .lifting import LiftSettings, count_votes, masked_points, resize_mask, voxel_average
from .segmentation import MIN_SEGMENT_PIXELS, check_points, click_hint, prompt_box, segment_box


@dataclass(frozen=True)
class TrackSettings:
    min_visible_fraction: float = 0.03  # of the object's points, to count it as in view
    box_margin: float = 0.15
    memory_voxel: float = 0.01


def track_geometric(
    scene: Scene,
    key_index: int,
    key_mask: np.ndarray,
    frames=None,
    settings: TrackSettings = TrackSettings(),
    lift: LiftSettings = LiftSettings(),
) -> dict[int, np.ndarray]:
    """Carry a mask from a key frame through the video, forwards then backwards.

    Each frame gets the object's known points projected into it (with a depth test); their
    bounding box prompts segment_box, hinted by where they land. The object's points grow with
    each frame's mask, so surfaces the key frame never saw are picked up as the camera moves.
    Returns frame index -> mask at depth resolution (empty where the object is out of view).
    """
    key_index = scene.check_index(key_index)
    frames = range(len(scene)) if frames is None else frames
    key_frame = scene.frame(key_index)
    key_mask = resize_mask(key_mask, key_frame.depth_intrinsics.size)
    key_points = voxel_average(masked_points(key_frame, key_mask, lift), settings.memory_voxel)
    if len(key_points) == 0:
        raise SceneError(f"the key-frame mask in frame {key_index} covers no valid depth")
    masks = {key_index: key_mask}
    later = sorted(i for i in frames if i > key_index)
    earlier = sorted((i for i in frames if i < key_index), reverse=True)
    for direction in (later, earlier):
        memory = key_points
        for index in direction:
            frame = scene.frame(index)
            mask = follow_points(frame, memory, settings, lift)
            masks[index] = mask
            if mask.any():
                recent = masked_points(frame, mask, lift)
                memory = voxel_average(np.concatenate([key_points, recent]), settings.memory_voxel)
    return masks


def follow_points(frame: Frame, points: np.ndarray, settings: TrackSettings, lift: LiftSettings) -> np.ndarray:
    width, height = frame.depth_intrinsics.size
    empty = np.zeros((height, width), bool)
    _, on_surface = count_votes(points, frame, np.ones((height, width), bool), lift)
    if np.count_nonzero(on_surface) < max(MIN_SEGMENT_PIXELS, settings.min_visible_fraction * len(points)):
        return empty
    uv, _ = project_points(points[on_surface], frame.depth_intrinsics, frame.pose)
    u, v = np.rint(uv).astype(int).T
    hint = empty.copy()
    hint[v, u] = True
    low, high = np.array([u.min(), v.min()]), np.array([u.max() + 1, v.max() + 1])
    pad = settings.box_margin * (high - low) + 2
    box = np.concatenate([low - pad, high + pad]) * np.array(
        [frame.intrinsics.width / width, frame.intrinsics.height / height] * 2
    )
    try:
        return segment_box(frame, box, hint)
    except SceneError:
        return empty


def segment_prompt(frame: Frame, box, points: np.ndarray | None = None) -> np.ndarray:
    """segment_box for a box and/or clicks: positive clicks pick the cluster, negative ones rule
    clusters out."""
    size = frame.intrinsics.size
    points = None if points is None else check_points(points, size)
    box = prompt_box(box, points, size)
    depth_size = frame.depth_intrinsics.size
    hint, avoid = (click_hint(points, size, label) for label in (1, 0))
    hint = None if hint is None else resize_mask(hint, depth_size)
    avoid = None if avoid is None else resize_mask(avoid, depth_size)
    return segment_box(frame, box, hint, refine=True, avoid=avoid)


FrameProgress = Callable[[int, int], None]  # (frames done, frames in all)


class Tracker(Protocol):
    name: str

    def track(
        self,
        scene: Scene,
        key_index: int,
        box,
        frames: Iterable[int] | None = None,
        progress: FrameProgress | None = None,
        points: np.ndarray | None = None,
    ) -> dict[int, np.ndarray]:
        """frame index -> boolean mask (any resolution; lifting resizes) for each tracked frame.
        `box` may be None when `points` ([x, y, label] rows, colour pixels) has a positive click."""
        ...


class GeometricTracker:
    """No learned weights: depth segmentation of the box, then lifting and re-projection."""

    name = "geometric"

    def track(self, scene, key_index, box, frames=None, progress=None, points=None):
        key_mask = segment_prompt(scene.frame(key_index), box, points)
        masks = track_geometric(scene, key_index, key_mask, frames)
        if progress is not None:
            progress(len(masks), len(masks))
        return masks
