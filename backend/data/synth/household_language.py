"""Names, candidate tables, referring expressions and questions for household rooms.

Names are as artists leave them: meaningful ("Coffee_Mug.001" with material "Red_Ceramic") or
generic ("Cylinder.003" with "Material.002"). The candidate table a capture of the room carries
holds what Blender knows (names, materials, base colours as words, boxes), and its class words are
read from the names, so generic rooms have none. Expressions and answers come from the true
classes and the same relation rules the table uses (shared.candidates), so a model reading the
table can find every referred object. Left/right are as seen from the key view (the first frame).
"""

from __future__ import annotations

import numpy as np

from ....shared.candidates import SUPERLATIVES, Candidate, CandidateTable, class_words, colour_word, relate
from .household import KINDS, PALETTE, HouseObject

NAMING_STYLES = ("meaningful", "generic")


def name_objects(objects: list[HouseObject], style: str, rng: np.random.Generator) -> None:
    """Give every object a name and a material name in one naming style."""
    if style not in NAMING_STYLES:
        raise ValueError(f"naming style must be one of {NAMING_STYLES}, got {style!r}")
    counts: dict[str, int] = {}
    for number, obj in enumerate(objects, start=1):
        kind = KINDS[obj.word]
        if style == "generic":
            base = kind.primitive
            counts[base] = counts.get(base, 0) + 1
            obj.name = base if counts[base] == 1 else f"{base}.{counts[base] - 1:03d}"
            obj.material = "Material" if number == 1 else f"Material.{number - 1:03d}"
            continue
        synonym = str(rng.choice(kind.synonyms))
        words = synonym.split()
        base = "_".join(w.capitalize() for w in words) if rng.random() < 0.7 else "".join(w.capitalize() for w in words)
        counts[base] = counts.get(base, 0) + 1
        obj.name = base if counts[base] == 1 else f"{base}.{counts[base] - 1:03d}"
        obj.material = f"{obj.colour.capitalize()}_{rng.choice(kind.materials)}"


def capture_table(objects: list[HouseObject], view: np.ndarray | None) -> CandidateTable:
    """The candidate table a Blender capture of the room carries (names, materials, colours, boxes)."""
    candidates = [
        Candidate(
            o.id,
            o.name,
            class_words(o.name),
            (o.material,),
            colour_word(PALETTE[o.colour]),
            tuple(tuple(float(v) for v in corner) for corner in o.aabb),
        )
        for o in objects
    ]
    return relate(candidates, view)


def truth_table(objects: list[HouseObject], view: np.ndarray | None) -> CandidateTable:
    """The same geometry with the true class words (what the expressions are generated from)."""
    candidates = [
        Candidate(o.id, o.word, (o.word,), (), o.colour, tuple(tuple(float(v) for v in c) for c in o.aabb))
        for o in objects
    ]
    return relate(candidates, view)


def _relation_map(table: CandidateTable) -> dict[int, list[tuple[str, tuple[int, ...]]]]:
    """Per id: its (relation word, anchor ids) facts."""
    found: dict[int, list[tuple[str, tuple[int, ...]]]] = {}
    for subject, word, anchors in table.facts:
        found.setdefault(subject, []).append((word, anchors))
    return found


def referring_expressions(objects: list[HouseObject], table: CandidateTable, rng: np.random.Generator) -> list[dict]:
    """Expressions with attributes only or with one relation, each naming exactly its targets;
    plus "all the X" for classes with several members."""
    by_id = {o.id: o for o in objects}
    relations = _relation_map(table)

    def noun(obj):
        return str(rng.choice(KINDS[obj.word].synonyms))

    def anchor_phrase(obj):
        same = [o for o in objects if o.word == obj.word and o is not obj]
        if not same:
            return f"the {noun(obj)}"
        if not any(o.colour == obj.colour for o in same):
            return f"the {obj.colour} {noun(obj)}"
        return None

    expressions = []
    for target in objects:
        same = [o for o in objects if o.word == target.word and o is not target]
        unique = not same
        found = []
        if unique:
            found.append((f"the {noun(target)}", "attribute"))
        elif not any(o.colour == target.colour for o in same):
            found.append((f"the {target.colour} {noun(target)}", "attribute"))
        for word, anchors in relations.get(target.id, []):
            holds_for_other = any((word, anchors) in relations.get(o.id, []) for o in same)
            if word in SUPERLATIVES:
                found.append((f"the {word} {noun(target)}", "attribute"))
                continue
            if holds_for_other or any(a not in by_id for a in anchors):
                continue
            phrases = [anchor_phrase(by_id[a]) for a in anchors]
            if any(p is None for p in phrases):
                continue
            text = f"the {noun(target)} {word} " + " and ".join(phrases)
            found.append((text, "relation"))
        order = rng.permutation(len(found))
        for i in order[:3]:
            text, kind = found[i]
            expressions.append({"text": text, "target_ids": [target.id], "kind": kind, "unique": unique})
    for word in sorted({o.word for o in objects}):
        members = [o.id for o in objects if o.word == word]
        if len(members) >= 2:
            text = f"all the {KINDS[word].plural}"
            expressions.append({"text": text, "target_ids": members, "kind": "all", "unique": False})
    return expressions


def question_answers(objects: list[HouseObject], table: CandidateTable, rng: np.random.Generator) -> list[dict]:
    """count, colour, class ("shape"), relation and exists questions with one-word answers."""
    qa = []
    words = sorted({o.word for o in objects})
    for word in words:
        qa.append(("count", f"How many {KINDS[word].plural} are there?", str(sum(o.word == word for o in objects))))
    for obj in objects:
        same = [o for o in objects if o.word == obj.word and o is not obj]
        if not same:
            qa.append(("colour", f"What colour is the {rng.choice(KINDS[obj.word].synonyms)}?", obj.colour))
        if not any(o.colour == obj.colour for o in objects if o is not obj):
            qa.append(("shape", f"What is the {obj.colour} object?", obj.word))
    absent = [w for w in KINDS if w not in words]
    for word in list(rng.choice(absent, size=min(2, len(absent)), replace=False)) + list(words[:2]):
        answer = "yes" if word in words else "no"
        qa.append(("exists", f"Is there a {rng.choice(KINDS[word].synonyms)} in the room?", answer))
    relations = _relation_map(table)
    by_id = {o.id: o for o in objects}
    for obj in objects:
        on_top = [by_id[anchors[0]] for word, anchors in relations.get(obj.id, []) if word == "under"]
        if len(on_top) == 1 and len([o for o in objects if o.word == obj.word]) == 1:
            qa.append(("relation", f"What is on the {obj.word}?", on_top[0].word))
    order = rng.permutation(len(qa))[:24]
    return [{"question": qa[i][1], "answer": qa[i][2], "kind": qa[i][0]} for i in sorted(order)]
