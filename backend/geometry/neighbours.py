"""Which points lie near which: Open3D's nearest-neighbour search, used by segmentation, lifting,
fusion and the exports (kept here so none of them imports another for it)."""

from __future__ import annotations

import numpy as np
import open3d as o3d


def near_points(points: np.ndarray, reference: np.ndarray, radius: float) -> np.ndarray:
    """Boolean mask of `points` within `radius` of any reference point."""
    if len(points) == 0 or len(reference) == 0:
        return np.zeros(len(points), bool)
    # Open3D's tensor nearest-neighbour search: one hybrid query, no Python loop over points.
    search = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(np.ascontiguousarray(reference, np.float32)))
    search.hybrid_index(radius)
    _, _, counts = search.hybrid_search(o3d.core.Tensor(np.ascontiguousarray(points, np.float32)), radius, 1)
    return counts.numpy().reshape(-1) > 0


def indices_near(scene_points: np.ndarray, mask_points: np.ndarray, radius: float) -> np.ndarray:
    """Indices of `scene_points` within `radius` of any mask point: a 3D mask as the scene's own
    points or mesh vertices (sorted, int64)."""
    return np.flatnonzero(near_points(scene_points, mask_points, radius)).astype(np.int64)
