"""Household scenes: a household room, a camera path, rendered frames with instance maps, and the
capture's candidate table (candidates.json), with ground truth in gt.json (the same format as
`scene-r1 synth`, plus every query's `target_ids` and every object's class and names).

`write_household(HouseholdConfig(seed=3, naming="generic"), out)`; `scene-r1 synth --household`.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ....shared.scene import Scene, SceneError
from ..readers import write_scene
from .config import check_camera, pinhole
from .generate import GT_FILE, RenderSource, seen_in_frames, visible_boxes, visible_spans, write_instance_points
from .household import generate_household
from .household_language import (
    NAMING_STYLES,
    capture_table,
    name_objects,
    question_answers,
    referring_expressions,
    truth_table,
)
from .render import RoomRenderer
from .trajectory import make_trajectory


@dataclass(frozen=True)
class HouseholdConfig:
    seed: int = 0
    frames: int = 30
    width: int = 256
    height: int = 192
    fps: float = 4.0
    trajectory: str = "orbit"
    small_objects: int = 8
    naming: str = "meaningful"  # or "generic" ("Cube.003", "Material.002")
    horizontal_fov_deg: float = 75.0

    def __post_init__(self):
        check_camera(self, "household scene", enough=self.small_objects >= 0)
        if self.naming not in NAMING_STYLES:
            raise SceneError(f"naming must be one of {NAMING_STYLES}, got {self.naming!r}")


@dataclass
class Household:
    config: HouseholdConfig
    room: object
    scene: Scene  # carries the capture's candidate table
    truth: object  # the table with true class words (language is generated from it)


def build_household(config: HouseholdConfig) -> Household:
    rng = np.random.default_rng(config.seed)
    room = generate_household(rng, config.small_objects)
    name_objects(room.objects, config.naming, rng)
    poses = make_trajectory(config.trajectory, room, config.frames, rng)
    intrinsics = pinhole(config)
    scene = Scene(
        RenderSource(RoomRenderer(room), intrinsics, poses),
        np.tile(intrinsics.as_array(), (config.frames, 1)),
        poses,
        np.arange(config.frames) / config.fps,
        (config.width, config.height),
        name=f"household-{config.seed:04d}-{config.naming}",
        format="synthetic",
        candidates=capture_table(room.objects, poses[0]),
    )
    return Household(config, room, scene, truth_table(room.objects, poses[0]))


def household_truth(household: Household, boxes_per_frame: list[dict]) -> dict:
    config, room, scene = household.config, household.room, household.scene
    rng = np.random.default_rng(config.seed + 1_000_003)
    objects = []
    for obj in room.objects:
        objects.append(
            {
                "id": obj.id,
                "name": obj.name,
                "class": obj.word,
                "material": obj.material,
                "colour": obj.colour,
                "support": obj.support,
                "aabb": np.round(obj.aabb, 5).tolist(),
                **seen_in_frames(obj.id, boxes_per_frame),
            }
        )
    visible = {o["id"]: [int(i) for i in o["boxes"]] for o in objects}
    queries = []
    for expression in referring_expressions(room.objects, household.truth, rng):
        frames = sorted({f for t in expression["target_ids"] for f in visible[t]})
        if all(visible[t] for t in expression["target_ids"]):
            queries.append(
                expression
                | {"target_id": expression["target_ids"][0], "spans": visible_spans(frames, scene.timestamps)}
            )
    return {
        "format": "scene-r1-synthetic",
        "version": 2,
        "kind": "household",
        "config": asdict(config),
        "room": {"width": room.width, "depth": room.depth, "height": room.height},
        "fps": config.fps,
        "objects": objects,
        "queries": queries,
        "qa": question_answers(room.objects, household.truth, rng),
    }


def write_household(config: HouseholdConfig, out: Path | str, progress: bool = False) -> dict:
    """Render every frame once: the scene folder, candidates.json, gt.json and gt_instances.npz."""
    out = Path(out)
    household = build_household(config)
    boxes_per_frame: list = []
    min_pixels = max(20, int(1e-4 * config.width * config.height))

    def collect(index: int, frame, instance: np.ndarray) -> None:
        boxes_per_frame.append(visible_boxes(instance, min_pixels))

    write_scene(household.scene, out, rgb_format="png", depth_scale=0.0002, progress=progress, on_frame=collect)
    household.scene.candidates.save(out)
    gt = household_truth(household, boxes_per_frame)
    (out / GT_FILE).write_text(json.dumps(gt, indent=1), encoding="utf-8")
    write_instance_points(household.room.objects, config.seed, out)  # what `label --evaluate` scores against
    return gt
