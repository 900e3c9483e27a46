"""Which frames of a long scan to work on: a new view every so many centimetres or degrees.

At 30 fps neighbouring frames are nearly the same view, so tracking, voting and fusion on all of
them repeats the same work. `select_views` walks the camera path out from a key frame in both
directions and keeps a frame once the camera has moved `min_translation` metres or turned
`min_rotation` degrees since the last kept frame (or, with a `target` point, once that point's
projection has moved `min_shift` pixels). Poses only: no image is decoded.
Used by the tracker, the lifting and the fusion alike, so they work on the same views.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...shared.scene import SceneError


@dataclass(frozen=True)
class ViewSettings:
    min_translation: float = 0.10  # metres the camera moves before a new view is taken
    min_rotation: float = 10.0  # degrees the camera turns before a new view is taken
    min_shift: float | None = None  # pixels the target's projection moves (with a target)
    max_views: int | None = None  # cap: evenly thinned beyond it (the key frame always kept)

    def __post_init__(self):
        if not (self.min_translation >= 0 and self.min_rotation >= 0) or (
            self.min_shift is not None and self.min_shift < 0
        ):
            raise SceneError("view thresholds must be >= 0")
        if self.max_views is not None and self.max_views < 1:
            raise SceneError(f"max_views must be at least 1, got {self.max_views}")


ALL_FRAMES = ViewSettings(0.0, 0.0)  # every frame is a new view


def rotation_degrees(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle in degrees between rotations a (..., 3, 3) and b (..., 3, 3)."""
    cosine = (np.einsum("...ji,...ji->...", a, b) - 1.0) / 2.0  # trace(a^T b)
    return np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))


def _target_pixels(poses: np.ndarray, target: np.ndarray, focal: float) -> np.ndarray:
    """(N, 2) normalised-plane projection of `target` in every camera, times `focal` (pixels);
    NaN behind the camera."""
    camera = np.einsum("nji,nj->ni", poses[:, :3, :3], target[None] - poses[:, :3, 3])  # R^T (x - t)
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = focal * camera[:, :2] / camera[:, 2:3]
    uv[camera[:, 2] <= 0] = np.nan
    return uv


def _is_new_view(poses, kept: int, index: int, settings: ViewSettings, pixels) -> bool:
    moved = np.linalg.norm(poses[index, :3, 3] - poses[kept, :3, 3])
    if (
        moved >= settings.min_translation
        or rotation_degrees(poses[kept, :3, :3], poses[index, :3, :3]) >= settings.min_rotation
    ):
        return True
    if pixels is None or settings.min_shift is None:
        return False
    shift = np.linalg.norm(pixels[index] - pixels[kept])
    return bool(np.isnan(shift) != np.isnan(pixels[kept, 0]) or shift >= settings.min_shift)


def select_views(
    poses: np.ndarray,
    key_index: int,
    settings: ViewSettings = ViewSettings(),
    target: np.ndarray | None = None,
    focal: float = 500.0,
    candidates=None,
) -> list[int]:
    """Sorted frame indices: the key frame, then walking out from it both ways, each frame
    that is a new view relative to the last one kept in that direction.

    `candidates` restricts the choice to those frames (e.g. every n-th); `target` (a world
    point, e.g. the object's centre) adds the projection-shift rule, in pixels at `focal`.
    """
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4) or len(poses) == 0:
        raise SceneError(f"poses must be Nx4x4 with N >= 1, got shape {poses.shape}")
    if not 0 <= key_index < len(poses):
        raise SceneError(f"key frame {key_index} is out of range for {len(poses)} frames")
    pool = np.arange(len(poses)) if candidates is None else np.unique(np.asarray(list(candidates), dtype=np.int64))
    if len(pool) and (pool[0] < 0 or pool[-1] >= len(poses)):
        raise SceneError(f"candidate frames must lie in 0..{len(poses) - 1}")
    pixels = None if target is None else _target_pixels(poses, np.asarray(target, dtype=np.float64).reshape(3), focal)
    chosen = [key_index]
    for direction in (pool[pool > key_index], pool[pool < key_index][::-1]):
        kept = key_index
        for index in direction:
            if _is_new_view(poses, kept, int(index), settings, pixels):
                chosen.append(int(index))
                kept = int(index)
    chosen.sort()
    if settings.max_views is not None and len(chosen) > settings.max_views:
        picks = np.unique(np.linspace(0, len(chosen) - 1, settings.max_views).round().astype(int))
        chosen = sorted({chosen[i] for i in picks[: settings.max_views - 1]} | {key_index})
    return chosen
