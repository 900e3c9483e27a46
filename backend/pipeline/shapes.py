"""A class guessed from an object's size and place, for candidates whose names say nothing.

An artist's "Cube.003" or a scan's "object 7" has no class in the candidate table, and the shipped
chooser cannot tell a chair from a sofa in a 128-pixel view. Its size can: a 0.45 x 0.45 x 0.9 m
box standing on nothing else is a chair far more often than a sofa or a mug. `class_labels` gives
each such candidate the household class whose typical size, place (on the floor, or on a table)
and Blender primitive (the "Cylinder" of "Cylinder.002") are nearest. The typical sizes are
measured from the household objects the synthetic rooms build (data/synth/household.py), which
follow everyday sizes; the guess only decides which rows the chooser lists for the class a query
names (models/references.py), never what the table says.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ...shared.candidates import CandidateTable

PRIMITIVES = {"cube": "Cube", "cylinder": "Cylinder", "sphere": "Sphere", "uv": "Sphere", "icosphere": "Sphere"}
PLACE_COST, PRIMITIVE_COST = 1.5, 1.0  # in units of log size ratios
FAR = 3.5  # no class is guessed beyond this cost (e^3.5: 33 times off in size, summed over the sides)
FLAT = 0.005  # metres: thinner than this is a plane, not an object


@dataclass(frozen=True)
class Prototype:
    word: str  # the household class
    primitive: str  # the Blender primitive an artist would start it from
    surface: bool  # it stands on furniture rather than on the floor
    size: tuple[float, float, float]  # longer side, shorter side, height (metres)


def footprint(dimensions) -> np.ndarray:
    """(longer horizontal side, shorter horizontal side, height): the same however it is turned."""
    w, d, h = (float(v) for v in dimensions)
    return np.array([max(w, d), min(w, d), h])


@functools.cache
def prototypes() -> tuple[Prototype, ...]:
    """Each household class's typical size: its synthetic object's box at three scales, averaged."""
    from ..data.synth.household import KINDS, build_mesh

    rng = np.random.default_rng(0)
    out = []
    for word, kind in KINDS.items():
        sizes = [
            footprint(build_mesh(word, scale, rng).get_axis_aligned_bounding_box().get_extent())
            for scale in (0.85, 1.0, 1.15)
        ]
        out.append(Prototype(word, kind.primitive, kind.place == "surface", tuple(np.mean(sizes, axis=0))))
    return tuple(out)


def guess_class(dimensions, on_surface: bool, name: str = "") -> str:
    """The household class nearest in size, place (standing on furniture, or not) and primitive; ""
    for a flat thing (a plane: a floor, a wall, a picture) or one far from every class."""
    if min(footprint(dimensions)) < FLAT:
        return ""
    size = footprint(dimensions)
    primitive = PRIMITIVES.get(name.split(".")[0].split("_")[0].lower(), "")

    def cost(prototype: Prototype) -> float:
        distance = float(np.abs(np.log(size / np.maximum(prototype.size, 0.01))).sum())
        distance += PLACE_COST * (on_surface != prototype.surface)
        return distance + PRIMITIVE_COST * bool(primitive and primitive != prototype.primitive)

    best = min(prototypes(), key=cost)
    return best.word if cost(best) <= FAR else ""


def class_labels(table: CandidateTable) -> dict[int, str]:
    """Candidate id -> the word for its class: its label when its name says one, else a guess."""
    if not table.candidates:
        return {}
    # Standing on another candidate (the table's "on" facts); a tabletop modelled as one slab at
    # 0.7 m stands on nothing and is furniture, not a thing on furniture.
    on = {subject for subject, word, _ in getattr(table, "facts", []) if word == "on"}
    return {
        c.id: (c.classes and c.label) or guess_class(c.dimensions, c.id in on, c.name) or c.label
        for c in table.candidates
    }
