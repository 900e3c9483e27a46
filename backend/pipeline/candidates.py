"""Candidate grounding: the model chooses among the scene's objects instead of drawing a box.

As in SeeGround (CVPR 2025), the vision-language model reads the object table (ids, names,
classes, colours, materials, sizes, positions, relations) and one or more views with numbered marks
on the candidates, and answers `<think>...</think><answer>[ids]</answer>`. The 3D mask of each
chosen id is the candidate's own: its pixels in the per-frame object-id maps (exact in Blender
captures and synthetic rooms; projected 3D proposals in scans) lifted by multi-view voting.
Used for find, "all the X" (several ids) and ask (the table helps answer).
"""

from __future__ import annotations

import re
import time

import numpy as np
from PIL import Image, ImageDraw

from ...shared.candidates import CandidateTable, is_structure, relate
from ...shared.results import ASK, Instance, QueryResult
from ...shared.scene import Scene, SceneError
from ..geometry.mask3d import mask_to_3d
from ..geometry.upright import turn_image, upright_turns
from ..models.constrained import Number
from ..models.loading import SHIPPED_NANO_CHOOSER, same_folder
from ..models.parsing import ParseError, parse_ids
from ..models.reasoner import PUNCTUATION, THINK_THEN_ANSWER, _clean
from ..models.references import AnswerConstraint, ReferenceConstraint, plural
from .answers import table_answers
from .evidence import absent_class, best_supported, same_class
from .results import masks_to_rle, stage_report
from .shapes import class_labels

GROUNDING_MODES = ("auto", "box", "candidates")
TABLE_INTRO = (
    "The images show a room; each object is marked with its number. The objects, one per line "
    "(id: name; class; colour; material; size in metres; position x,y,z; relations, left and right as seen "
    "in the first image):\n{table}\n"
)
CHOOSE_PROMPT = (
    TABLE_INTRO + 'Which object does "{query}" refer to? ' + THINK_THEN_ANSWER + " The answer is a JSON list of ids, "
    "like [3]."
)
CHOOSE_ALL_PROMPT = (
    TABLE_INTRO + 'Which objects does "{query}" refer to? ' + THINK_THEN_ANSWER + " The answer is a JSON list of "
    "every matching id, like [2, 5]."
)
ASK_PROMPT = TABLE_INTRO + "{question} " + THINK_THEN_ANSWER + " Keep the answer short: a word, a number or a phrase."


EVERY_INSTANCE = re.compile(r"\s*(?:(?:all|every|each)\b(?:\s+of)?\s*)?(?:(?:the|a|an)\b\s*)?(.*?)\s*$", re.I | re.S)


PRONOUNS = frozenset({"them", "these", "those", "it", "they"})


def every_instance_query(query: str) -> str:
    """The query for every instance as the chooser was trained to read it: "mug", "every mug", "each
    of the mugs" -> "all the mugs" (asked "bottle" or "every table", the shipped chooser named one
    object, often of another class). Only a class of up to three plain words is rewritten (plurals
    from inflect, a phrase already plural kept); anything else ("every mug on the table", "Cube.003")
    goes on as typed."""

    words = EVERY_INSTANCE.match(query).group(1).strip(" " + PUNCTUATION).lower().split()
    if not words or len(words) > 3 or not all(w.isalpha() for w in words) or words[-1] in PRONOUNS:
        return query
    return f"all the {plural(' '.join(words))}"


STRUCTURE_WORDS = frozenset({"floor", "floors", "ground", "wall", "walls", "ceiling", "ceilings"})


def offered(table: CandidateTable, query: str) -> CandidateTable:
    """The rows shown to the chooser: room structure (a floor, a wall: candidates.is_structure) only
    when the query names it (a structure word, or a word of its name or class). The shipped chooser
    never saw such rows in training and a floor row derailed its reasoning on every query of a
    Blender room. "The mug on the floor" or "the Plane" keeps it; "how many chairs are in the room?"
    does not need it."""
    structure = [c for c in table.candidates if is_structure(c)]
    if not structure:
        return table
    named = set(STRUCTURE_WORDS)
    for candidate in structure:
        named |= set(re.findall(r"[a-z]+", " ".join([candidate.name, *candidate.classes]).lower()))
    if set(re.findall(r"[a-z]+", query.lower())) & named or len(structure) == len(table.candidates):
        return table
    return relate([c for c in table.candidates if not is_structure(c)], table.view)


def uses_candidates(mode: str, scene: Scene) -> bool:
    """Whether a query on this scene goes the candidate way ("auto": when the scene knows its objects)."""
    if mode not in GROUNDING_MODES:
        raise SceneError(f"grounding must be one of {', '.join(GROUNDING_MODES)}, got {mode!r}")
    return mode == "candidates" or (mode == "auto" and scene.candidates is not None and scene.has_instances)


class CandidateSource:
    """A scene's candidate table and per-frame object-id maps: the capture's own, or 3D proposals."""

    def __init__(self, scene: Scene):
        self.scene = scene
        self.proposals = None
        if scene.candidates is not None and scene.has_instances:
            self.table = scene.candidates
        else:
            from ..geometry.proposals import propose

            self.proposals = propose(scene)
            self.table = self.proposals.table(scene.poses[0])
        self._maps: dict[int, np.ndarray] = {}

    def id_map(self, index: int) -> np.ndarray:
        if index not in self._maps:
            if self.proposals is None:
                self._maps[index] = np.asarray(self.scene.instance(index))
            else:
                self._maps[index] = self.proposals.id_map(self.scene, index)
        return self._maps[index]

    def visible_pixels(self, frames) -> dict[int, dict[int, int]]:
        """frame -> {candidate id: pixels} over the given frames."""
        known = set(self.table.ids)
        out = {}
        for index in frames:
            ids, counts = np.unique(self.id_map(index), return_counts=True)
            out[index] = {int(i): int(c) for i, c in zip(ids, counts) if int(i) in known}
        return out


def choose_views(pixels: dict[int, dict[int, int]], count: int, min_pixels: int = 30) -> list[int]:
    """Frames that together show the most candidates (greedy cover; ties: more pixels, earlier)."""
    chosen, covered = [], set()
    for _ in range(count):
        best = max(
            pixels,
            key=lambda f: (
                len({i for i, c in pixels[f].items() if c >= min_pixels} - covered),
                sum(pixels[f].values()),
                -f,
            ),
            default=None,
        )
        if best is None or best in chosen:
            break
        chosen.append(best)
        covered |= {i for i, c in pixels[best].items() if c >= min_pixels}
    return sorted(chosen)


def draw_marks(rgb: np.ndarray, id_map: np.ndarray, ids, min_pixels: int = 30) -> np.ndarray:
    """The frame with each visible candidate's number drawn at the middle of its largest area."""
    import cv2

    image = Image.fromarray(rgb)
    draw = ImageDraw.Draw(image)
    for identifier in ids:
        mask = (id_map == identifier).astype(np.uint8)
        if mask.sum() < min_pixels:
            continue
        distance = cv2.distanceTransform(np.pad(mask, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
        v, u = np.unravel_index(int(np.argmax(distance)), distance.shape)
        text = str(identifier)
        left, top, right, bottom = draw.textbbox((int(u), int(v)), text, anchor="mm")
        draw.rectangle((left - 2, top - 1, right + 2, bottom + 1), fill=(0, 0, 0))
        draw.text((int(u), int(v)), text, fill=(255, 255, 255), anchor="mm")
    return np.asarray(image)


def candidate_prompt(table: CandidateTable, query: str, every: bool = False, question: bool = False) -> str:
    text = table.to_text()
    if question:
        return ASK_PROMPT.format(table=text, question=_clean(query, question=True))
    return (CHOOSE_ALL_PROMPT if every else CHOOSE_PROMPT).format(table=text, query=_clean(query))


class CandidateGrounder:
    """Asks a Reasoner to choose among a scene's candidates and lifts the chosen ones."""

    def __init__(self, reasoner, views: int = 1, lift_frames: int = 12, vote=None):
        self.reasoner, self.views, self.lift_frames, self.vote = reasoner, views, lift_frames, vote
        self._sources: dict[int, CandidateSource] = {}

    def source(self, scene: Scene) -> CandidateSource:
        key = id(scene)
        if key not in self._sources:
            self._sources = {key: CandidateSource(scene)}  # one scene at a time
        return self._sources[key]

    def _marked_views(self, scene: Scene, source: CandidateSource, ids) -> tuple[list[int], list[np.ndarray], dict]:
        """The views that show the offered candidates (`ids`) best, with their numbers drawn; and every
        candidate's visible pixels per sampled frame."""
        stride = max(1, len(scene) // 12)
        pixels = source.visible_pixels(range(0, len(scene), stride))
        shown = {f: {i: n for i, n in counts.items() if i in ids} for f, counts in pixels.items()}
        views = choose_views(shown, self.views) or [0]
        turns = upright_turns(scene.poses)  # a portrait capture's views shown upright, marks drawn after
        images = [
            draw_marks(turn_image(scene.frame(i).rgb, turns), turn_image(source.id_map(i), turns), ids) for i in views
        ]
        return views, images, pixels

    def ground(self, scene: Scene, query: str, every: bool, result: QueryResult, progress) -> QueryResult:
        start = time.perf_counter()
        source = self.source(scene)
        if not len(source.table):
            raise SceneError("the scene has no candidate objects to choose from")
        table = offered(source.table, query)
        result.timings["candidates"] = time.perf_counter() - start
        progress("choose", 0, 1)
        start = time.perf_counter()
        ids = table.ids
        views, images, pixels = self._marked_views(scene, source, ids)
        asked = every_instance_query(query) if every else query
        labels = class_labels(table)  # a class for "Cube.003" too, guessed from its size
        by_reference = {c.reference: labels[c.id] for c in table.candidates}
        missing = absent_class(table, _clean(asked), labels) if every else None
        if missing:  # "all the beds" in a room without one: none, rather than the model's nearest guess
            result.stages["choose"] = {"ids": [], "candidates": len(table), "absent": missing}
            result.notes.append(f"no {missing} among the scene's {len(table)} objects (by their names and sizes)")
            result.timings["choose"] = time.perf_counter() - start
            progress("choose", 1, 1)
            return result
        generation = self.reasoner.generate(
            candidate_prompt(table, asked, every),
            images=images,
            answer_format=["[", Number(max(ids), low=0), "]"],
            validate=lambda reply: parse_ids(reply.answer, ids),
            constrain=lambda tokenizer, length: ReferenceConstraint(
                tokenizer,
                length,
                [c.reference for c in table.candidates],
                _clean(asked),
                every,
                prefer=lambda rows: best_supported(table, _clean(asked), rows, labels),
                same_class=lambda reference, noun: same_class(by_reference[reference], noun),
                template=same_folder(self.reasoner.settings.model, SHIPPED_NANO_CHOOSER),
            ),
        )
        chosen = parse_ids(generation.reply.answer, ids)
        if not every:
            chosen = chosen[:1]
        result.key_frame = views[0]
        result.stages["choose"] = stage_report(generation) | {
            "ids": chosen,
            "views": views,
            "candidates": len(table),
            "source": "proposals" if source.proposals is not None else "capture",
        }
        result.timings["choose"] = time.perf_counter() - start
        progress("choose", 1, 1)
        start = time.perf_counter()
        result.instances = [self._instance(scene, source, pixels, i) for i in chosen]
        result.stages["lifting"] = {
            "instances": sum(i.mask3d is not None for i in result.instances),
            "points": [int(len(i.mask3d.points)) for i in result.instances if i.mask3d is not None],
        }
        result.timings["lifting"] = time.perf_counter() - start
        return result

    def _instance(self, scene: Scene, source: CandidateSource, pixels: dict, identifier: int) -> Instance:
        """The candidate's own 3D mask: its pixels in the frames that see it most, lifted by voting."""
        candidate = source.table.by_id(identifier)
        seen = sorted(pixels, key=lambda f: pixels[f].get(identifier, 0), reverse=True)
        frames = [f for f in seen if pixels[f].get(identifier, 0) > 0][: self.lift_frames]
        label = candidate.label
        if not frames:
            return Instance(label, [0.0, 0.0, 0.0, 0.0], {}, None, f"candidate {identifier} is seen in no frame")
        masks = {f: source.id_map(f) == identifier for f in frames}
        v, u = np.nonzero(masks[frames[0]])
        box = [float(u.min()), float(v.min()), float(u.max() + 1), float(v.max() + 1)]
        try:
            kwargs = {} if self.vote is None else {"vote": self.vote}
            return Instance(label, box, masks_to_rle(masks), mask_to_3d(scene, masks, **kwargs))
        except SceneError as error:
            return Instance(label, box, masks_to_rle(masks), None, f"lifting: {error}")

    def ask(self, scene: Scene, question: str, result: QueryResult) -> QueryResult:
        start = time.perf_counter()
        source = self.source(scene)
        table = offered(source.table, question)
        views, images, _ = self._marked_views(scene, source, table.ids)
        answers = table_answers(table, question, class_labels(table))
        generation = self.reasoner.generate(
            candidate_prompt(table, question, question=True),
            images=images,
            constrain=(lambda tokenizer, length: AnswerConstraint(tokenizer, length, answers)) if answers else None,
        )
        if not generation.reply.answer:
            raise ParseError(f"the model gave no answer to {question!r}: {generation.reply.text[:200]!r}")
        result.answer = generation.reply.answer
        result.key_frame = views[0]
        result.stages["answer"] = stage_report(generation) | {
            "views": views,
            "candidates": len(table),
            "table_answers": answers,
        }
        result.timings["answer"] = time.perf_counter() - start
        return result


def _grounder(pipeline) -> CandidateGrounder:
    grounder = getattr(pipeline, "_candidate_grounder", None)
    if grounder is None or grounder.reasoner is not pipeline.chooser:
        grounder = CandidateGrounder(pipeline.chooser, views=pipeline.settings.candidate_views, vote=pipeline._vote)
        pipeline._candidate_grounder = grounder
    return grounder


def ground_by_candidates(pipeline, scene: Scene, query: str, every: bool, progress) -> QueryResult:
    """Pipeline.ground's candidate path (the pipeline holds its lock and checked for a cancel)."""
    grounder = _grounder(pipeline)
    result = QueryResult(query=query, scene=scene.name, notes=list(pipeline.notes))
    result.stages["grounding"] = {"mode": "candidates"}
    start, model_start = time.perf_counter(), pipeline.model_seconds()
    grounder.ground(scene, query, every, result, progress)
    if result.instances and not any(i.mask3d is not None for i in result.instances):
        result.notes.append(
            "no chosen candidate could be lifted into 3D: " + "; ".join(i.error for i in result.instances)
        )
    result.timings["total"] = time.perf_counter() - start
    result.timings["model"] = pipeline.model_seconds() - model_start
    return result


def ask_by_candidates(pipeline, scene: Scene, question: str, progress) -> QueryResult:
    grounder = _grounder(pipeline)
    result = QueryResult(query=question, scene=scene.name, mode=ASK, notes=list(pipeline.notes))
    start, model_start = time.perf_counter(), pipeline.model_seconds()
    grounder.ask(scene, question, result)
    result.timings["total"] = time.perf_counter() - start
    result.timings["model"] = pipeline.model_seconds() - model_start
    progress("answer", 1, 1)
    return result
