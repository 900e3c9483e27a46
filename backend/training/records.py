"""Training records for the three tasks, streamed from scene folders.

  temporal: frames (with their times) + query -> span in seconds
  image:    one frame + query -> 2D box
  vqa:      frames + question -> answer

Sources: synthetic scenes (`scene-r1 synth`: gt.json beside the frames) and ScanNet scans with
ScanRefer / Multi3DRefer expressions and ScanQA answers (scannet.py). Labels are 2D boxes, time
spans and text only, never 3D points. Records are produced one at a time; `as_dataset` writes
them through Hugging Face datasets' Arrow cache, so thousands of scans never sit in memory.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import numpy as np
from PIL import Image

from ...shared.scene import Scene
from ..data import open_scene
from ..models.reasoner import IMAGE_PROMPT, TEMPORAL_PROMPT, VQA_PROMPT, frames_preamble, sample_times

TASKS = ("temporal", "image", "vqa")


@dataclass(frozen=True)
class RecordSettings:
    video_frames: int = 8  # frames shown for temporal grounding and VQA
    max_pixels: int = 56 * 56 * 4  # the processor's per-image budget (decides model_size)
    min_pixels: int = 28 * 28 * 4
    patch: int = 28  # Qwen2.5-VL: 14-pixel patches merged 2x2
    convention: str = "resized-pixels"
    image_side: int = 0  # downscale frames so their longer side is at most this (0: keep)
    image_views: int = 1  # image task: frames per query, the best-seen first (more views, more boxes to learn from)


def model_input_size(width: int, height: int, settings: RecordSettings) -> tuple[int, int]:
    """The (width, height) the Qwen processor resizes a frame to (its smart_resize)."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    resized_h, resized_w = smart_resize(
        height, width, factor=settings.patch, min_pixels=settings.min_pixels, max_pixels=settings.max_pixels
    )
    return resized_w, resized_h


def _user(images: int, text: str) -> list:
    return [{"role": "user", "content": [{"type": "image"} for _ in range(images)] + [{"type": "text", "text": text}]}]


def _image(rgb: np.ndarray, side: int) -> Image.Image:
    image = Image.fromarray(rgb)
    if side and max(image.size) > side:
        image.thumbnail((side, side))
    return image


def solution(think: str, answer: str) -> str:
    """The target completion for the SFT warm start."""
    return f"<think>{think}</think><answer>{answer}</answer>"


def video_frames(scene: Scene, settings: RecordSettings) -> tuple[list[int], list[float]]:
    indices = sample_times(scene, settings.video_frames)
    times = [round(float(scene.timestamps[i] - scene.timestamps[indices[0]]), 3) for i in indices]
    return indices, times


def temporal_record(
    scene, indices, times, query: str, spans, target: str, settings: RecordSettings, scene_id: str
) -> dict:
    duration = times[-1]
    fps = (len(times) - 1) / max(duration, 1e-3)
    prompt = frames_preamble(times) + TEMPORAL_PROMPT.format(fps=fps, duration=duration, query=query)
    start, end = spans[0]
    return {
        "task": "temporal",
        "scene": scene_id,
        "prompt": _user(len(indices), prompt),
        "images": [_image(scene.frame(i).rgb, settings.image_side) for i in indices],
        "spans": [[float(a), float(b)] for a, b in spans],
        "duration": float(duration),
        "solution": solution(f"The {target} is in view from {start:g}s to {end:g}s.", f"{start:g}s to {end:g}s"),
    }


def image_record(scene, index: int, query: str, box, target: str, settings: RecordSettings, scene_id: str) -> dict:
    image = _image(scene.frame(index).rgb, settings.image_side)
    scale = image.size[0] / scene.intrinsics_at(index).width
    box = [float(v) * scale for v in box]
    model_size = model_input_size(*image.size, settings)
    model_box = [
        round(box[0] * model_size[0] / image.size[0]),
        round(box[1] * model_size[1] / image.size[1]),
        round(box[2] * model_size[0] / image.size[0]),
        round(box[3] * model_size[1] / image.size[1]),
    ]
    coordinates = (
        " in pixels of this image" if settings.convention == "resized-pixels" else " with coordinates from 0 to 1000"
    )
    return {
        "task": "image",
        "scene": scene_id,
        "prompt": _user(1, IMAGE_PROMPT.format(query=query, coordinates=coordinates)),
        "images": [image],
        "box": box,
        "frame_size": list(image.size),
        "model_size": list(model_size),
        "convention": settings.convention,
        "solution": solution(f'"{query}" refers to the {target}.', json.dumps({"bbox_2d": model_box, "label": target})),
    }


def vqa_record(scene, indices, times, question: str, answers, settings: RecordSettings, scene_id: str) -> dict:
    return {
        "task": "vqa",
        "scene": scene_id,
        "prompt": _user(len(indices), frames_preamble(times) + VQA_PROMPT.format(question=question)),
        "images": [_image(scene.frame(i).rgb, settings.image_side) for i in indices],
        "answers": list(answers),
        "solution": solution("I look at the frames and answer.", answers[0]),
    }


def synthetic_records(folder, task: str, settings: RecordSettings = RecordSettings()) -> Iterator[dict]:
    """Records from one synthetic scene folder (gt.json from `scene-r1 synth`)."""
    folder = Path(folder)
    truth = json.loads((folder / "gt.json").read_text(encoding="utf-8"))
    scene = open_scene(folder)
    objects = {o["id"]: o for o in truth["objects"]}
    indices, times = video_frames(scene, settings)
    scene_id = folder.name
    if task == "vqa":
        for qa in truth["qa"]:
            yield vqa_record(scene, indices, times, qa["question"], [qa["answer"]], settings, scene_id)
        return
    for query in truth["queries"]:
        target = objects[query["target_id"]]
        if task == "temporal":
            yield temporal_record(
                scene, indices, times, query["text"], query["spans"], target["name"], settings, scene_id
            )
        elif task == "image":
            best_seen = sorted(target["pixels"], key=target["pixels"].get, reverse=True)[: settings.image_views]
            for frame in best_seen:
                yield image_record(
                    scene, int(frame), query["text"], target["boxes"][frame], target["name"], settings, scene_id
                )
        else:
            raise ValueError(f"task must be one of {TASKS}, got {task!r}")


def scene_folders(data) -> list[Path]:
    """Every scene folder under DATA (a folder holding gt.json, or ScanNet scans)."""
    data = Path(data)
    if (data / "gt.json").exists():
        return [data]
    found = sorted(p.parent for p in data.glob("*/gt.json"))
    if not found:
        raise FileNotFoundError(f"no scene folders (with gt.json) under {data}; make some with `scene-r1 synth`")
    return found


# Every task's label columns, so records of several tasks share one Arrow schema (None where absent).
LABEL_COLUMNS = ("spans", "duration", "box", "frame_size", "model_size", "convention", "answers")


def task_list(task: str) -> tuple[str, ...]:
    """ "image" -> ("image",); "temporal,vqa" -> both; "all" -> the three tasks."""
    tasks = TASKS if task == "all" else tuple(t.strip() for t in task.split(",") if t.strip())
    unknown = [t for t in tasks if t not in TASKS]
    if not tasks or unknown:
        raise ValueError(f"task must be one of {TASKS}, a comma-separated list of them, or 'all'; got {task!r}")
    return tasks


def records(data, task: str, settings: RecordSettings = RecordSettings()) -> Iterator[dict]:
    """One task's records, or for several tasks ("all", "image,vqa") their records interleaved
    scene by scene (one model trained on the mix keeps every task; trained in turns it forgets)."""
    tasks = task_list(task)
    for folder in scene_folders(data):
        if len(tasks) == 1:
            yield from synthetic_records(folder, tasks[0], settings)
            continue
        streams = [synthetic_records(folder, t, settings) for t in tasks]
        for group in zip_longest(*streams):
            for record in group:
                if record is not None:
                    yield dict.fromkeys(LABEL_COLUMNS) | record
