"""The scene model: an RGB-D video with per-frame intrinsics, camera-to-world poses and timestamps.

A Scene holds its metadata in memory (a few floats per frame) and decodes images lazily
through a FrameSource, so opening a 2,000-frame scan costs no image decoding. Conventions are
in camera.py: OpenCV camera axes, planar depth in metres (float32, 0 or NaN = invalid).

numpy only: used by the Blender add-on (numpy 1.26) and the backend (numpy 2.x).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from .camera import Intrinsics

# Beyond this an image is almost certainly a mistake (or a memory bomb), not an RGB-D frame.
MAX_IMAGE_SIDE = 8192
MAX_DEPTH_M = 10_000.0  # beyond this a depth value is a sentinel or garbage, not a measurement: invalid
MAX_FOCAL_RATIO = 1_000.0  # focal length / longest image side: above it the field of view is < 0.06 degrees


class SceneError(ValueError):
    """A scene, a frame or a capture folder that cannot be used, with the reason in words."""


class FrameSource(Protocol):
    """Decodes one frame's images on demand. Readers implement this for their file layouts.

    Sources with ground-truth instance maps also set `has_instances = True` and provide
    `load_instance(index)` (HxW integer ids at colour resolution, 0 = background).
    """

    def __len__(self) -> int: ...

    def load_rgb(self, index: int) -> np.ndarray:
        """HxWx3 uint8 RGB."""
        ...

    def load_depth(self, index: int) -> np.ndarray:
        """hxw float32 planar depth in metres; 0 or NaN where invalid."""
        ...


class ArraySource:
    """Frames already in memory (captured in Blender, uploaded over the wire, rendered)."""

    def __init__(
        self, rgb: Sequence[np.ndarray], depth: Sequence[np.ndarray], instance: Sequence[np.ndarray] | None = None
    ):
        if len(rgb) != len(depth):
            raise SceneError(f"{len(rgb)} colour images but {len(depth)} depth maps")
        if instance is not None and len(instance) != len(rgb):
            raise SceneError(f"{len(rgb)} colour images but {len(instance)} instance maps")
        self.rgb, self.depth, self.instance = list(rgb), list(depth), None if instance is None else list(instance)
        self.has_instances = instance is not None

    def __len__(self) -> int:
        return len(self.rgb)

    def load_rgb(self, index: int) -> np.ndarray:
        return self.rgb[index]

    def load_depth(self, index: int) -> np.ndarray:
        return self.depth[index]

    def load_instance(self, index: int) -> np.ndarray:
        if self.instance is None:
            raise SceneError("this scene has no instance maps")
        return self.instance[index]


@dataclass(frozen=True)
class Frame:
    """One decoded, validated RGB-D frame."""

    index: int
    rgb: np.ndarray
    depth: np.ndarray
    intrinsics: Intrinsics
    depth_intrinsics: Intrinsics
    pose: np.ndarray
    timestamp: float
    number: int | None = None  # the capture's own frame number (its file's), when it differs from index

    @property
    def name(self) -> str:
        """How messages name the frame: by the capture's number, the index beside it when they differ."""
        if self.number is None or self.number == self.index:
            return f"frame {self.index}"
        return f"frame {self.number} (index {self.index})"


def check_rgb(rgb: np.ndarray, expected_size: tuple[int, int] | None = None, what: str = "colour image") -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise SceneError(f"{what} must be HxWx3 RGB, got shape {rgb.shape}")
    if rgb.dtype != np.uint8:
        raise SceneError(f"{what} must be uint8, got {rgb.dtype}")
    _check_side(rgb.shape[:2], what)
    if expected_size is not None and (rgb.shape[1], rgb.shape[0]) != tuple(expected_size):
        raise SceneError(
            f"{what} is {rgb.shape[1]}x{rgb.shape[0]} "
            f"but the scene's colour size is {expected_size[0]}x{expected_size[1]}"
        )
    return rgb


def check_depth(depth: np.ndarray, expected_size: tuple[int, int] | None = None, what: str = "depth map") -> np.ndarray:
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise SceneError(f"{what} must be HxW, got shape {depth.shape}")
    if depth.dtype != np.float32:
        raise SceneError(f"{what} must be float32 metres, got {depth.dtype}")
    _check_side(depth.shape, what)
    if expected_size is not None and (depth.shape[1], depth.shape[0]) != tuple(expected_size):
        raise SceneError(
            f"{what} is {depth.shape[1]}x{depth.shape[0]} "
            f"but the scene's depth size is {expected_size[0]}x{expected_size[1]}"
        )
    with np.errstate(invalid="ignore"):
        if np.isinf(depth).any():
            raise SceneError(f"{what} holds infinite values; mark invalid pixels with 0 or NaN")
        if (depth > MAX_DEPTH_M).any():  # a sentinel ("far", 65504) or garbage: invalid, like NaN
            depth = np.where(depth > MAX_DEPTH_M, np.float32(np.nan), depth)
        if (depth < 0).any():
            raise SceneError(
                f"{what} holds negative depth (min {np.nanmin(depth):.3f} m); depth is metres >= 0, 0 or NaN = invalid"
            )
    return depth


def _check_side(shape: tuple[int, ...], what: str) -> None:
    if min(shape[:2]) == 0 or max(shape[:2]) > MAX_IMAGE_SIDE:
        raise SceneError(f"{what} is {shape[1]}x{shape[0]}; sides must be between 1 and {MAX_IMAGE_SIDE} pixels")


def check_poses(poses: np.ndarray) -> np.ndarray:
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise SceneError(f"poses must be Nx4x4 camera-to-world matrices, got shape {poses.shape}")
    finite = np.isfinite(poses).all(axis=(1, 2))
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise SceneError(
            f"{len(bad)} pose(s) are not finite (first at frame {bad[0]}); drop those frames or fix the poses"
        )
    if not np.allclose(poses[:, 3], [0, 0, 0, 1], atol=1e-6):
        raise SceneError("poses must have [0, 0, 0, 1] as their last row")
    rotations = poses[:, :3, :3]
    error = np.abs(rotations @ rotations.transpose(0, 2, 1) - np.eye(3)).max(axis=(1, 2))
    if (error > 1e-3).any():
        raise SceneError(f"pose of frame {int(np.argmax(error))} is not a rigid transform (rotation not orthonormal)")
    return poses


class Scene:
    """An RGB-D video: lazily decoded frames plus per-frame intrinsics, poses and timestamps.

    intrinsics / depth_intrinsics: (N, 4) fx, fy, cx, cy of the colour and depth images;
    color_size / depth_size: (width, height), constant over the video.
    """

    def __init__(
        self,
        source: FrameSource,
        intrinsics: np.ndarray,
        poses: np.ndarray,
        timestamps: np.ndarray,
        color_size: tuple[int, int],
        depth_size: tuple[int, int] | None = None,
        depth_intrinsics: np.ndarray | None = None,
        name: str = "scene",
        format: str = "memory",
        cache_frames: int = 8,
        notes: Sequence[str] = (),
        frame_numbers: Sequence[int] | None = None,
        candidates=None,
    ):
        self.source = source
        self.name, self.format, self.notes = name, format, list(notes)
        # The capture's own frame numbers (its file names), which users name frames by; default 0..n-1.
        self.frame_numbers = [int(n) for n in (range(len(source)) if frame_numbers is None else frame_numbers)]
        # The scene's objects (shared.candidates.CandidateTable): their ids are the values of the
        # per-frame instance maps (Blender captures, synthetic rooms); None when unknown (scans).
        self.candidates = candidates
        self.color_size = (int(color_size[0]), int(color_size[1]))
        self.depth_size = self.color_size if depth_size is None else (int(depth_size[0]), int(depth_size[1]))
        self.intrinsics = np.asarray(intrinsics, dtype=np.float64).reshape(-1, 4)
        self.poses = np.asarray(poses, dtype=np.float64)
        self.timestamps = np.asarray(timestamps, dtype=np.float64).reshape(-1)
        if depth_intrinsics is None:
            depth_intrinsics = np.array(
                [self._color_intrinsics(i).scaled(*self.depth_size).as_array() for i in range(len(self.intrinsics))]
            ).reshape(-1, 4)
        self.depth_intrinsics = np.asarray(depth_intrinsics, dtype=np.float64).reshape(-1, 4)
        self._cache: OrderedDict[int, Frame] = OrderedDict()
        self._cache_frames = cache_frames
        self.validate()

    @classmethod
    def from_arrays(cls, rgb, depth, intrinsics, poses, timestamps, instance=None, **kwargs) -> Scene:
        """A scene from in-memory frames; intrinsics may be one Intrinsics for all frames."""
        if len(rgb) == 0:
            raise SceneError("a scene needs at least one frame")
        first_rgb, first_depth = np.asarray(rgb[0]), np.asarray(depth[0])
        if isinstance(intrinsics, Intrinsics):
            intrinsics = np.tile(intrinsics.as_array(), (len(rgb), 1))
        return cls(
            ArraySource(rgb, depth, instance),
            intrinsics,
            poses,
            timestamps,
            color_size=(first_rgb.shape[1], first_rgb.shape[0]) if first_rgb.ndim >= 2 else (0, 0),
            depth_size=(first_depth.shape[1], first_depth.shape[0]) if first_depth.ndim >= 2 else (0, 0),
            **kwargs,
        )

    # ---- metadata ---------------------------------------------------------------------------
    def validate(self) -> None:
        """Check the metadata (not the images: those are checked as each frame is decoded)."""
        n = len(self.source)
        if n == 0:
            raise SceneError(f"scene {self.name!r} has no frames")
        for label, size in (("colour", self.color_size), ("depth", self.depth_size)):
            if min(size) <= 0 or max(size) > MAX_IMAGE_SIDE:
                raise SceneError(f"{label} size {size[0]}x{size[1]} is outside 1..{MAX_IMAGE_SIDE} pixels")
        for label, array, shape in (
            ("intrinsics", self.intrinsics, (n, 4)),
            ("depth intrinsics", self.depth_intrinsics, (n, 4)),
            ("poses", self.poses, (n, 4, 4)),
            ("timestamps", self.timestamps, (n,)),
        ):
            if array.shape != shape:
                raise SceneError(f"{label} have shape {array.shape} but the scene has {n} frames (expected {shape})")
        check_poses(self.poses)
        for label, array, size in (
            ("intrinsics", self.intrinsics, self.color_size),
            ("depth intrinsics", self.depth_intrinsics, self.depth_size),
        ):
            if not np.isfinite(array).all() or (array[:, :2] <= 0).any():
                raise SceneError(f"{label} must be finite with positive focal lengths")
            if (array[:, :2] > MAX_FOCAL_RATIO * max(size)).any() or (np.abs(array[:, 2:]) > 10 * max(size)).any():
                raise SceneError(
                    f"{label} are implausible for {size[0]}x{size[1]} images (fx, fy up to {array[:, :2].max():.3g}, "
                    f"cx, cy up to {np.abs(array[:, 2:]).max():.3g} pixels)"
                )
        if len(self.frame_numbers) != n or len(set(self.frame_numbers)) != n:
            raise SceneError(f"scene {self.name!r} needs {n} distinct frame numbers, got {len(self.frame_numbers)}")
        if not np.isfinite(self.timestamps).all():
            raise SceneError("timestamps must be finite")
        if (np.diff(self.timestamps) < 0).any():
            raise SceneError("timestamps must not decrease")

    def __len__(self) -> int:
        return len(self.source)

    @property
    def duration(self) -> float:
        return float(self.timestamps[-1] - self.timestamps[0])

    @property
    def fps(self) -> float:
        """Mean frame rate of the video (1 frame -> 0)."""
        return (len(self) - 1) / self.duration if self.duration > 0 else 0.0

    def _color_intrinsics(self, index: int) -> Intrinsics:
        fx, fy, cx, cy = self.intrinsics[index]
        return Intrinsics(fx, fy, cx, cy, *self.color_size)

    def intrinsics_at(self, index: int) -> Intrinsics:
        return self._color_intrinsics(self.check_index(index))

    def depth_intrinsics_at(self, index: int) -> Intrinsics:
        fx, fy, cx, cy = self.depth_intrinsics[self.check_index(index)]
        return Intrinsics(fx, fy, cx, cy, *self.depth_size)

    def check_index(self, index: int) -> int:
        """A frame index (negative counts from the end) made positive, or an IndexError."""
        if not -len(self) <= index < len(self):
            raise IndexError(f"frame {index} is out of range for a scene of {len(self)} frames")
        return index % len(self)

    # ---- images -----------------------------------------------------------------------------
    def frame(self, index: int) -> Frame:
        """Decode and validate one frame (kept in a small LRU cache)."""
        index = self.check_index(index)
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        rgb = check_rgb(self.source.load_rgb(index), self.color_size, f"colour image of frame {index}")
        depth = check_depth(self.source.load_depth(index), self.depth_size, f"depth map of frame {index}")
        frame = Frame(
            index,
            rgb,
            depth,
            self.intrinsics_at(index),
            self.depth_intrinsics_at(index),
            self.poses[index],
            float(self.timestamps[index]),
            self.frame_numbers[index],
        )
        self._cache[index] = frame
        while len(self._cache) > self._cache_frames:
            self._cache.popitem(last=False)
        return frame

    def frames(self, indices: Sequence[int] | None = None) -> Iterator[Frame]:
        for index in range(len(self)) if indices is None else indices:
            yield self.frame(index)

    @property
    def has_instances(self) -> bool:
        return bool(getattr(self.source, "has_instances", False))

    def instance(self, index: int) -> np.ndarray:
        """Ground-truth per-pixel instance ids (synthetic scenes and Blender captures only)."""
        if not self.has_instances:
            raise SceneError(f"scene {self.name!r} has no instance maps")
        return np.asarray(self.source.load_instance(self.check_index(index)))

    def frame_at_time(self, seconds: float) -> int:
        """Index of the frame closest to a time in seconds from the start of the video."""
        return int(np.argmin(np.abs(self.timestamps - self.timestamps[0] - seconds)))

    def __repr__(self) -> str:
        return (
            f"Scene({self.name!r}, {len(self)} frames, {self.color_size[0]}x{self.color_size[1]}, format={self.format})"
        )


def summarize_scene(scene: Scene, sample_frames: int = 8) -> dict:
    """What a scene holds, decoding at most `sample_frames` evenly spaced frames for depth stats."""
    indices = np.unique(np.linspace(0, len(scene) - 1, min(sample_frames, len(scene))).round().astype(int))
    valid_fraction, low, high = [], [], []
    for frame in scene.frames(indices):
        depth = frame.depth
        valid = np.isfinite(depth) & (depth > 0)
        valid_fraction.append(valid.mean())
        if valid.any():
            low.append(float(np.percentile(depth[valid], 1)))
            high.append(float(np.percentile(depth[valid], 99)))
    path_length = float(np.linalg.norm(np.diff(scene.poses[:, :3, 3], axis=0), axis=1).sum())
    fx, fy, cx, cy = scene.intrinsics[0]
    summary = {
        "name": scene.name,
        "format": scene.format,
        "frames": len(scene),
        "duration": f"{scene.duration:.2f} s",
        "frame rate": f"{scene.fps:.2f} fps",
        "colour": f"{scene.color_size[0]}x{scene.color_size[1]}",
        "depth": f"{scene.depth_size[0]}x{scene.depth_size[1]}",
        "intrinsics (first frame)": f"fx={fx:.1f} fy={fy:.1f} cx={cx:.1f} cy={cy:.1f}",
        "depth range (1st-99th pct)": f"{min(low):.2f} - {max(high):.2f} m"
        if low
        else "no valid depth in sampled frames",
        "valid depth": f"{100 * float(np.mean(valid_fraction)):.1f}% of pixels (over {len(indices)} sampled frames)",
        "camera path": f"{path_length:.2f} m",
        "instance maps": "yes" if scene.has_instances else "no",
    }
    for i, note in enumerate(scene.notes):
        summary[f"note {i + 1}"] = note
    return summary
