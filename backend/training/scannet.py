"""Training records from ScanNet scans with ScanRefer / Multi3DRefer expressions and ScanQA answers.

`scene-r1 train --data DIR` streams them when DIR holds the public annotation files
(ScanRefer_filtered_*.json, multi3drefer_*.json, ScanQA_v1.0_*.json) beside the scans (DIR/scans/<scene_id>
or DIR/<scene_id>: SensReader exports with instance-filt/). Visible spans and boxes come from ScanNet's 2D
instance labels only, never from 3D point labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from ..data import open_scene
from ..data.scannet import InstanceLabels, read_multi3drefer, read_scanqa, read_scanrefer
from .records import RecordSettings, image_record, task_list, temporal_record, video_frames, vqa_record

EXPRESSION_FILES = {"ScanRefer_filtered_*.json": read_scanrefer, "multi3drefer_*.json": read_multi3drefer}
ANSWER_FILES = {"ScanQA_v1.0_*.json": read_scanqa}


def annotation_files(data) -> list[Path]:
    data = Path(data)
    return sorted(p for pattern in (*EXPRESSION_FILES, *ANSWER_FILES) for p in data.glob(pattern))


def is_scannet_dataset(data) -> bool:
    """A folder of ScanNet scans with the public language annotations beside them."""
    return Path(data).is_dir() and bool(annotation_files(data))


def _merged(data: Path, readers: dict) -> dict[str, list[dict]]:
    table: dict[str, list[dict]] = {}
    for pattern, read in readers.items():
        for path in sorted(data.glob(pattern)):
            for scene_id, entries in read(path).items():
                table.setdefault(scene_id, []).extend(entries)
    return table


def scannet_dataset_records(data, task: str, settings: RecordSettings = RecordSettings()) -> Iterator[dict]:
    """Every task's records over the dataset folder (see the module's docstring for its layout)."""
    data = Path(data)
    scans = data / "scans" if (data / "scans").is_dir() else data
    expressions, answers = _merged(data, EXPRESSION_FILES), _merged(data, ANSWER_FILES)
    for name in task_list(task):
        if (name == "vqa" and answers) or (name != "vqa" and expressions):
            yield from scannet_records(scans, name, expressions, answers, settings)


def scannet_records(
    scans,
    task: str,
    expressions: dict[str, list[dict]] | None = None,
    answers: dict[str, list[dict]] | None = None,
    settings: RecordSettings = RecordSettings(),
) -> Iterator[dict]:
    """Records for every scan folder under `scans` named in the annotations, one scan at a time."""
    table = answers if task == "vqa" else expressions
    if not table:
        raise ValueError(
            f"the {task} task needs {'ScanQA answers' if task == 'vqa' else 'ScanRefer / Multi3DRefer expressions'}"
        )
    for scene_id in sorted(table):
        scan = Path(scans) / scene_id
        if not scan.is_dir():
            continue
        scene = open_scene(scan, "scannet")
        indices, times = video_frames(scene, settings)
        if task == "vqa":
            for qa in table[scene_id]:
                yield vqa_record(scene, indices, times, qa["question"], qa["answers"], settings, scene_id)
            continue
        labels = InstanceLabels(scan, scene)
        for expression in table[scene_id]:
            target = expression["object_ids"][0] if expression["object_ids"] else None
            if target is None:
                continue
            name = expression["name"] or "object"
            if task == "temporal":
                spans = labels.spans(target)
                if spans:
                    yield temporal_record(scene, indices, times, expression["text"], spans, name, settings, scene_id)
            elif task == "image":
                view = labels.best_view(target)
                if view is not None:
                    yield image_record(scene, view[0], expression["text"], view[1], name, settings, scene_id)
