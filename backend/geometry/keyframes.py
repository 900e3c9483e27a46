"""Where a 3D mask shows in other frames: its projection (with a depth test) as a box, prompt points
and a mask, and the choice of key frames that see it large and unoccluded from different sides."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...shared.geometry import project_points
from ...shared.scene import Frame, Scene
from .frame_selection import ViewSettings, select_views
from .lifting import LiftSettings, count_votes


@dataclass(frozen=True)
class KeyFrameSettings:
    count: int = 6  # key frames segmented by the model, the prompted frame included
    min_angle_deg: float = 12.0  # between the viewing directions of two key frames
    min_unoccluded: float = 0.5  # share of the points in the image that the depth test confirms
    min_points: int = 30  # confirmed points for the object to count as in view
    border: int = 4  # pixels: a projection this close to the image border is cut off
    box_margin: float = 0.08  # of the projected box's size, added on each side of a prompt box
    # Frames a key frame may be taken from, per scene (key_frame_views): every query draws from the
    # same few, so a segmenter's image embeddings computed for one query serve the next.
    candidates: int = 12
    views: ViewSettings = ViewSettings()


@dataclass
class View:
    """A 3D mask as one frame sees it (colour pixels)."""

    index: int
    uv: np.ndarray  # (N, 2) projected points that pass the depth test
    in_image: int  # points that land inside the image in front of the camera
    box: np.ndarray  # [x1, y1, x2, y2] of uv
    direction: np.ndarray  # unit vector from the object's centre to the camera
    spacing_px: float = 1.0  # pixels between neighbouring points (1 cm apart) at the object's depth

    @property
    def unoccluded(self) -> float:
        return len(self.uv) / max(self.in_image, 1)


def key_frame_views(poses: np.ndarray, settings: KeyFrameSettings = KeyFrameSettings()) -> list[int]:
    """The frames key frames are chosen from: a new view by camera motion (frame_selection) walking
    from the first frame, evenly thinned to `settings.candidates`. Poses only, and no query: the
    same frames for every question about a scene."""
    return select_views(poses, 0, replace(settings.views, max_views=settings.candidates))


def key_frame_pool(poses: np.ndarray, frames, key_index: int, settings: KeyFrameSettings) -> list[int]:
    """Key-frame candidates among `frames`: the scene's key_frame_views (query-independent) when
    `frames` holds enough of them, else `frames` itself evenly thinned (a caller that tracks only
    a few chosen frames); never the prompted frame."""
    frames = [i for i in sorted(set(frames)) if i != key_index]
    wanted = min(len(frames), settings.count - 1)
    views = set(key_frame_views(poses, settings))
    pool = [i for i in frames if i in views]
    if len(pool) >= wanted:
        return pool
    if len(frames) <= settings.candidates:
        return frames
    picks = np.linspace(0, len(frames) - 1, settings.candidates).round().astype(int)
    return [frames[i] for i in sorted(set(picks.tolist()))]


def view_of(frame: Frame, points: np.ndarray, lift: LiftSettings = LiftSettings()) -> View | None:
    """The projection of `points` into `frame`, or None when (almost) nothing of it is seen."""
    height, width = frame.depth.shape
    _, on_surface = count_votes(points, frame, np.ones((height, width), bool), lift)
    uv, z = project_points(points, frame.intrinsics, frame.pose)
    cw, ch = frame.intrinsics.size
    inside = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < cw) & (uv[:, 1] >= 0) & (uv[:, 1] < ch)
    seen = uv[on_surface & inside]
    if len(seen) == 0:
        return None
    spacing = frame.intrinsics.fx * lift.voxel / float(np.median(z[on_surface & inside]))
    centre = points.mean(axis=0)
    direction = frame.pose[:3, 3] - centre
    direction = direction / max(float(np.linalg.norm(direction)), 1e-9)
    box = np.concatenate([seen.min(axis=0), seen.max(axis=0) + 1])
    return View(frame.index, seen, int(np.count_nonzero(inside)), box, direction, spacing)


def view_score(view: View, size: tuple[int, int], settings: KeyFrameSettings) -> float:
    """How well a frame shows the object: its projected area (share of the image) x unoccluded
    share, halved when the projection is cut by the image border; 0 when it is hardly seen."""
    if len(view.uv) < settings.min_points or view.unoccluded < settings.min_unoccluded:
        return 0.0
    width, height = size
    x1, y1, x2, y2 = view.box
    area = (x2 - x1) * (y2 - y1) / (width * height)
    cut = x1 <= settings.border or y1 <= settings.border or x2 >= width - settings.border
    cut = cut or y2 >= height - settings.border
    return float(area * view.unoccluded * (0.5 if cut else 1.0))


def next_key_frame(
    scene: Scene, points: np.ndarray, candidates, chosen: list[View], settings: KeyFrameSettings
) -> View | None:
    """The best-scored view among `candidates` that looks from a new side (angle to every chosen
    view's direction at least min_angle_deg); None when no frame qualifies."""
    limit = np.cos(np.radians(settings.min_angle_deg))
    best, best_score = None, 0.0
    for index in candidates:
        frame = scene.frame(index)
        view = view_of(frame, points)
        if view is None or any(float(view.direction @ c.direction) > limit for c in chosen):
            continue
        score = view_score(view, frame.intrinsics.size, settings)
        if score > best_score:  # ties keep the earlier frame: the choice is reproducible
            best, best_score = view, score
    return best


def spread_views(views: list[View], seen: list[np.ndarray], count: int) -> list[int]:
    """The indices of up to `count` of `views` that look at the object from the sides least covered
    so far, in the order picked (the most different first): each pick is the view whose direction
    is farthest (largest angle) from every direction in `seen` and every earlier pick
    (farthest-point sampling on the viewing directions; ties keep the earlier frame, so the choice
    is reproducible). Neighbouring frames of a video see the object from nearly the same side:
    segmenting all of them repeats the same evidence."""
    directions = [np.nan_to_num(np.asarray(d, float)) for d in seen]
    pool = sorted((v for v in views if np.isfinite(v.direction).all()), key=lambda view: view.index)
    picks: list[int] = []
    while pool and len(picks) < count:
        if directions:
            nearest = np.max(np.stack([v.direction for v in pool]) @ np.stack(directions).T, axis=1)
            best = int(np.argmin(nearest))  # the smallest cosine to its nearest covered side
        else:
            best = 0
        view = pool.pop(best)
        picks.append(view.index)
        directions.append(view.direction)
    return picks


def prompt_for(view: View, size: tuple[int, int], settings: KeyFrameSettings, positives: int = 3):
    """(box, points [x, y, label], mask) to prompt a segmenter with a projected 3D mask: the padded
    box, positive points spread over the projection, negative points at box corners it misses."""
    width, height = size
    low, high = view.box[:2], view.box[2:]
    pad = settings.box_margin * (high - low) + 2
    box = np.concatenate([np.maximum(low - pad, 0), np.minimum(high + pad, [width, height])])
    mask = np.zeros((height, width), bool)
    u, v = np.clip(np.rint(view.uv).astype(int), 0, [width - 1, height - 1]).T
    mask[v, u] = True
    import cv2

    # The points are ~1 cm apart: each covers its share of the surface, then holes are closed.
    radius = max(1, int(np.ceil(view.spacing_px / 2)))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    mask = cv2.dilate(mask.astype(np.uint8), kernel)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, kernel, iterations=2).astype(bool)
    inner = cv2.erode(mask.astype(np.uint8), kernel, iterations=2).astype(bool)
    ys, xs = np.nonzero(inner if inner.any() else mask)
    picks = _spread(np.stack([xs, ys], axis=1).astype(float), positives)
    points = [[x, y, 1] for x, y in picks]
    grown = cv2.dilate(mask.astype(np.uint8), kernel, iterations=3).astype(bool)
    for x, y in ((box[0], box[1]), (box[2] - 1, box[1]), (box[0], box[3] - 1), (box[2] - 1, box[3] - 1)):
        xi, yi = int(np.clip(x, 0, width - 1)), int(np.clip(y, 0, height - 1))
        if not grown[yi, xi]:
            points.append([xi, yi, 0])
    return box, np.asarray(points, float), mask


def main_cluster(points: np.ndarray, eps: float = 0.03) -> np.ndarray:
    """The largest 3D cluster of `points` (Open3D's DBSCAN, which is deterministic): one view's
    mask also lifts the background its border pixels hit, in clumps away from the object."""
    if len(points) < 10:
        return points
    import open3d as o3d

    labels = np.asarray(
        o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points)).cluster_dbscan(eps=eps, min_points=3)
    )
    if (labels < 0).all():
        return points
    return points[labels == np.bincount(labels[labels >= 0]).argmax()]


def _spread(pixels: np.ndarray, count: int) -> np.ndarray:
    """`count` pixels spread over a set (farthest-point sampling from the one nearest the mean)."""
    if len(pixels) <= count:
        return pixels
    chosen = [int(np.argmin(np.linalg.norm(pixels - pixels.mean(axis=0), axis=1)))]
    distance = np.linalg.norm(pixels - pixels[chosen[0]], axis=1)
    while len(chosen) < count:
        chosen.append(int(np.argmax(distance)))
        distance = np.minimum(distance, np.linalg.norm(pixels - pixels[chosen[-1]], axis=1))
    return pixels[chosen]
