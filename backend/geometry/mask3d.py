"""The box-prompt path without learned weights: segment an object from a 2D box with depth, carry
the mask through the video with a geometric tracker, lift it with multi-view voting, and clean
it into a tight 3D mask with boxes. Also the fallback when no SAM2 weights are present.
"""

from __future__ import annotations

import time

import numpy as np
import open3d as o3d

from ...shared.results import Mask3D
from ...shared.scene import Scene, SceneError
from .frame_selection import ViewSettings, select_views
from .lifting import (
    LiftSettings,
    axis_aligned_box,
    lift_masks,
    vote_in_frames,
)
from .segmentation import segment_box
from .tracking import track_geometric


def remove_stray_clusters(points: np.ndarray, eps: float = 0.05, keep_ratio: float = 0.1) -> np.ndarray:
    """Keep the largest 3D cluster and any other cluster at least `keep_ratio` of its size."""
    if len(points) < 10:
        return np.ones(len(points), bool)
    labels = np.asarray(
        o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points)).cluster_dbscan(eps=eps, min_points=3)
    )
    if (labels < 0).all():
        return np.ones(len(points), bool)
    sizes = np.bincount(labels[labels >= 0])
    return (labels >= 0) & (sizes[np.maximum(labels, 0)] >= keep_ratio * sizes.max())


def mask_to_3d(
    scene: Scene, masks: dict[int, np.ndarray], settings: LiftSettings = LiftSettings(), vote=vote_in_frames
) -> Mask3D:
    """Vote, clean and box per-frame masks into a Mask3D (`vote`: see shared.lifting.lift_masks)."""
    start = time.perf_counter()
    lifted = lift_masks(scene, masks, settings, vote=vote)
    voted = time.perf_counter()
    if len(lifted.points) == 0:
        raise SceneError("no point is marked in-mask by most of the frames that see it: the masks disagree")
    keep = remove_stray_clusters(lifted.points, eps=max(5 * settings.voxel, 0.05))
    points, confidence = lifted.points[keep], lifted.confidence[keep]
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    try:
        obb = (
            cloud.get_minimal_oriented_bounding_box()
            if len(points) >= 4
            else cloud.get_axis_aligned_bounding_box().get_oriented_bounding_box()
        )
    except RuntimeError:  # degenerate (flat) point sets
        obb = cloud.get_axis_aligned_bounding_box().get_oriented_bounding_box()
    frame_boxes = {}
    for index, mask in masks.items():
        v, u = np.nonzero(mask)
        if len(u):  # sizes from the scene: no frame is decoded for its box
            sx, sy = scene.color_size[0] / mask.shape[1], scene.color_size[1] / mask.shape[0]
            frame_boxes[int(index)] = [
                int(u.min() * sx),
                int(v.min() * sy),
                int(np.ceil((u.max() + 1) * sx)),
                int(np.ceil((v.max() + 1) * sy)),
            ]
    return Mask3D(
        points,
        confidence,
        axis_aligned_box(points),
        np.asarray(obb.center),
        np.asarray(obb.extent),
        np.asarray(obb.R),
        frame_boxes,
        {"vote": voted - start, "clean": time.perf_counter() - voted},
        sorted(int(i) for i in masks),
    )


def lift_from_box(
    scene: Scene,
    frame_index: int,
    box,
    frames=None,
    settings: LiftSettings = LiftSettings(),
    refine: bool = True,
    views: ViewSettings = ViewSettings(),
) -> Mask3D:
    """The annotator's fast path: one box on one frame -> the object in 3D. Without `frames`,
    the views selected by camera motion (frame_selection.select_views) are tracked and voted."""
    timings = {}
    start = time.perf_counter()
    frame_index = scene.check_index(frame_index)
    if frames is None:
        frames = select_views(scene.poses, frame_index, views)
    key = scene.frame(frame_index)
    key_mask = segment_box(key, box, refine=refine)
    timings["segment"] = time.perf_counter() - start
    start = time.perf_counter()
    masks = track_geometric(scene, frame_index, key_mask, frames, lift=settings)
    timings["track"] = time.perf_counter() - start
    result = mask_to_3d(scene, masks, settings)
    result.timings = timings | result.timings
    return result
