"""Training records for candidate grounding and candidate VQA, made from household rooms exactly as
the pipeline asks (backend.pipeline.candidates: the same table text, marked view and prompt).

  candidates: table + marked view + query -> [ids]   (reward: id match)
  candidate-vqa: table + marked view + question -> answer   (reward: exact match)

`write_candidate_records(out, seeds)` renders the rooms (Open3D) and writes OUT/records.jsonl.gz plus
OUT/images/*.png (already at the processor's size), so training runs where Open3D is absent.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.synth.generate import visible_boxes
from ..data.synth.household_language import NAMING_STYLES
from ..data.synth.household_scene import HouseholdConfig, build_household, household_truth
from ..pipeline.candidates import CandidateSource, candidate_prompt, choose_views, draw_marks
from ..pipeline.pipeline import wants_every_instance
from .records import _user, solution

CANDIDATE_TASKS = ("candidates", "candidate-vqa")
RECORDS_FILE = "records.jsonl.gz"


@dataclass(frozen=True)
class CandidateRecordSettings:
    frames: int = 8  # rendered per room to choose the marked view from
    width: int = 256
    height: int = 192
    views: int = 1
    image_side: int = 128  # stored images' longer side (the nano's processor sees about 126x98)


def choose_solution(query: str, ids: list[int], table, same_class: list[int] | None = None, noun: str = "") -> str:
    """Step-by-step reasoning: the rows of the referred class (read from names, or from the view
    when names are generic), then the ones the query picks among them, then the ids."""
    references = ", ".join(table.by_id(i).reference for i in ids)
    steps = ""
    if same_class and noun:
        steps = f"{noun}: " + ", ".join(table.by_id(i).reference for i in same_class) + ". "
    return solution(f"{steps}{query} is {references}.", json.dumps(ids))


def _same_class(room, ids: list[int]) -> tuple[list[int], str]:
    """The ids of every object of the targets' class, and the class's plural."""
    from ..data.synth.household import KINDS

    word = next(o.word for o in room.objects if o.id == ids[0])
    return [o.id for o in room.objects if o.word == word], KINDS[word].plural


def room_records(seed: int, naming: str, settings: CandidateRecordSettings) -> Iterator[dict]:
    """Every record of one household room (images as PIL images)."""
    household = build_household(
        HouseholdConfig(seed=seed, frames=settings.frames, width=settings.width, height=settings.height, naming=naming)
    )
    scene = household.scene
    source = CandidateSource(scene)
    boxes = [visible_boxes(source.id_map(i), 20) for i in range(len(scene))]
    truth = household_truth(household, boxes)
    pixels = source.visible_pixels(range(len(scene)))
    views = choose_views(pixels, settings.views) or [0]
    images = []
    for view in views:
        image = Image.fromarray(draw_marks(scene.frame(view).rgb, source.id_map(view), source.table.ids))
        image.thumbnail((settings.image_side, settings.image_side))
        images.append(image)
    room = f"household-{seed}-{naming}"
    for query in truth["queries"]:
        every = wants_every_instance(query["text"])
        yield {
            "task": "candidates",
            "scene": room,
            "prompt": _user(len(images), candidate_prompt(source.table, query["text"], every)),
            "images": images,
            "ids": query["target_ids"],
            "unique": query["unique"],
            "solution": choose_solution(
                query["text"], query["target_ids"], source.table, *_same_class(household.room, query["target_ids"])
            ),
        }
    for qa in truth["qa"]:
        yield {
            "task": "candidate-vqa",
            "scene": room,
            "prompt": _user(len(images), candidate_prompt(source.table, qa["question"], question=True)),
            "images": images,
            "answers": [qa["answer"]],
            "solution": solution("I read the table and the view.", qa["answer"]),
        }


def write_candidate_records(out, seeds, settings: CandidateRecordSettings = CandidateRecordSettings()) -> int:
    """Rooms of every seed, naming styles alternating: OUT/records.jsonl.gz + OUT/images/. Returns the count."""
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    count = 0
    with gzip.open(out / RECORDS_FILE, "wt", encoding="utf-8") as file:
        for seed in seeds:
            naming = NAMING_STYLES[seed % 2]
            names = []
            for number, record in enumerate(room_records(seed, naming, settings)):
                if number == 0:
                    for view, image in enumerate(record["images"]):
                        name = f"images/{seed}-{naming}-{view}.png"
                        image.save(out / name)
                        names.append(name)
                file.write(json.dumps({k: v for k, v in record.items() if k != "images"} | {"images": names}) + "\n")
                count += 1
    return count


def read_candidate_records(folder) -> list[dict]:
    """Records written by write_candidate_records, images loaded."""
    folder = Path(folder)
    cache: dict[str, Image.Image] = {}
    records = []
    with gzip.open(folder / RECORDS_FILE, "rt", encoding="utf-8") as file:
        lines = file.read().splitlines()
    for line in lines:
        record = json.loads(line)
        record["images"] = [cache.setdefault(n, Image.open(folder / n).convert("RGB")) for n in record["images"]]
        records.append(record)
    return records


def corpus(records: list[dict]) -> list[str]:
    """Text for the tokenizer to learn its merges from."""
    return [r["prompt"][0]["content"][-1]["text"] + " " + r["solution"] for r in records]


def split_seeds(first: int, count: int) -> list[int]:
    return list(np.arange(first, first + count).tolist())
