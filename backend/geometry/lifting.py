"""Lifting per-frame 2D masks into 3D points by multi-view voting (numpy only, model-free).

The paper's lifted masks are loose (Acc@0.5 less than half its Acc@0.25) because every masked
pixel is back-projected. Here a point belongs to the object only when most frames that can see
it (by a depth test) mark it in-mask, and pixels on depth edges (where a mask boundary error
throws points onto the background) are never lifted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ...shared.geometry import backproject_depth, project_points, valid_depth
from ...shared.scene import Frame, Scene, SceneError


@dataclass(frozen=True)
class LiftSettings:
    edge_jump: float = 0.05  # a depth jump above this fraction of depth marks a depth edge
    depth_tolerance: float = 0.02  # metres, plus `depth_tolerance_relative` x depth, for visibility
    depth_tolerance_relative: float = 0.015
    min_confidence: float = 0.5  # a point needs more than this fraction of its seeing frames (a majority)
    min_views: int = 2  # a point only its own frame sees is unconfirmed (capped by the frame count)
    voxel: float = 0.01  # metres: candidates are merged on this grid before voting
    max_candidates: int = (
        400_000  # masked pixels back-projected before voting (evenly thinned; ~10 per 1 cm voxel of a bed)
    )


@dataclass
class LiftedPoints:
    points: np.ndarray  # (N, 3) world
    confidence: np.ndarray  # (N,) in-mask votes / frames that see the point
    seen: np.ndarray  # (N,) number of frames that see the point


def resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a boolean mask to (width, height)."""
    h, w = mask.shape
    width, height = size
    if (w, h) == (width, height):
        return mask.astype(bool)
    rows = (np.arange(height) * h // height).clip(0, h - 1)
    cols = (np.arange(width) * w // width).clip(0, w - 1)
    return mask.astype(bool)[rows[:, None], cols[None, :]]


def depth_edges(depth: np.ndarray, jump: float) -> np.ndarray:
    """Pixels on the far side of a depth edge: a 3x3 neighbour is nearer by `jump` x depth.

    A mask that spills over an object's silhouette lands on exactly these pixels (the background
    just behind the edge), while the object's own rim, even a table leg two pixels wide, stays.
    """
    valid = valid_depth(depth)
    filled = np.where(valid, depth, np.inf).astype(np.float32)
    padded = np.pad(filled, 1, mode="edge")
    h, w = depth.shape
    nearest = np.min([padded[dy : dy + h, dx : dx + w] for dy in range(3) for dx in range(3)], axis=0)
    with np.errstate(invalid="ignore"):
        return valid & (filled - nearest > jump * filled)


def voxel_average(points: np.ndarray, voxel: float) -> np.ndarray:
    """One point per occupied voxel: the mean of the points in it."""
    if len(points) == 0:
        return points.reshape(0, 3)
    cells = np.floor(points / voxel).astype(np.int64)
    cells -= cells.min(axis=0)
    # One int64 key per voxel (21 bits an axis: 20 km at 1 cm) so np.unique sorts a flat array.
    keys = (cells[:, 0] << 42) | (cells[:, 1] << 21) | cells[:, 2]
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    sums = np.stack([np.bincount(inverse, weights=points[:, axis], minlength=len(counts)) for axis in range(3)], axis=1)
    return sums / counts[:, None]


def _check_mask(frame: Frame, mask: np.ndarray) -> np.ndarray:
    return _mask_at_depth_size(frame.index, mask, frame.intrinsics.size, frame.depth_intrinsics.size)


def _mask_at_depth_size(
    index: int, mask: np.ndarray, color_size: tuple[int, int], depth_size: tuple[int, int]
) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise SceneError(f"the mask for frame {index} must be HxW, got shape {mask.shape}")
    if (mask.shape[1], mask.shape[0]) not in (color_size, depth_size):
        raise SceneError(
            f"the mask for frame {index} is {mask.shape[1]}x{mask.shape[0]}, "
            f"but the frame is {color_size[0]}x{color_size[1]}"
        )
    return resize_mask(mask, depth_size)


class SceneFrames(Sequence):
    """Frames of a scene decoded when read and dropped after (the scene keeps a few): a long
    video is never held in memory at once. `depth_sizes` needs no decoding."""

    def __init__(self, scene: Scene, indices: Sequence[int]):
        self.scene, self.indices = scene, list(indices)
        self.depth_sizes = [scene.depth_size] * len(self.indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, position):
        if isinstance(position, slice):
            return SceneFrames(self.scene, self.indices[position])
        return self.scene.frame(self.indices[position])


def masked_points(
    frame: Frame, mask: np.ndarray, settings: LiftSettings = LiftSettings(), reject_edges: bool = True, stride: int = 1
) -> np.ndarray:
    """World points of a frame's masked pixels that have valid depth (and are off depth edges);
    every `stride`-th of them only."""
    mask = _check_mask(frame, mask)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return np.zeros((0, 3))
    # Only the mask's bounding box (plus the 3x3 neighbourhood for edge tests) is read: a 640x480
    # frame whose object covers a tenth of it costs a tenth as much.
    top, bottom = max(rows[0] - 1, 0), rows[-1] + 2
    left, right = max(cols[0] - 1, 0), cols[-1] + 2
    depth = frame.depth[top:bottom, left:right]
    mask = mask[top:bottom, left:right]
    if reject_edges:
        mask = mask & ~depth_edges(depth, settings.edge_jump)
    window = frame.depth_intrinsics.cropped(left, top, depth.shape[1], depth.shape[0])
    points, _ = backproject_depth(depth, window, frame.pose, mask, stride=stride)
    return points


def count_votes(
    points: np.ndarray, frame: Frame, mask: np.ndarray, settings: LiftSettings
) -> tuple[np.ndarray, np.ndarray]:
    """(seen, in-mask) per point for one frame, by projecting into its depth map.

    A point is seen when it projects inside the image onto valid depth and is not behind the
    measured surface; it is in-mask when it also lies on that surface and the pixel is masked.
    A point well in front of the measured surface is seen and out: the camera looked through it.
    """
    intrinsics = frame.depth_intrinsics
    uv, z = project_points(points, intrinsics, frame.pose)
    width, height = intrinsics.size
    u, v = np.rint(uv[:, 0]), np.rint(uv[:, 1])
    inside = (z > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    seen = np.zeros(len(points), bool)
    in_mask = np.zeros(len(points), bool)
    ui, vi = u[inside].astype(np.int64), v[inside].astype(np.int64)
    measured = frame.depth[vi, ui]
    valid = valid_depth(measured)
    tolerance = settings.depth_tolerance + settings.depth_tolerance_relative * np.nan_to_num(measured)
    zi = z[inside]
    not_behind = valid & (zi < measured + tolerance)
    on_surface = not_behind & (np.abs(zi - measured) < tolerance)
    seen[inside] = not_behind
    in_mask[inside] = on_surface & mask[vi, ui]
    return seen, in_mask


def vote_in_frames(
    points: np.ndarray, frames: list[Frame], masks: list[np.ndarray], settings: LiftSettings
) -> tuple[np.ndarray, np.ndarray]:
    """(seen, in-mask) counts per point over all frames, one frame at a time (numpy)."""
    seen = np.zeros(len(points), np.int32)
    votes = np.zeros(len(points), np.int32)
    for frame, mask in zip(frames, masks):
        s, v = count_votes(points, frame, mask, settings)
        seen += s
        votes += v
    return seen, votes


def lift_masks(
    scene: Scene, masks: Mapping[int, np.ndarray], settings: LiftSettings = LiftSettings(), vote=vote_in_frames
) -> LiftedPoints:
    """Vote 2D masks (frame index -> HxW bool, colour or depth resolution) into 3D points.

    Frames with an empty mask still vote (they say "not here"); frames absent from `masks` do not.
    `vote` counts the votes (vote_in_frames here; the backend passes a torch one for GPUs).
    """
    if not masks:
        raise SceneError("no masks to lift")
    # Frames are decoded as they are read, twice (candidates, then votes), never all held at once.
    frames = SceneFrames(scene, [scene.check_index(i) for i in masks])
    depth_masks = [
        _mask_at_depth_size(i, m, scene.color_size, scene.depth_size) for i, m in zip(frames.indices, masks.values())
    ]
    # Long videos see each surface many times over: thin the candidates (voting still reads
    # every mask pixel through projection, so nothing is lost but redundancy).
    step = max(1, int(np.ceil(sum(np.count_nonzero(m) for m in depth_masks) / settings.max_candidates)))
    candidates = [
        masked_points(frame, mask, settings, stride=step) for frame, mask in zip(frames, depth_masks) if mask.any()
    ]
    points = voxel_average(np.concatenate(candidates) if candidates else np.zeros((0, 3)), settings.voxel)
    if len(points) == 0:
        raise SceneError("the masks cover no pixel with valid depth (away from depth edges): nothing to lift")
    seen, votes = vote(points, frames, depth_masks, settings)
    confidence = votes / np.maximum(seen, 1)
    keep = (seen >= min(settings.min_views, len(masks))) & (confidence > settings.min_confidence)
    return LiftedPoints(points[keep], confidence[keep], seen[keep])


def naive_union(scene: Scene, masks: Mapping[int, np.ndarray]) -> np.ndarray:
    """The loose baseline: every masked pixel with depth, back-projected and pooled."""
    parts = [masked_points(scene.frame(i), m, reject_edges=False) for i, m in masks.items()]
    return np.concatenate(parts) if parts else np.zeros((0, 3))


def axis_aligned_box(points: np.ndarray, trim: float = 0.0) -> np.ndarray:
    """[[min xyz], [max xyz]]; `trim` percent of points ignored at each end (robust to noise)."""
    if len(points) == 0:
        raise SceneError("no points, no box")
    if trim > 0:
        return np.stack([np.percentile(points, trim, axis=0), np.percentile(points, 100 - trim, axis=0)])
    return np.stack([points.min(axis=0), points.max(axis=0)])
