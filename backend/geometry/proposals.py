"""Class-agnostic 3D instance proposals for scans without object ids: the candidates of a scan.

The depth of a few frames is fused into a 2 cm point cloud; the room's structure (planes wider
than any furniture: floor, walls, ceiling) is removed; horizontal support surfaces (table, desk,
cabinet tops) are found and what stands on them is cut off at their height; the rest falls into
Euclidean clusters. Each proposal gets its measured colour (median of its points), box and
position, and per-frame id maps come from projecting the proposals into every frame with a
depth test (multi-view: a pixel takes the proposal whose point is visible there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from ...shared.candidates import Candidate, colour_word, relate
from ...shared.geometry import backproject_depth, project_points, valid_depth
from ...shared.scene import Scene, SceneError


@dataclass(frozen=True)
class ProposalSettings:
    frames: int = 16  # frames fused (evenly spaced)
    pixel_stride: int = 3
    voxel: float = 0.02
    structure_extent: float = 2.3  # metres: a plane wider than this is the room, not an object
    plane_distance: float = 0.02
    support_area: float = 0.12  # m2: a horizontal patch at least this big, off the floor, is a support
    cluster_eps: float = 0.05
    min_points: int = 25
    depth_tolerance: float = 0.04  # metres, for the id maps' visibility test


@dataclass
class Proposals:
    points: np.ndarray  # (N, 3)
    labels: np.ndarray  # (N,) proposal id (>0)
    colours: np.ndarray  # (N, 3) 0..1
    settings: ProposalSettings

    def table(self, view: np.ndarray | None = None):
        """The proposals as candidates: measured colour word, box and position; no names or classes."""
        candidates = []
        for identifier in np.unique(self.labels):
            mine = self.labels == identifier
            low, high = self.points[mine].min(axis=0), self.points[mine].max(axis=0)
            colour = colour_word(np.median(self.colours[mine], axis=0))
            aabb = (tuple(float(v) for v in low), tuple(float(v) for v in high))
            candidates.append(Candidate(int(identifier), f"object {int(identifier)}", (), (), colour, aabb, "proposal"))
        return relate(candidates, view)

    def id_map(self, scene: Scene, index: int) -> np.ndarray:
        """Per-pixel proposal ids of one frame (0: none): the proposals' points projected into it,
        kept where the frame's own depth sees them (a depth test), splatted over the voxel's size."""
        frame = scene.frame(index)
        intrinsics = frame.intrinsics
        uv, z = project_points(self.points, intrinsics, frame.pose)
        u, v = np.round(uv[:, 0]).astype(np.int64), np.round(uv[:, 1]).astype(np.int64)
        width, height = intrinsics.size
        inside = (z > 0.05) & (u >= 0) & (v >= 0) & (u < width) & (v < height)
        labels = np.zeros((height, width), np.int32)
        depth = frame.depth
        if frame.depth_intrinsics.size != intrinsics.size:  # nearest-neighbour depth at colour resolution
            rows = np.arange(height) * depth.shape[0] // height
            cols = np.arange(width) * depth.shape[1] // width
            depth = depth[rows[:, None], cols[None, :]]
        u, v, z, ids = u[inside], v[inside], z[inside], self.labels[inside]
        seen = valid_depth(depth[v, u]) & (np.abs(depth[v, u] - z) < self.settings.depth_tolerance + 0.01 * z)
        u, v, ids = u[seen], v[seen], ids[seen]
        radius = 1 + int(round(intrinsics.fx * self.settings.voxel / max(float(np.median(z)) if len(z) else 1.0, 0.3)))
        for du in range(-radius + 1, radius):
            for dv in range(-radius + 1, radius):
                uu, vv = np.clip(u + du, 0, width - 1), np.clip(v + dv, 0, height - 1)
                labels[vv, uu] = ids
        return labels


def _fused_cloud(scene: Scene, settings: ProposalSettings) -> o3d.geometry.PointCloud:
    indices = np.unique(np.linspace(0, len(scene) - 1, min(settings.frames, len(scene))).round().astype(int))
    points, colours = [], []
    for index in indices:
        frame = scene.frame(int(index))
        world, pixels = backproject_depth(frame.depth, frame.depth_intrinsics, frame.pose, stride=settings.pixel_stride)
        sx = frame.intrinsics.width / frame.depth_intrinsics.width
        sy = frame.intrinsics.height / frame.depth_intrinsics.height
        u = np.clip((pixels[:, 0] * sx).astype(int), 0, frame.intrinsics.width - 1)
        v = np.clip((pixels[:, 1] * sy).astype(int), 0, frame.intrinsics.height - 1)
        points.append(world)
        colours.append(frame.rgb[v, u] / 255.0)
    if not points or not sum(len(p) for p in points):
        raise SceneError("no valid depth in the scene: no 3D proposals can be made")
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.concatenate(points)))
    cloud.colors = o3d.utility.Vector3dVector(np.concatenate(colours))
    return cloud.voxel_down_sample(settings.voxel)


def _remove_structure(cloud: o3d.geometry.PointCloud, settings: ProposalSettings) -> np.ndarray:
    """Indices of points that are not on the room's big planes (floor, walls, ceiling). A plane's
    connected pieces narrower than `structure_extent` stay (two tables at one height are coplanar)."""
    keep = np.arange(len(cloud.points))
    for _ in range(8):
        if len(keep) < 100:
            break
        rest = cloud.select_by_index(keep.tolist())
        _plane, inliers = rest.segment_plane(settings.plane_distance, 3, 200, probability=0.9999)
        inliers = np.asarray(inliers)
        plane_points = np.asarray(rest.points)[inliers]
        pieces = _clusters(plane_points, 4 * settings.voxel, 10)
        wide = np.zeros(len(inliers), bool)
        for piece in range(pieces.max(initial=-1) + 1):
            mine = pieces == piece
            if np.max(np.ptp(plane_points[mine], axis=0)) >= settings.structure_extent:
                wide |= mine
        if len(inliers) < 50 or not wide.any():
            break
        keep = np.delete(keep, inliers[wide])
    return keep


def propose(scene: Scene, settings: ProposalSettings = ProposalSettings(), seed: int = 0) -> Proposals:
    """3D instance proposals for a scene (deterministic for a seed)."""
    o3d.utility.random.seed(seed)
    cloud = _fused_cloud(scene, settings)
    keep = _remove_structure(cloud, settings)
    points = np.asarray(cloud.points)[keep]
    colours = np.asarray(cloud.colors)[keep]
    if len(points) < settings.min_points:
        raise SceneError("nothing but the room's walls and floor was found: no 3D proposals")
    objects = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    objects.estimate_normals(o3d.geometry.KDTreeSearchParamHybrid(radius=3 * settings.voxel, max_nn=20))
    normals = np.abs(np.asarray(objects.normals)[:, 2])
    labels = np.zeros(len(points), np.int64)
    next_id = 1
    # Support tops: horizontal patches off the floor; each takes what hangs below it (legs, sides).
    flat = np.flatnonzero((normals > 0.9) & (points[:, 2] > 0.25))
    flat_labels = _clusters(points[flat], settings.cluster_eps, settings.min_points)
    supports = []
    for label in range(flat_labels.max(initial=-1) + 1):
        patch = points[flat[flat_labels == label]]
        low, high = patch.min(axis=0), patch.max(axis=0)
        if np.prod(high[:2] - low[:2]) < settings.support_area:
            continue
        top = float(np.median(patch[:, 2]))
        below = (
            (points[:, 0] >= low[0] - 0.03)
            & (points[:, 0] <= high[0] + 0.03)
            & (points[:, 1] >= low[1] - 0.03)
            & (points[:, 1] <= high[1] + 0.03)
            & (points[:, 2] <= top + 0.015)
            & (labels == 0)
        )
        labels[below] = next_id
        supports.append(next_id)
        next_id += 1
    rest = np.flatnonzero(labels == 0)
    rest_labels = _clusters(points[rest], settings.cluster_eps, settings.min_points)
    for label in range(rest_labels.max(initial=-1) + 1):
        labels[rest[rest_labels == label]] = next_id
        next_id += 1
    # Support pieces that lost their points to others, or stray leg clusters: drop tiny ones.
    good = labels > 0
    ids, counts = np.unique(labels[good], return_counts=True)
    small = ids[counts < settings.min_points]
    good &= ~np.isin(labels, small)
    remap = {old: new for new, old in enumerate(np.unique(labels[good]), start=1)}
    final = np.array([remap[v] for v in labels[good]], dtype=np.int32)
    return Proposals(points[good], final, colours[good], settings)


def _clusters(points: np.ndarray, eps: float, min_points: int) -> np.ndarray:
    if len(points) < min_points:
        return np.full(len(points), -1)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points))
    return np.asarray(cloud.cluster_dbscan(eps=eps, min_points=min(min_points, 10)))


def proposal_recall(proposals: Proposals, truth_boxes: dict[int, np.ndarray], thresholds=(0.25, 0.5)) -> dict:
    """Share of ground-truth objects matched by some proposal's box at each 3D IoU threshold."""
    from ..eval.metrics import box_iou_3d

    table = proposals.table()
    best = {
        t: max((box_iou_3d(np.asarray(c.aabb), box) for c in table.candidates), default=0.0)
        for t, box in truth_boxes.items()
    }
    out = {f"recall@{th}": float(np.mean([v >= th for v in best.values()])) if best else 0.0 for th in thresholds}
    return out | {"objects": len(truth_boxes), "proposals": len(table), "best_iou": best}
