"""Training records from ScanNet scans with the public language annotations, in their real formats.

- ScanRefer (ScanRefer_filtered_{train,val}.json): a JSON list of
  {"scene_id", "object_id" (str), "object_name", "ann_id", "description", "token": [...]}.
- Multi3DRefer (multi3drefer_{train,val}.json): {"scene_id", "object_ids": [int], "description",
  "eval_type": "zt_wo_d" | "zt_w_d" | "st_wo_d" | "st_w_d" | "mt", "ann_id"}.
- ScanQA (ScanQA_v1.0_{train,val}.json): {"scene_id", "question_id", "question", "answers": [...],
  "object_ids": [int], "object_names": [...]}.

A scan is the SensReader export (color/ depth/ pose/ intrinsic/) plus ScanNet's 2D instance
labels `instance-filt/<frame>.png` (from scene*_2d-instance-filt.zip; pixel value = object_id + 1,
0 = none). Where and when an object is seen comes only from those 2D labels: its visible time
spans and its 2D box on the frame where it covers most pixels. Never 3D point labels.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np

from .images import read_label_png

SCANNET_FPS = 30.0


def _load_list(path) -> list[dict]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a JSON list of annotations")
    return data


def read_scanrefer(path) -> dict[str, list[dict]]:
    """scene_id -> [{"object_ids": [id], "text", "name", "unique": None}] (ScanRefer's split is computed later)."""
    by_scene = defaultdict(list)
    for entry in _load_list(path):
        by_scene[entry["scene_id"]].append(
            {
                "object_ids": [int(entry["object_id"])],
                "text": entry["description"].strip(),
                "name": entry.get("object_name", "").replace("_", " "),
                "ann_id": str(entry.get("ann_id", "")),
            }
        )
    return dict(by_scene)


def read_multi3drefer(path) -> dict[str, list[dict]]:
    by_scene = defaultdict(list)
    for entry in _load_list(path):
        by_scene[entry["scene_id"]].append(
            {
                "object_ids": [int(i) for i in entry["object_ids"]],
                "text": entry["description"].strip(),
                "name": "",
                "eval_type": entry.get("eval_type", ""),
                "ann_id": str(entry.get("ann_id", "")),
            }
        )
    return dict(by_scene)


def read_scanqa(path) -> dict[str, list[dict]]:
    by_scene = defaultdict(list)
    for entry in _load_list(path):
        by_scene[entry["scene_id"]].append(
            {
                "question": entry["question"].strip(),
                "answers": list(entry.get("answers", [])),
                "object_ids": [int(i) for i in entry.get("object_ids", [])],
                "question_id": entry.get("question_id"),
            }
        )
    return dict(by_scene)


class InstanceLabels:
    """ScanNet's per-frame 2D instance labels for one scan, read one frame at a time."""

    def __init__(self, scan: Path, scene, min_pixels: int = 50):
        self.folder = scan / "instance-filt"
        if not self.folder.is_dir():
            raise FileNotFoundError(f"{self.folder} is missing: unzip scene*_2d-instance-filt.zip into the scan folder")
        self.scene, self.min_pixels = scene, min_pixels
        self.numbers = [int(round(t * SCANNET_FPS)) for t in scene.timestamps]
        self._boxes: dict[int, dict[int, tuple[list[float], int]]] = {}

    def boxes(self, index: int) -> dict[int, tuple[list[float], int]]:
        """object_id -> (box in colour pixels, pixel count) on frame `index`."""
        if index not in self._boxes:
            labels = read_label_png(self.folder / f"{self.numbers[index]}.png")
            if labels.ndim == 3:
                labels = labels[..., 0]
            width, height = self.scene.intrinsics_at(index).size
            sx, sy = width / labels.shape[1], height / labels.shape[0]
            found = {}
            for value in np.unique(labels[labels > 0]):
                ys, xs = np.nonzero(labels == value)
                if len(xs) >= self.min_pixels:
                    found[int(value) - 1] = (
                        [
                            float(xs.min() * sx),
                            float(ys.min() * sy),
                            float((xs.max() + 1) * sx),
                            float((ys.max() + 1) * sy),
                        ],
                        len(xs),
                    )
            self._boxes[index] = found
        return self._boxes[index]

    def spans(self, object_id: int) -> list[list[float]]:
        """Time spans (seconds) in which the object is visible."""
        times = self.scene.timestamps - self.scene.timestamps[0]
        visible = [i for i in range(len(self.scene)) if object_id in self.boxes(i)]
        spans = []
        for i in visible:
            if spans and spans[-1][2] == i - 1:
                spans[-1][1], spans[-1][2] = float(times[i]), i
            else:
                spans.append([float(times[i]), float(times[i]), i])
        return [[a, b] for a, b, _ in spans]

    def best_view(self, object_id: int) -> tuple[int, list[float]] | None:
        seen = [(self.boxes(i)[object_id][1], i) for i in range(len(self.scene)) if object_id in self.boxes(i)]
        if not seen:
            return None
        index = max(seen)[1]
        return index, self.boxes(index)[object_id][0]
