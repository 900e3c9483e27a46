"""The box-prompt path without learned weights: segment an object from a 2D box with depth, carry
the mask through the video with a geometric tracker, lift it with multi-view voting, and clean
it into a tight 3D mask with boxes. Also the fallback when no SAM2 weights are present.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import open3d as o3d

from ..shared.geometry import backproject_depth, project_points, valid_depth
from ..shared.lifting import LiftSettings, axis_aligned_box, count_votes, lift_masks, masked_points, resize_mask, vote_in_frames, voxel_average
from ..shared.scene import Frame, Scene, SceneError
from .geometry.frame_selection import ViewSettings, select_views

MIN_SEGMENT_PIXELS = 12


def check_box(box, size: tuple[int, int]) -> np.ndarray:
    """A [x1, y1, x2, y2] box clipped to a width x height frame, or a clear error."""
    box = np.asarray(box, dtype=np.float64).reshape(-1)
    if box.shape != (4,) or not np.isfinite(box).all():
        raise SceneError(f"a box is four finite numbers x1,y1,x2,y2, got {box.tolist()}")
    x1, x2 = sorted(box[[0, 2]])
    y1, y2 = sorted(box[[1, 3]])
    width, height = size
    clipped = np.array([max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)])
    if clipped[2] - clipped[0] < 2 or clipped[3] - clipped[1] < 2:
        raise SceneError(f"box {[round(float(b), 1) for b in box]} lies outside the {width}x{height} frame (or is under 2 pixels wide)")
    return clipped


def _background_planes(points: np.ndarray, ring_points: np.ndarray, threshold: float, max_planes: int = 4) -> np.ndarray:
    """Mask of `points` on large planes that continue outside the box (floor, walls, table tops
    under the object): such a plane is background, while an object's own faces end at its edges."""
    background = np.zeros(len(points), bool)
    if len(ring_points) < 10:
        return background
    tried = np.zeros(len(points), bool)  # planes already judged (background or the object's own)
    rng = np.random.default_rng(0)  # same input, same planes (Open3D's parallel RANSAC is not repeatable)
    for _ in range(max_planes):
        remaining = np.flatnonzero(~tried)
        if len(remaining) < 30:
            break
        sample = remaining[:: max(1, len(remaining) // 3000)]
        normal, offset, inliers = _fit_plane(points[sample], threshold, rng)
        if inliers < 0.1 * len(sample):
            break
        on_plane = np.abs(points @ normal + offset) < threshold
        tried |= on_plane
        if np.mean(np.abs(ring_points @ normal + offset) < threshold) >= 0.15:
            background |= on_plane  # it goes on outside the box: not the object's own face
    return background


def _fit_plane(points: np.ndarray, threshold: float, rng: np.random.Generator, iterations: int = 150) -> tuple[np.ndarray, float, int]:
    """RANSAC plane (unit normal, offset, inlier count) over `iterations` random point triples at once."""
    triples = points[rng.integers(0, len(points), (iterations, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    usable = lengths > 1e-12
    if not usable.any():
        return np.array([0.0, 0.0, 1.0]), 0.0, 0
    normals = normals[usable] / lengths[usable, None]
    offsets = -np.einsum("ij,ij->i", normals, triples[usable, 0])
    counts = (np.abs(points @ normals.T + offsets) < threshold).sum(axis=0)
    best = int(np.argmax(counts))
    return normals[best], float(offsets[best]), int(counts[best])


def segment_box(frame: Frame, box, hint: np.ndarray | None = None, refine: bool = False) -> np.ndarray:
    """The object inside a 2D box, as a mask at depth resolution.

    Depth-aware: background planes that continue beyond the box are removed, the rest is split
    into 3D clusters (DBSCAN), and the cluster that best covers `hint` (default: the middle of
    the box) is the object. `refine` adds colour evidence with GrabCut (see refine_with_grabcut).
    """
    intrinsics = frame.depth_intrinsics
    width, height = intrinsics.size
    scale = np.array([width / frame.intrinsics.width, height / frame.intrinsics.height] * 2)
    x1, y1, x2, y2 = np.round(check_box(box, frame.intrinsics.size) * scale).astype(int)
    x2, y2 = max(x2, x1 + 1), max(y2, y1 + 1)
    inside = np.zeros((height, width), bool)
    inside[y1:y2, x1:x2] = True
    valid = valid_depth(frame.depth)
    if np.count_nonzero(inside & valid) < MIN_SEGMENT_PIXELS:
        raise SceneError(f"frame {frame.index} has no valid depth inside box {[x1, y1, x2, y2]} (at depth resolution)")
    margin = max(4, int(0.15 * max(x2 - x1, y2 - y1)))
    ring = np.zeros_like(inside)
    ring[max(y1 - margin, 0) : y2 + margin, max(x1 - margin, 0) : x2 + margin] = True
    ring &= ~inside

    points, pixels = backproject_depth(frame.depth, intrinsics, None, inside)
    ring_points, _ = backproject_depth(frame.depth, intrinsics, None, ring)
    median_z = float(np.median(points[:, 2]))
    threshold = max(0.008, 0.006 * median_z)
    keep = ~_background_planes(points, ring_points, threshold)
    if np.count_nonzero(keep) < MIN_SEGMENT_PIXELS:
        raise SceneError(f"nothing but background planes inside the box in frame {frame.index}")
    points, pixels = points[keep], pixels[keep]

    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    spacing = median_z / intrinsics.fx  # metres between neighbouring pixels at that depth
    labels = np.asarray(cloud.cluster_dbscan(eps=max(0.02, 4 * spacing), min_points=4))
    if hint is None:
        hint = np.zeros_like(inside)
        cx, cy, hw, hh = (x1 + x2) / 2, (y1 + y2) / 2, (x2 - x1) / 4, (y2 - y1) / 4
        hint[int(cy - hh) : int(np.ceil(cy + hh)) + 1, int(cx - hw) : int(np.ceil(cx + hw)) + 1] = True
    on_hint = hint[pixels[:, 1], pixels[:, 0]]
    best, best_score = None, 0
    for label in np.unique(labels[labels >= 0]):
        members = labels == label
        score = np.count_nonzero(members & on_hint) + 1e-3 * np.count_nonzero(members)
        if score > best_score:
            best, best_score = label, score
    if best is None:
        raise SceneError(f"no object found inside the box in frame {frame.index}")
    mask = np.zeros((height, width), bool)
    chosen = pixels[labels == best]
    mask[chosen[:, 1], chosen[:, 0]] = True
    return refine_with_grabcut(frame, box, mask) if refine else mask


def near_points(points: np.ndarray, reference: np.ndarray, radius: float) -> np.ndarray:
    """Boolean mask of `points` within `radius` of any reference point."""
    if len(points) == 0 or len(reference) == 0:
        return np.zeros(len(points), bool)
    # Open3D's tensor nearest-neighbour search: one hybrid query, no Python loop over points.
    search = o3d.core.nns.NearestNeighborSearch(o3d.core.Tensor(np.ascontiguousarray(reference, np.float32)))
    search.hybrid_index(radius)
    _, _, counts = search.hybrid_search(o3d.core.Tensor(np.ascontiguousarray(points, np.float32)), radius, 1)
    return counts.numpy().reshape(-1) > 0


def refine_with_grabcut(frame: Frame, box, mask: np.ndarray, iterations: int = 3) -> np.ndarray:
    """Grow a depth segment with OpenCV's GrabCut on the colour image.

    Depth clustering misses thin parts and pixels whose depth is noisy; colour alone leaks into
    similarly coloured background (a white cabinet against a white wall). So GrabCut, seeded with
    the depth segment as probable foreground inside the box, may only add pixels that lie in 3D
    within a few pixel spacings of the depth segment.
    """
    width, height = frame.intrinsics.size
    x1, y1, x2, y2 = np.round(check_box(box, (width, height))).astype(int)
    seed = resize_mask(mask, (width, height))
    if not seed.any():
        return mask
    labels = np.full((height, width), cv2.GC_BGD, np.uint8)
    labels[y1:y2, x1:x2] = cv2.GC_PR_BGD
    labels[seed] = cv2.GC_PR_FGD
    try:
        cv2.grabCut(cv2.cvtColor(frame.rgb, cv2.COLOR_RGB2BGR), labels, None, np.zeros((1, 65)), np.zeros((1, 65)), iterations, cv2.GC_INIT_WITH_MASK)
    except cv2.error:  # a one-colour box: GrabCut cannot fit its colour models
        return mask
    grabbed = resize_mask((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD), frame.depth_intrinsics.size)
    candidates = grabbed & ~mask
    if not candidates.any():
        return mask
    intrinsics = frame.depth_intrinsics
    segment_points, _ = backproject_depth(frame.depth, intrinsics, None, mask)
    candidate_points, pixels = backproject_depth(frame.depth, intrinsics, None, candidates)
    if len(segment_points) == 0 or len(candidate_points) == 0:
        return mask
    radius = max(0.02, 3 * float(np.median(segment_points[:, 2])) / intrinsics.fx)
    near = pixels[near_points(candidate_points, segment_points, radius)]
    refined = mask.copy()
    refined[near[:, 1], near[:, 0]] = True
    return refined


@dataclass(frozen=True)
class TrackSettings:
    min_visible_fraction: float = 0.03  # of the object's points, to count it as in view
    box_margin: float = 0.15
    memory_voxel: float = 0.01


def track_geometric(scene: Scene, key_index: int, key_mask: np.ndarray, frames=None, settings: TrackSettings = TrackSettings(), lift: LiftSettings = LiftSettings()) -> dict[int, np.ndarray]:
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
            mask = _follow(frame, memory, settings, lift)
            masks[index] = mask
            if mask.any():
                recent = masked_points(frame, mask, lift)
                memory = voxel_average(np.concatenate([key_points, recent]), settings.memory_voxel)
    return masks


def _follow(frame: Frame, points: np.ndarray, settings: TrackSettings, lift: LiftSettings) -> np.ndarray:
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
    box = np.concatenate([low - pad, high + pad]) * np.array([frame.intrinsics.width / width, frame.intrinsics.height / height] * 2)
    try:
        return segment_box(frame, box, hint)
    except SceneError:
        return empty


@dataclass
class Mask3D:
    """A lifted 3D mask: points with confidence, and its boxes, in the scene's world frame."""

    points: np.ndarray
    confidence: np.ndarray
    aabb: np.ndarray  # [[min xyz], [max xyz]]
    obb_center: np.ndarray
    obb_extent: np.ndarray
    obb_rotation: np.ndarray
    frame_boxes: dict[int, list[int]] = field(default_factory=dict)  # per-frame 2D boxes (colour pixels)
    timings: dict[str, float] = field(default_factory=dict)
    frames_used: list[int] = field(default_factory=list)  # the frames whose masks voted (a long scan's selected views)

    def to_json(self) -> dict:
        return {
            "point_count": int(len(self.points)),
            "aabb": self.aabb.round(5).tolist(),
            "obb": {"center": self.obb_center.round(5).tolist(), "extent": self.obb_extent.round(5).tolist(), "rotation": self.obb_rotation.round(6).tolist()},
            "mean_confidence": float(self.confidence.mean()) if len(self.confidence) else 0.0,
            "frame_boxes": {str(k): v for k, v in sorted(self.frame_boxes.items())},
            "frames_used": [int(i) for i in self.frames_used],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }


def remove_stray_clusters(points: np.ndarray, eps: float = 0.05, keep_ratio: float = 0.1) -> np.ndarray:
    """Keep the largest 3D cluster and any other cluster at least `keep_ratio` of its size."""
    if len(points) < 10:
        return np.ones(len(points), bool)
    labels = np.asarray(o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points)).cluster_dbscan(eps=eps, min_points=3))
    if (labels < 0).all():
        return np.ones(len(points), bool)
    sizes = np.bincount(labels[labels >= 0])
    return (labels >= 0) & (sizes[np.maximum(labels, 0)] >= keep_ratio * sizes.max())


def mask_to_3d(scene: Scene, masks: dict[int, np.ndarray], settings: LiftSettings = LiftSettings(), vote=vote_in_frames) -> Mask3D:
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
        obb = cloud.get_minimal_oriented_bounding_box() if len(points) >= 4 else cloud.get_axis_aligned_bounding_box().get_oriented_bounding_box()
    except RuntimeError:  # degenerate (flat) point sets
        obb = cloud.get_axis_aligned_bounding_box().get_oriented_bounding_box()
    frame_boxes = {}
    for index, mask in masks.items():
        v, u = np.nonzero(mask)
        if len(u):
            sx, sy = scene.color_size[0] / mask.shape[1], scene.color_size[1] / mask.shape[0]
            frame_boxes[int(index)] = [int(u.min() * sx), int(v.min() * sy), int(np.ceil((u.max() + 1) * sx)), int(np.ceil((v.max() + 1) * sy))]
    return Mask3D(
        points, confidence, axis_aligned_box(points), np.asarray(obb.center), np.asarray(obb.extent), np.asarray(obb.R),
        frame_boxes, {"vote": voted - start, "clean": time.perf_counter() - voted}, sorted(int(i) for i in masks),
    )


def lift_from_box(scene: Scene, frame_index: int, box, frames=None, settings: LiftSettings = LiftSettings(), refine: bool = True,
                  views: ViewSettings = ViewSettings()) -> Mask3D:
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


def write_mask_ply(path, mask: Mask3D) -> None:
    """The 3D mask as a PLY point cloud with a per-point `confidence` property."""
    cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(mask.points.astype(np.float32)))
    cloud.point["confidence"] = o3d.core.Tensor(mask.confidence.astype(np.float32)[:, None])
    colours = np.stack([np.ones_like(mask.confidence), 1 - mask.confidence, np.zeros_like(mask.confidence)], 1)
    cloud.point["colors"] = o3d.core.Tensor(colours.astype(np.float32))
    if not o3d.t.io.write_point_cloud(str(path), cloud):
        raise SceneError(f"could not write {path}")


def lift_to_folder(scene: Scene, frame_index: int, box, out, fuse: bool = False, views: ViewSettings = ViewSettings()) -> dict:
    """`scene-r1 lift`: write OUT/result.json and OUT/mask.ply for one box on one frame.

    With `fuse`, the scene is also TSDF-fused (on the same selected views) into
    OUT/scene_mesh.ply and the mask is given as indices of that mesh's vertices (result.json
    "scene_vertex_indices"). "frames_used" lists the views that were tracked, voted and fused.
    """
    from .fusion import FusionSettings, fuse_scene, indices_near  # fusion needs Open3D's TSDF only when asked

    out = Path(out)
    start = time.perf_counter()
    mask = lift_from_box(scene, frame_index, box, views=views)
    result = {"scene": scene.name, "mode": "lift-from-box", "frame": int(frame_index), "box_2d": [float(b) for b in box],
              "frames_total": len(scene)} | mask.to_json()
    out.mkdir(parents=True, exist_ok=True)
    if fuse:
        fuse_start = time.perf_counter()
        settings = FusionSettings()
        fused = fuse_scene(scene, settings, frames=mask.frames_used)
        indices = indices_near(fused.mesh_vertices, mask.points, 1.5 * settings.voxel)
        if not o3d.io.write_triangle_mesh(str(out / "scene_mesh.ply"), fused.triangle_mesh()):
            raise SceneError(f"could not write {out / 'scene_mesh.ply'}")
        result["scene_mesh"] = "scene_mesh.ply"
        result["scene_vertex_indices"] = indices.tolist()
        result["timings"]["fuse"] = round(time.perf_counter() - fuse_start, 4)
    result["timings"]["total"] = round(time.perf_counter() - start, 4)
    write_mask_ply(out / "mask.ply", mask)
    (out / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result
