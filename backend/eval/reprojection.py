"""Checking a lifted 3D mask against boxes drawn by hand in other frames: re-project its points (with
a depth test) and compare the box they cover with the drawn one."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...shared.scene import Scene
from ..geometry.keyframes import view_of

MAX_CENTRE_PX = 60.0  # the raw data has ~20 px colour/depth misregistration
AREA_RATIO = (0.4, 2.5)


@dataclass
class BoxCheck:
    frame: int
    passed: bool
    centre_px: float  # distance between the centres (inf: the mask is not seen in that frame)
    area_ratio: float  # projected box area / drawn box area
    projected: list[float] | None


def projected_box(scene: Scene, index: int, points: np.ndarray) -> np.ndarray | None:
    """[x1, y1, x2, y2] (colour pixels) of the points the frame sees, or None."""
    if len(points) == 0:
        return None
    view = view_of(scene.frame(index), points)
    return None if view is None else view.box


def check_box_projection(scene: Scene, index: int, points: np.ndarray, drawn) -> BoxCheck:
    box = projected_box(scene, index, points)
    if box is None:
        return BoxCheck(index, False, float("inf"), 0.0, None)
    drawn = np.asarray(drawn, float)
    centre = float(np.linalg.norm((box[:2] + box[2:]) / 2 - (drawn[:2] + drawn[2:]) / 2))
    area = float(np.prod(box[2:] - box[:2]) / np.prod(drawn[2:] - drawn[:2]))
    passed = centre <= MAX_CENTRE_PX and AREA_RATIO[0] <= area <= AREA_RATIO[1]
    return BoxCheck(index, passed, centre, area, [round(float(v), 1) for v in box])


def load_boxes(path: Path) -> list[dict]:
    """The objects of a hand-drawn box file (see benchmarks/redkitchen_boxes.json)."""
    return json.loads(Path(path).read_text(encoding="utf-8"))["objects"]
