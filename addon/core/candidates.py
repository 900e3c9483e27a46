"""A Blender-native capture's objects as the candidate table the backend chooses among (issue 18).

The capture knows every pixel's object exactly (its object-index maps: 0 = nothing, k = the k-th
captured object), so the table's ids are those indices: a candidate answer's ids name the Blender
objects directly. What the add-on knows of each object (name, material names, base colour,
world-space bound-box corners) becomes a row through shared.candidates.candidate_from_object;
relations come from shared.candidates.relate, seen from the capture's first view. Pure numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...shared.candidates import CandidateTable, candidate_from_object, relate


@dataclass(frozen=True)
class ObjectFacts:
    """What the add-on reads off one captured object (bpy side: addon/capture.py)."""

    name: str
    corners: np.ndarray  # (8, 3) world-space bound-box corners
    materials: tuple[str, ...] = ()
    base_colour: tuple[float, ...] | None = None  # RGB(A) 0..1 of its first material, None without one


def capture_table(objects: list[ObjectFacts], names: list[str], view: np.ndarray | None) -> CandidateTable:
    """The candidate table of a capture whose index maps number `names` 1..n (World.names order)."""
    facts = {o.name: o for o in objects}
    missing = [n for n in names if n not in facts]
    if missing:
        raise ValueError(f"no object facts for captured objects {missing[:3]}")
    rows = [
        candidate_from_object(number, name, facts[name].materials, facts[name].base_colour, facts[name].corners)
        for number, name in enumerate(names, 1)
    ]
    return relate(rows, view)
