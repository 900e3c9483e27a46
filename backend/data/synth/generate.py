"""Synthetic RGB-D scenes with exact ground truth: the test bed, demo and training data source.

`write_synthetic(SynthConfig(seed=3), out)` writes a canonical scene folder (readable by
open_scene) plus gt.json (objects with 3D boxes and per-frame 2D boxes, referring expressions
with the time spans where their target is visible, question/answer pairs) and
gt_instances.npz (surface points of every instance).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import open3d as o3d

from ....shared.camera import Intrinsics
from ....shared.scene import Scene, SceneError
from ..readers import write_scene
from .config import SynthConfig, pinhole
from .language import question_answers, referring_expressions
from .layout import Room, generate_room
from .render import RoomRenderer
from .trajectory import make_trajectory

GT_FILE, GT_POINTS_FILE = "gt.json", "gt_instances.npz"
SYNTHETIC_DEPTH_SCALE = 0.0002


class RenderSource:
    """Frames rendered on demand (one frame's images kept, since rgb/depth/instance come together)."""

    has_instances = True

    def __init__(self, renderer: RoomRenderer, intrinsics: Intrinsics, poses: np.ndarray):
        self.renderer, self.intrinsics, self.poses = renderer, intrinsics, poses
        self._last: tuple[int, tuple] | None = None

    def __len__(self) -> int:
        return len(self.poses)

    def _render(self, index: int):
        if self._last is None or self._last[0] != index:
            self._last = (index, self.renderer.render(self.intrinsics, self.poses[index]))
        return self._last[1]

    def load_rgb(self, index: int) -> np.ndarray:
        return self._render(index)[0]

    def load_depth(self, index: int) -> np.ndarray:
        return self._render(index)[1]

    def load_instance(self, index: int) -> np.ndarray:
        return self._render(index)[2]


@dataclass
class SyntheticScene:
    config: SynthConfig
    room: Room
    renderer: RoomRenderer
    scene: Scene


def build_synthetic(config: SynthConfig) -> SyntheticScene:
    """Lay out a room and a camera path for a seed; frames render lazily through the Scene."""
    rng = np.random.default_rng(config.seed)
    room = generate_room(rng, config.objects)
    poses = make_trajectory(config.trajectory, room, config.frames, rng)
    intrinsics = pinhole(config)
    renderer = RoomRenderer(room)
    scene = Scene(
        RenderSource(renderer, intrinsics, poses),
        np.tile(intrinsics.as_array(), (config.frames, 1)),
        poses,
        np.arange(config.frames) / config.fps,
        (config.width, config.height),
        name=f"synthetic-{config.seed:04d}",
        format="synthetic",
    )
    return SyntheticScene(config, room, renderer, scene)


def visible_boxes(instance: np.ndarray, min_pixels: int) -> dict[int, tuple[list[int], int]]:
    """Per instance id (not 0): ([x1, y1, x2, y2] pixel edges, x2/y2 exclusive; pixel count)."""
    ids, counts = np.unique(instance, return_counts=True)
    boxes = {}
    for object_id, count in zip(ids, counts):
        if object_id == 0 or count < min_pixels:
            continue
        v, u = np.nonzero(instance == object_id)
        boxes[int(object_id)] = ([int(u.min()), int(v.min()), int(u.max()) + 1, int(v.max()) + 1], int(count))
    return boxes


def seen_in_frames(identifier: int, boxes_per_frame: list[dict]) -> dict:
    """An object's 2D box and pixel count in each frame that sees it (ground truth's "boxes", "pixels")."""
    seen = {i: b for i, frame in enumerate(boxes_per_frame) if (b := frame.get(identifier))}
    return {"boxes": {str(i): b[0] for i, b in seen.items()}, "pixels": {str(i): b[1] for i, b in seen.items()}}


def visible_spans(frames: list[int], timestamps: np.ndarray) -> list[list[float]]:
    """Runs of consecutive visible frames as [start, end] seconds."""
    spans = []
    for i in sorted(frames):
        if spans and i == spans[-1][1] + 1:
            spans[-1][1] = i
        else:
            spans.append([i, i])
    return [[round(float(timestamps[a]), 4), round(float(timestamps[b]), 4)] for a, b in spans]


def ground_truth(synthetic: SyntheticScene, boxes_per_frame: list[dict[int, tuple[list[int], int]]]) -> dict:
    config, room, scene = synthetic.config, synthetic.room, synthetic.scene
    rng = np.random.default_rng(config.seed + 1_000_003)  # language draws, apart from the layout's
    objects = []
    for obj in room.objects:
        objects.append(
            {
                "id": obj.id,
                "name": obj.name,
                "shape": obj.shape,
                "colour": obj.colour,
                "size": obj.size,
                "category": "furniture" if obj.is_furniture else "object",
                "support": obj.support,
                "aabb": np.round(obj.aabb, 5).tolist(),
                **seen_in_frames(obj.id, boxes_per_frame),
            }
        )
    visible_frames = {o["id"]: [int(i) for i in o["boxes"]] for o in objects}
    queries = []
    for expression in referring_expressions(room, scene.poses[0], rng):
        frames = visible_frames[expression.target_id]
        if frames:  # an object the camera never sees cannot be grounded in the video
            queries.append(
                {
                    "text": expression.text,
                    "target_id": expression.target_id,
                    "spans": visible_spans(frames, scene.timestamps),
                    "kind": expression.kind,
                    "unique": expression.unique,
                }
            )
    return {
        "format": "scene-r1-synthetic",
        "version": 1,
        "config": asdict(config),
        "room": {"width": room.width, "depth": room.depth, "height": room.height},
        "fps": config.fps,
        "objects": objects,
        "queries": queries,
        "qa": question_answers(room, scene.poses[0], rng),
    }


def instance_points(objects, seed: int, per_object: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """Points sampled uniformly on every instance's surface (objects with .id and .mesh), with their
    instance ids: what the labelling evaluator matches scan vertices against."""
    o3d.utility.random.seed(seed)
    points, ids = [], []
    for obj in objects:
        cloud = obj.mesh.sample_points_uniformly(number_of_points=per_object)
        points.append(np.asarray(cloud.points, dtype=np.float32))
        ids.append(np.full(len(cloud.points), obj.id, dtype=np.int32))
    return np.concatenate(points), np.concatenate(ids)


def write_instance_points(objects, seed: int, out: Path, per_object: int = 2000) -> None:
    points, ids = instance_points(objects, seed, per_object)
    np.savez_compressed(out / GT_POINTS_FILE, points=points, instance_ids=ids)


def write_synthetic(config: SynthConfig, out: Path | str, progress: bool = False) -> dict:
    """Render every frame once, writing the scene folder and collecting ground truth as it goes."""
    out = Path(out)
    synthetic = build_synthetic(config)
    boxes_per_frame: list = []

    def collect(index: int, frame, instance: np.ndarray) -> None:
        boxes_per_frame.append(visible_boxes(instance, config.min_visible_pixels))

    # PNG colour (no JPEG artefacts in ground truth) and 0.2 mm depth units (rooms stay < 13 m).
    write_scene(
        synthetic.scene, out, rgb_format="png", depth_scale=SYNTHETIC_DEPTH_SCALE, progress=progress, on_frame=collect
    )
    gt = ground_truth(synthetic, boxes_per_frame)
    (out / GT_FILE).write_text(json.dumps(gt, indent=1), encoding="utf-8")
    write_instance_points(synthetic.room.objects, config.seed, out, config.points_per_object)
    return gt


def load_ground_truth(folder: Path | str) -> dict:
    path = Path(folder) / GT_FILE
    if not path.is_file():
        raise SceneError(f"{folder} has no {GT_FILE} (only synthetic scenes carry ground truth)")
    return json.loads(path.read_text(encoding="utf-8"))
