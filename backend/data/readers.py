"""Readers for RGB-D capture folders, auto-detected: the project's canonical scene folder,
7-Scenes and ScanNet exports (phone apps' exports, Record3D's included, are in phone/). All open
lazily: only metadata (poses, intrinsics, timestamps, image sizes from file headers) is read when a
folder is opened.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...shared.camera import CameraError, Intrinsics
from ...shared.candidates import with_candidates  # candidates.json beside the frames
from ...shared.scene import Frame, Scene, SceneError
from . import checks, images
from .checks import image_size, load_matrix

CANONICAL_FORMAT = "scene-r1"
CANONICAL_VERSION = 1
SEVEN_SCENES_DEFAULT_INTRINSICS = (585.0, 585.0, 320.0, 240.0)
SEVEN_SCENES_FPS = 30.0  # the Kinect v1 rate both 7-Scenes and ScanNet were recorded at
SCANNET_FPS = 30.0


class FileSource:
    """Frames stored as one file per image; decodes on request through images.*."""

    def __init__(
        self,
        rgb_paths: Sequence[Path],
        depth_paths: Sequence[Path],
        read_depth: Callable[[Path], np.ndarray],
        instance_paths: Sequence[Path] | None = None,
        color_size: tuple[int, int] | None = None,
    ):
        self.rgb_paths, self.depth_paths, self.read_depth = list(rgb_paths), list(depth_paths), read_depth
        self.color_size = color_size  # (width, height) checked in each file's header before decoding
        self.instance_paths = None if instance_paths is None else list(instance_paths)
        self.has_instances = self.instance_paths is not None

    def __len__(self) -> int:
        return len(self.rgb_paths)

    def load_rgb(self, index: int) -> np.ndarray:
        return images.read_color(self.rgb_paths[index], self.color_size)

    def load_depth(self, index: int) -> np.ndarray:
        return self.read_depth(self.depth_paths[index])

    def load_instance(self, index: int) -> np.ndarray:
        if self.instance_paths is None:
            raise SceneError("this scene has no instance maps")
        return images.read_label_png(self.instance_paths[index])


def numbered_files(folder: Path, pattern: str) -> dict[int, Path]:
    """Files whose names match `pattern` (one integer group), keyed by that integer."""
    regex = re.compile(pattern)
    found = {}
    for path in folder.iterdir():
        match = regex.fullmatch(path.name)
        if match:
            found[int(match.group(1))] = path
    return found


def _require_dir(path: Path) -> Path:
    path = Path(path)
    if not path.exists():
        raise SceneError(f"no such folder: {path}")
    if not path.is_dir() and path.suffix.lower() != ".r3d":  # Record3D's archive is opened as it is (phone/)
        raise SceneError(f"{path} is a file; pass the capture folder that holds the frames")
    return path


# ---- the canonical scene folder --------------------------------------------------------------
def is_canonical(path: Path) -> bool:
    meta = path / "scene.json"
    if not meta.is_file():
        return False
    try:
        meta = json.loads(meta.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError, OSError):
        return True  # it claims to be ours by its name: let open_canonical explain what is wrong
    return not isinstance(meta, dict) or meta.get("format") == CANONICAL_FORMAT


def open_canonical(path: Path) -> Scene:
    meta_path = path / "scene.json"
    meta = checks.canonical_meta(meta_path, CANONICAL_VERSION)
    frames, scale = meta["frames"], float(meta.get("depth_scale", 0.001))
    color_size = checks.size_pair(meta, "color_size", meta_path)
    depth_size = checks.size_pair(meta, "depth_size", meta_path)
    try:
        rgb = [checks.inside(path, f["rgb"], meta_path) for f in frames]
        depth = [checks.inside(path, f["depth"], meta_path) for f in frames]
        has_instance = all("instance" in f for f in frames)
        instance = [checks.inside(path, f["instance"], meta_path) for f in frames] if has_instance else None
        intrinsics = np.array([f["intrinsics"] for f in frames], dtype=np.float64)
        has_depth_intrinsics = bool(frames) and all("depth_intrinsics" in f for f in frames)
        depth_intrinsics = (
            np.array([f["depth_intrinsics"] for f in frames], dtype=np.float64) if has_depth_intrinsics else None
        )
        poses = np.array([f["pose"] for f in frames], dtype=np.float64)
        timestamps = np.array([f["timestamp"] for f in frames], dtype=np.float64)
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise SceneError(f"{meta_path} is malformed ({type(error).__name__}: {str(error)[:200]})") from None
    read_depth = lambda p: images.read_depth_png(p, scale, expected=depth_size)  # noqa: E731
    source = FileSource(rgb, depth, read_depth, instance, color_size=color_size)
    return Scene(
        source,
        intrinsics,
        poses,
        timestamps,
        color_size,
        depth_size,
        depth_intrinsics,
        name=meta.get("name", path.name),
        format="scene-r1",
    )


def write_scene(
    scene: Scene,
    out: Path,
    rgb_format: str = "jpg",
    depth_scale: float = 0.001,
    progress: bool = False,
    on_frame: Callable[[int, Frame, np.ndarray | None], None] | None = None,
) -> Path:
    """Write any Scene as a canonical scene folder (scene.json + rgb/ depth/ [instance/]).

    depth_scale: metres per unit of the 16-bit depth PNGs (0.001 = millimetres, up to 65 m).
    on_frame(index, frame, instance map or None) sees each frame as it is written.
    """
    out = Path(out)
    if rgb_format not in ("jpg", "png"):
        raise SceneError(f"rgb_format must be jpg or png, got {rgb_format!r}")
    for sub in ("rgb", "depth") + (("instance",) if scene.has_instances else ()):
        (out / sub).mkdir(parents=True, exist_ok=True)
    indices = range(len(scene))
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, desc=f"writing {out.name}", unit="frame")
    frames = []
    for i in indices:
        frame = scene.frame(i)
        entry = {
            "rgb": f"rgb/{i:06d}.{rgb_format}",
            "depth": f"depth/{i:06d}.png",
            "timestamp": float(frame.timestamp),
            "intrinsics": frame.intrinsics.as_array().tolist(),
            "depth_intrinsics": frame.depth_intrinsics.as_array().tolist(),
            "pose": frame.pose.tolist(),
        }
        images.write_color(out / entry["rgb"], frame.rgb)
        images.write_png16(out / entry["depth"], images.depth_to_units(frame.depth, depth_scale))
        instance = None
        if scene.has_instances:
            entry["instance"] = f"instance/{i:06d}.png"
            instance = scene.instance(i)
            images.write_png16(out / entry["instance"], instance)
        frames.append(entry)
        if on_frame is not None:
            on_frame(i, frame, instance)
    meta = {
        "format": CANONICAL_FORMAT,
        "version": CANONICAL_VERSION,
        "name": scene.name,
        "color_size": list(scene.color_size),
        "depth_size": list(scene.depth_size),
        "depth_scale": depth_scale,
        "frames": frames,
    }
    (out / "scene.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    return out


# ---- 7-Scenes -------------------------------------------------------------------------------
SEVEN_SCENES_COLOR = r"frame-(\d+)\.color\.(?:png|jpg)"


def is_seven_scenes(path: Path) -> bool:
    return any(re.fullmatch(SEVEN_SCENES_COLOR, p.name) for p in path.glob("frame-*.color.*"))


def open_seven_scenes(path: Path) -> Scene:
    colors = numbered_files(path, SEVEN_SCENES_COLOR)
    numbers = sorted(colors)
    depth = [path / f"frame-{n:06d}.depth.png" for n in numbers]
    missing = [p.name for p in depth if not p.is_file()] + [
        f"frame-{n:06d}.pose.txt" for n in numbers if not (path / f"frame-{n:06d}.pose.txt").is_file()
    ]
    if missing:
        raise SceneError(f"7-Scenes folder {path} lacks {len(missing)} file(s), e.g. {missing[0]}")
    poses = np.stack([load_matrix(path / f"frame-{n:06d}.pose.txt", (4, 4)) for n in numbers])
    intrinsics_file = path / "camera-intrinsics.txt"
    if intrinsics_file.is_file():
        k = load_matrix(intrinsics_file, (3, 3))
        fxfycxcy = (k[0, 0], k[1, 1], k[0, 2], k[1, 2])
        if not (np.isfinite(fxfycxcy).all() and k[0, 0] > 0 and k[1, 1] > 0):
            raise SceneError(f"{intrinsics_file}: focal lengths must be positive and finite, got {k[0, 0]}, {k[1, 1]}")
    else:
        fxfycxcy = SEVEN_SCENES_DEFAULT_INTRINSICS
    color_size = image_size(colors[numbers[0]])
    depth_size = image_size(depth[0])
    intrinsics = np.tile(fxfycxcy, (len(numbers), 1))
    # 7-Scenes depth is millimetres with 65535 for "no reading"; colour and depth share a
    # (nominal) calibration, which is why the depth intrinsics are the colour ones, scaled.
    read_depth = lambda p: images.read_depth_png(p, 0.001, (65535,), expected=depth_size)  # noqa: E731
    source = FileSource([colors[n] for n in numbers], depth, read_depth, color_size=color_size)
    return Scene(
        source,
        intrinsics,
        poses,
        np.array(numbers) / SEVEN_SCENES_FPS,
        color_size,
        depth_size,
        name=path.name,
        format="7scenes",
        frame_numbers=numbers,
    )


# ---- ScanNet (SensReader export) --------------------------------------------------------------
def is_scannet(path: Path) -> bool:
    return all((path / d).is_dir() for d in ("color", "depth", "pose", "intrinsic"))


def open_scannet(path: Path) -> Scene:
    colors = numbered_files(path / "color", r"(\d+)\.(?:jpg|png)")
    if not colors:
        raise SceneError(f"ScanNet folder {path}/color holds no numbered images (0.jpg, 1.jpg, ...)")
    depths = numbered_files(path / "depth", r"(\d+)\.png")
    pose_files = numbered_files(path / "pose", r"(\d+)\.txt")
    numbers = sorted(colors)
    missing = [n for n in numbers if n not in depths or n not in pose_files]
    if missing:
        raise SceneError(
            f"ScanNet folder {path}: frame {missing[0]} (and {len(missing) - 1} more) lacks a depth image or pose file"
        )
    poses = np.stack([load_matrix(pose_files[n], (4, 4)) for n in numbers])
    # ScanNet marks frames where tracking failed with -inf poses: those frames are unusable.
    usable = np.isfinite(poses).all(axis=(1, 2))
    notes = [] if usable.all() else [f"dropped {int((~usable).sum())} frame(s) whose pose is invalid (-inf)"]
    numbers = [n for n, ok in zip(numbers, usable) if ok]
    if not numbers:
        raise SceneError(f"ScanNet folder {path}: every pose is invalid")
    color_size, depth_size = image_size(colors[numbers[0]]), image_size(depths[numbers[0]])
    k_color = load_matrix(path / "intrinsic" / "intrinsic_color.txt", (4, 4))
    depth_k_file = path / "intrinsic" / "intrinsic_depth.txt"
    k_depth = load_matrix(depth_k_file, (4, 4)) if depth_k_file.is_file() else None
    n = len(numbers)
    try:
        intrinsics = np.tile(Intrinsics.from_matrix(k_color[:3, :3], *color_size).as_array(), (n, 1))
        depth_intrinsics = (
            None
            if k_depth is None
            else np.tile(Intrinsics.from_matrix(k_depth[:3, :3], *depth_size).as_array(), (n, 1))
        )
    except CameraError as error:
        raise SceneError(f"ScanNet folder {path}/intrinsic: {error}") from None
    source = FileSource(
        [colors[i] for i in numbers],
        [depths[i] for i in numbers],
        lambda p: images.read_depth_png(p, 0.001, expected=depth_size),
        color_size=color_size,
    )
    return Scene(
        source,
        intrinsics,
        poses[usable],
        np.array(numbers) / SCANNET_FPS,
        color_size,
        depth_size,
        depth_intrinsics,
        name=path.name,
        format="scannet",
        notes=notes,
        frame_numbers=numbers,
    )


@dataclass(frozen=True)
class SceneFormat:
    name: str
    description: str
    detect: Callable[[Path], bool]
    open: Callable[[Path], Scene]


# Checked in this order: the canonical folder first, since it may sit beside anything.
SCENE_FORMATS = {
    f.name: f
    for f in (
        SceneFormat("scene-r1", "Scene-R1 canonical folder (scene.json)", is_canonical, open_canonical),
        SceneFormat(
            "7scenes", "7-Scenes sequence (frame-XXXXXX.color/.depth/.pose)", is_seven_scenes, open_seven_scenes
        ),
        SceneFormat("scannet", "ScanNet export (color/ depth/ pose/ intrinsic/)", is_scannet, open_scannet),
    )
}


def detect_format(path: Path) -> str:
    path = _require_dir(Path(path))
    for scene_format in SCENE_FORMATS.values():
        if scene_format.detect(path):
            return scene_format.name
    sequences = sorted(p.name for p in path.glob("seq-*") if p.is_dir())
    hint = (
        f" It holds {', '.join(sequences[:3])}: pass one sequence folder, e.g. {path / sequences[0]}."
        if sequences
        else ""
    )
    partial = partial_capture(path)
    if partial:  # a known app's folder with a file missing: say which, not every layout there is
        raise SceneError(f"{path} looks like {partial}")
    known = "; ".join(f.description for f in SCENE_FORMATS.values())
    raise SceneError(f"{path} is not a capture folder Scene-R1 can read.{hint} Known layouts: {known}")


def partial_capture(path: Path) -> str | None:
    """What a folder that some app wrote lacks to be read ("a Stray Scanner capture but lacks
    odometry.csv"), or None when it looks like no app's."""
    stray = [n for n in ("odometry.csv", "rgb.mp4") if not (path / n).is_file()]
    if len(stray) == 1 or ((path / "camera_matrix.csv").is_file() and stray):
        return f"a Stray Scanner capture but lacks {' and '.join(stray)}"
    keyframes = path / "keyframes"
    if keyframes.is_dir():
        lacking = [
            f"keyframes/{part}"
            for part in ("images", "cameras", "depth")
            if not any((keyframes / d).is_dir() for d in (part, f"corrected_{part}"))
        ]
        return f"Polycam raw data but lacks {', '.join(lacking)}" if lacking else None
    if any(path.glob("frame_*.json")):
        return "a 3D Scanner App export but has no frame_N.jpg or depth_N.png beside its frame_N.json"
    if any((path / name).is_file() for name in ("metadata.json", "metadata")):
        return "a Record3D export but lacks its rgbd/ (or rgb/ and depth/) folder"
    return None


def open_scene(path: Path | str, format: str | None = None) -> Scene:
    """Open a capture folder lazily, detecting its layout unless `format` names one."""
    path = _require_dir(Path(path))
    if format is None:
        format = detect_format(path)
    if format not in SCENE_FORMATS:
        raise SceneError(f"unknown scene format {format!r}; known: {', '.join(SCENE_FORMATS)}")
    try:
        return with_candidates(SCENE_FORMATS[format].open(path), path)
    except CameraError as error:  # a focal length of 0 or below in the app's camera file: bad input
        raise SceneError(f"{path} ({format}): {error}") from None
