"""Referring expressions and question/answer pairs for a procedural room, from its ground truth.

Every expression names exactly one object. "Left" and "right" are as seen from where the video
starts (the first frame's camera), the way a person describing a room from its door would use
them; other relations ("on the table", "closest to") do not depend on the viewpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from ....shared.geometry import invert_pose, transform_points
from .layout import COLOURS, Room, SceneObject

PLURALS = {
    "cube": "cubes",
    "sphere": "spheres",
    "cylinder": "cylinders",
    "cone": "cones",
    "torus": "tori",
    "table": "tables",
    "cabinet": "cabinets",
}
LEFT_RIGHT_MARGIN = 0.15  # metres along the first camera's x axis
CLOSEST_MARGIN = 0.3  # metres by which the target must be closer than any distractor
ATTRIBUTE_SETS = (("shape",), ("colour", "shape"), ("size", "shape"), ("size", "colour", "shape"))


@dataclass(frozen=True)
class Expression:
    text: str
    target_id: int
    kind: str  # "attribute" or "relation"
    unique: bool  # ScanRefer's split: the target is the only object of its class (shape)


def phrase(obj: SceneObject, attributes: tuple[str, ...]) -> str:
    return " ".join(getattr(obj, a) for a in ("size", "colour", "shape") if a in attributes and getattr(obj, a))


def _matches(obj: SceneObject, other: SceneObject, attributes: tuple[str, ...]) -> bool:
    return all(getattr(obj, a) == getattr(other, a) for a in attributes)


def unique_phrase(obj: SceneObject, objects: list[SceneObject], exclude: tuple[str, ...] = ()) -> str | None:
    """The shortest attribute phrase that only `obj` fits, or None."""
    for attributes in ATTRIBUTE_SETS:
        if any(a in exclude for a in attributes) or (obj.is_furniture and "size" in attributes):
            continue
        if not any(o is not obj and _matches(obj, o, attributes) for o in objects):
            return phrase(obj, attributes)
    return None


class RelationFacts:
    """Spatial facts about a room's objects: first-view left/right, support, distances."""

    def __init__(self, room: Room, first_pose: np.ndarray):
        self.room = room
        centres = np.array([o.center for o in room.objects])
        self.view_x = {o.id: x for o, x in zip(room.objects, transform_points(invert_pose(first_pose), centres)[:, 0])}

    def left_of(self, a: SceneObject, b: SceneObject) -> bool:
        return self.view_x[a.id] < self.view_x[b.id] - LEFT_RIGHT_MARGIN

    def right_of(self, a: SceneObject, b: SceneObject) -> bool:
        return self.view_x[a.id] > self.view_x[b.id] + LEFT_RIGHT_MARGIN

    @staticmethod
    def distance(a: SceneObject, b: SceneObject) -> float:
        return float(np.linalg.norm(a.center[:2] - b.center[:2]))


def referring_expressions(
    room: Room, first_pose: np.ndarray, rng: np.random.Generator, per_object: int = 2
) -> list[Expression]:
    objects, facts = room.objects, RelationFacts(room, first_pose)
    anchors = {o.id: p for o in objects if (p := unique_phrase(o, objects))}
    expressions = []
    for target in objects:
        same_class = [o for o in objects if o is not target and o.shape == target.shape]
        unique = not same_class
        found = []
        attribute = unique_phrase(target, objects)
        if attribute:
            found.append(Expression(f"the {attribute}", target.id, "attribute", unique))
        base_attributes = ("shape",) if target.is_furniture else ("colour", "shape")
        base = phrase(target, base_attributes)
        distractors = [o for o in objects if o is not target and _matches(target, o, base_attributes)]
        relations = []
        if target.support:
            table = room.by_id(target.support)
            if table.id in anchors and not any(o.support == table.id for o in distractors):
                relations.append(f"the {base} on the {anchors[table.id]}")
        for anchor in objects:
            if anchor is target or anchor.id not in anchors or _matches(target, anchor, base_attributes):
                continue
            name = anchors[anchor.id]
            for word, holds in (("left of", facts.left_of), ("right of", facts.right_of)):
                if holds(target, anchor) and not any(holds(o, anchor) for o in distractors):
                    relations.append(f"the {base} {word} the {name}")
            gap = min((facts.distance(o, anchor) for o in distractors), default=np.inf) - facts.distance(target, anchor)
            if distractors and gap > CLOSEST_MARGIN:
                relations.append(f"the {base} closest to the {name}")
        order = rng.permutation(len(relations))
        found += [
            Expression(relations[i], target.id, "relation", unique) for i in order[: max(per_object - len(found), 1)]
        ]
        expressions += found[:per_object]
    return expressions


def question_answers(room: Room, first_pose: np.ndarray, rng: np.random.Generator, limit: int = 24) -> list[dict]:
    """Colour, count, shape, relation and existence questions with one-word answers."""
    objects, facts = room.objects, RelationFacts(room, first_pose)
    small = [o for o in objects if not o.is_furniture]
    qa = []
    for shape in sorted({o.shape for o in objects}):
        qa.append(("count", f"How many {PLURALS[shape]} are there?", str(sum(o.shape == shape for o in objects))))
    for colour in sorted({o.colour for o in small}):
        qa.append(("count", f"How many {colour} objects are there?", str(sum(o.colour == colour for o in small))))
    for obj in small:
        without_colour = unique_phrase(obj, objects, exclude=("colour",))
        if without_colour:
            qa.append(("colour", f"What colour is the {without_colour}?", obj.colour))
        without_shape = None
        for attributes in (("colour",), ("size", "colour")):
            if not any(o is not obj and _matches(obj, o, attributes) for o in small):
                without_shape = phrase(obj, attributes)
                break
        if without_shape:
            qa.append(("shape", f"What shape is the {without_shape} object?", obj.shape))
    named = [(o, p) for o in small if (p := unique_phrase(o, objects))]
    for (a, name_a), (b, name_b) in permutations(named, 2):
        if facts.left_of(a, b) or facts.right_of(a, b):
            qa.append(("relation", f"Is the {name_a} left of the {name_b}?", "yes" if facts.left_of(a, b) else "no"))
    present = {(o.colour, o.shape) for o in small}
    shapes = sorted({o.shape for o in small})
    for colour in sorted(COLOURS):
        for shape in shapes:
            qa.append(("exists", f"Is there a {colour} {shape}?", "yes" if (colour, shape) in present else "no"))
    # Keep every kind represented, then fill up to the limit at random.
    order = list(rng.permutation(len(qa)))
    chosen, kinds_seen = [], set()
    for i in order:
        if qa[i][0] not in kinds_seen:
            chosen.append(i)
            kinds_seen.add(qa[i][0])
    chosen += [i for i in order if i not in chosen][: max(limit - len(chosen), 0)]
    return [{"question": qa[i][1], "answer": qa[i][2], "kind": qa[i][0]} for i in sorted(chosen)]
