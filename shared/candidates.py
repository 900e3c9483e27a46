"""The scene's objects as a candidate table: what a vision-language model chooses from.

One Candidate per object (a Blender object of a capture, a ground-truth instance of a synthetic
room, or a 3D instance proposal of a scan): its id (the value of its pixels in the per-frame
object-id maps), name, class words, material names, base colour as a colour word, dimensions and
position, plus relations computed from geometry: on/under (support), next to, left/right of as
seen from the key view, between two others, and the largest/smallest/closest of a class.

`CandidateTable.to_text()` is the table as the prompt shows it; `to_json`/`from_json` carry it on
the wire and in scene folders (candidates.json). Pure numpy (1.26 and 2.x). World frame: z up,
metres; poses camera-to-world, OpenCV camera axes (x right, y down, z forward).
"""

from __future__ import annotations

import colorsys
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .scene import SceneError

CANDIDATES_FILE = "candidates.json"
COLOUR_WORDS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "white", "gray", "black")
SUPPORT_GAP = 0.05  # metres between a bottom and the top it rests on
NEXT_TO_GAP = 0.25  # metres between two boxes side by side
LEFT_RIGHT_MARGIN = 0.1  # metres along the key view's x axis
NEAR = 2.0  # metres: left/right relations are listed for objects at most this far apart
BETWEEN_OFFSET = 0.3  # metres off the line joining the two others
# A floor, wall or ceiling (longest side >= SPAN, thinnest <= THICKNESS) stays a row ("the floor") but
# anchors no relation: in an artist's scene every object would be "next to" or "on" it.
STRUCTURE_SPAN, STRUCTURE_THICKNESS = 3.0, 0.15  # metres


# Words of Blender's default object and material names, which say nothing about what an object is.
GENERIC_WORDS = frozenset(
    ("cube", "cylinder", "sphere", "uv", "ico", "icosphere", "cone", "torus", "plane", "mesh", "object", "circle")
    + ("empty", "material", "mat")
)


class CandidateError(SceneError):
    """A candidate table that cannot be used, with the reason in words."""


def colour_word(rgb) -> str:
    """The colour word for a base colour (RGB 0..1 or 0..255): hue for saturated colours, lightness
    for grays. Works for material base colours and for colours measured in images alike."""
    rgb = np.asarray(rgb, dtype=np.float64).reshape(3)
    if rgb.max() > 1.0:
        rgb = rgb / 255.0
    hue, lightness, saturation = colorsys.rgb_to_hls(*np.clip(rgb, 0, 1))
    value = float(rgb.max())
    chroma = float(rgb.max() - rgb.min())
    if chroma < 0.12 or (saturation < 0.18 and chroma < 0.2):
        return "white" if lightness > 0.7 else ("black" if value < 0.22 else "gray")
    if value < 0.12:
        return "black"
    degrees = hue * 360
    if degrees < 15 or degrees >= 335:
        return "pink" if lightness > 0.65 else "red"
    if degrees < 45:
        return "brown" if value < 0.6 else "orange"
    if degrees < 70:
        return "yellow" if value > 0.45 else "brown"
    if degrees < 170:
        return "green"
    if degrees < 255:
        return "blue"
    if degrees < 300:
        return "purple"
    return "pink"


def class_words(name: str) -> tuple[str, ...]:
    """Class words read from an object's name: "Coffee_Mug.001" -> ("coffee mug",); "Cube.003" -> ()."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", name)
    words = [w.lower() for w in re.split(r"[^A-Za-z]+", spaced) if w]
    words = [w for w in words if w not in GENERIC_WORDS]
    return (" ".join(words),) if words else ()


@dataclass(frozen=True)
class Candidate:
    id: int  # the object's value in the per-frame object-id maps (> 0)
    name: str  # as the artist left it ("Mug", "Cube.003") or a proposal's "object 7"
    classes: tuple[str, ...] = ()  # class words ("mug", "cup"); empty when unknown
    materials: tuple[str, ...] = ()
    colour: str = ""  # a colour word (colour_word)
    aabb: tuple[tuple[float, float, float], tuple[float, float, float]] = ((0, 0, 0), (0, 0, 0))
    source: str = "capture"  # "capture" (exact ids) or "proposal" (a scan's 3D instance proposal)

    @property
    def low(self) -> np.ndarray:
        return np.asarray(self.aabb[0], dtype=np.float64)

    @property
    def high(self) -> np.ndarray:
        return np.asarray(self.aabb[1], dtype=np.float64)

    @property
    def position(self) -> np.ndarray:
        return (self.low + self.high) / 2

    @property
    def dimensions(self) -> np.ndarray:
        return self.high - self.low

    @property
    def label(self) -> str:
        """The word the table uses to refer to this candidate from other rows."""
        return self.classes[0] if self.classes else self.name

    @property
    def reference(self) -> str:
        """How other rows name this candidate: its label and its id ("mug 3", "Cube.003 4", "object 7")."""
        return self.label if self.label.endswith(f" {self.id}") else f"{self.label} {self.id}"

    def to_json(self) -> dict:
        return {
            "id": self.id,
            "name": self.name,
            "classes": list(self.classes),
            "materials": list(self.materials),
            "colour": self.colour,
            "aabb": [[round(float(v), 4) for v in corner] for corner in self.aabb],
            "source": self.source,
        }

    @classmethod
    def from_json(cls, data: dict) -> Candidate:
        try:
            aabb = np.asarray(data["aabb"], dtype=np.float64)
            if aabb.shape != (2, 3) or not np.isfinite(aabb).all():
                raise CandidateError(f"candidate {data.get('id')}: aabb must be [[x, y, z], [x, y, z]]")
            identifier = int(data["id"])
        except (KeyError, TypeError, ValueError) as error:
            raise CandidateError(f"bad candidate entry {str(data)[:120]!r}: {error}") from error
        if identifier <= 0:
            raise CandidateError(f"candidate ids must be > 0 (0 is the background), got {identifier}")
        return cls(
            identifier,
            str(data.get("name", f"object {identifier}")),
            tuple(str(c) for c in data.get("classes", ())),
            tuple(str(m) for m in data.get("materials", ())),
            str(data.get("colour", "")),
            (tuple(float(v) for v in aabb[0]), tuple(float(v) for v in aabb[1])),
            str(data.get("source", "capture")),
        )


@dataclass
class CandidateTable:
    """The candidates of one scene and their relations (computed by `relate`)."""

    candidates: list[Candidate]
    relations: dict[int, list[str]] = field(default_factory=dict)  # id -> relation phrases
    facts: list[tuple[int, str, tuple[int, ...]]] = field(default_factory=list)  # (id, word, anchor ids)
    view: np.ndarray | None = None  # the key view's camera-to-world pose (left/right as seen from it)

    def __post_init__(self):
        ids = [c.id for c in self.candidates]
        if len(set(ids)) != len(ids):
            raise CandidateError(f"candidate ids repeat: {sorted(ids)}")

    def __len__(self) -> int:
        return len(self.candidates)

    @property
    def ids(self) -> list[int]:
        return [c.id for c in self.candidates]

    def by_id(self, identifier: int) -> Candidate:
        for candidate in self.candidates:
            if candidate.id == identifier:
                return candidate
        raise CandidateError(f"no candidate {identifier}; ids are {self.ids}")

    def row(self, candidate: Candidate) -> str:
        """One line of the table: id, name, classes, colour, materials, size, position, relations."""
        parts = [f"{candidate.id}: {candidate.name}"]
        if (
            candidate.classes
            and candidate.classes[0].lower() not in candidate.name.lower()
            or len(candidate.classes) > 1
        ):
            parts.append("/".join(candidate.classes))
        if candidate.colour:
            parts.append(candidate.colour)
        if candidate.materials:
            parts.append("material " + "/".join(candidate.materials))
        w, d, h = candidate.dimensions
        x, y, z = candidate.position
        parts.append(f"size {w:.2f}x{d:.2f}x{h:.2f}")
        parts.append(f"at {x:.1f},{y:.1f},{z:.1f}")
        parts += self.relations.get(candidate.id, [])
        return "; ".join(parts)

    def to_text(self) -> str:
        return "\n".join(self.row(c) for c in self.candidates)

    def to_json(self) -> dict:
        out = {"format": "scene-r1-candidates", "version": 1, "candidates": [c.to_json() for c in self.candidates]}
        if self.view is not None:
            out["view"] = np.asarray(self.view).round(6).tolist()
        return out

    @classmethod
    def from_json(cls, data: dict) -> CandidateTable:
        if not isinstance(data, dict) or not isinstance(data.get("candidates"), list):
            raise CandidateError("a candidate table is a JSON object with a 'candidates' list")
        view = np.asarray(data["view"], dtype=np.float64) if data.get("view") is not None else None
        return relate([Candidate.from_json(c) for c in data["candidates"]], view)

    def save(self, folder) -> Path:
        path = Path(folder) / CANDIDATES_FILE
        path.write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder) -> CandidateTable | None:
        path = Path(folder) / CANDIDATES_FILE
        if not path.is_file():
            return None
        try:
            return cls.from_json(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise CandidateError(f"cannot read {path}: {error}") from error


def _supports(top: Candidate, bottom: Candidate) -> bool:
    """`top` rests on `bottom`: its bottom at bottom's top, its centre over and above bottom's."""
    centre = top.position
    inside = bottom.low[0] <= centre[0] <= bottom.high[0] and bottom.low[1] <= centre[1] <= bottom.high[1]
    above = top.low[2] > bottom.low[2] and centre[2] > bottom.position[2]  # two thin plates: not each on the other
    return inside and above and abs(top.low[2] - bottom.high[2]) <= SUPPORT_GAP and top.dimensions[2] > 0


def _support(top: Candidate, candidates: list[Candidate]) -> list[Candidate]:
    """What `top` stands on directly: of those it rests on, the highest (the top book of a stack of
    thin books is on the book below, not on the desk as well)."""
    below = [b for b in candidates if b is not top and _supports(top, b)]
    highest = max((float(b.high[2]) for b in below), default=0.0)
    return [b for b in below if float(b.high[2]) >= highest - 1e-3]


def _gap(a: Candidate, b: Candidate) -> float:
    """Horizontal distance between two boxes' footprints (0 when they overlap)."""
    separation = np.maximum(np.maximum(a.low[:2] - b.high[:2], b.low[:2] - a.high[:2]), 0)
    return float(np.linalg.norm(separation))


def view_coordinates(candidates: list[Candidate], view: np.ndarray | None) -> np.ndarray:
    """Positions in the key view's camera frame (x right, z forward); world x, -y, depth without a view."""
    positions = np.array([c.position for c in candidates]).reshape(-1, 3)
    if view is None:
        return positions
    world_to_camera = np.linalg.inv(np.asarray(view, dtype=np.float64))
    return positions @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]


def relate(candidates: list[Candidate], view: np.ndarray | None = None) -> CandidateTable:
    """The table with every candidate's relations computed from geometry."""
    table = CandidateTable(list(candidates), view=None if view is None else np.asarray(view, dtype=np.float64))
    table.facts = relation_facts(table.candidates, table.view)
    by_id = {c.id: c for c in candidates}
    relations: dict[int, list[str]] = {c.id: [] for c in candidates}
    grouped: dict[tuple[int, str], list[tuple[int, ...]]] = {}
    for subject, word, anchors in table.facts:
        grouped.setdefault((subject, word), []).append(anchors)
    for (subject, word), anchor_lists in grouped.items():
        if word in SUPERLATIVES:
            relations[subject].append(f"{word} {by_id[subject].label}")
        elif word == "between":
            b, c = (by_id[a] for a in anchor_lists[0])
            relations[subject].append(f"between {b.reference} and {c.reference}")
        else:
            anchors = [by_id[a[0]] for a in anchor_lists]
            relations[subject].append(f"{word} " + ", ".join(a.reference for a in anchors))
    table.relations = relations
    return table


SUPERLATIVES = ("smallest", "largest", "closest", "farthest")


def is_structure(candidate: Candidate) -> bool:
    sides = np.sort(candidate.dimensions)  # a long shelf board or a countertop is narrow: not structure
    return bool(sides[-1] >= STRUCTURE_SPAN and sides[1] >= STRUCTURE_SPAN / 2 and sides[0] <= STRUCTURE_THICKNESS)


def relation_facts(candidates: list[Candidate], view: np.ndarray | None) -> list[tuple[int, str, tuple[int, ...]]]:
    """(subject id, relation word, anchor ids) for every relation between objects, in a fixed order."""
    candidates = [c for c in candidates if not is_structure(c)]
    if not candidates:
        return []
    seen = view_coordinates(candidates, view)
    facts = []
    support = {a.id: [b.id for b in _support(a, candidates)] for a in candidates}  # once: n^2, not n^3
    for a in candidates:
        facts += [(a.id, "on", (b,)) for b in support[a.id]]
        facts += [(a.id, "under", (b.id,)) for b in candidates if a.id in support[b.id]]
    for i, a in enumerate(candidates):
        near = [b for b in candidates if b is not a and _gap(a, b) <= NEXT_TO_GAP and not _stacked(a, b)]
        facts += [(a.id, "next to", (b.id,)) for b in near]
        for word, sign in (("left of", -1), ("right of", 1)):
            facts += [
                (a.id, word, (b.id,))
                for j, b in enumerate(candidates)
                if b is not a
                and sign * (seen[i, 0] - seen[j, 0]) > LEFT_RIGHT_MARGIN
                and float(np.linalg.norm(a.position[:2] - b.position[:2])) <= NEAR
            ]
        between = _between(a, candidates)
        if between:
            facts.append((a.id, "between", (between[0].id, between[1].id)))
    facts += [(identifier, word, ()) for identifier, word in _superlatives(candidates, seen)]
    return facts


def _stacked(a: Candidate, b: Candidate) -> bool:
    return _supports(a, b) or _supports(b, a)


def _between(a: Candidate, candidates: list[Candidate]) -> tuple[Candidate, Candidate] | None:
    """The closest pair of other candidates with `a` on the line between them (in the floor plan)."""
    best, best_length = None, np.inf
    point = a.position[:2]
    for i, b in enumerate(candidates):
        for c in candidates[i + 1 :]:
            if a in (b, c) or _stacked(a, b) or _stacked(a, c):
                continue
            start, end = b.position[:2], c.position[:2]
            length = float(np.linalg.norm(end - start))
            if length < 1e-6 or length > 2 * NEAR:
                continue
            t = float(np.dot(point - start, end - start) / length**2)
            offset = float(np.linalg.norm(start + t * (end - start) - point))
            if 0.2 < t < 0.8 and offset < BETWEEN_OFFSET and length < best_length:
                best, best_length = (b, c), length
    return best


def _superlatives(candidates: list[Candidate], seen: np.ndarray) -> list[tuple[int, str]]:
    """largest / smallest (by volume) and closest / farthest (from the key view) of each class."""
    by_class: dict[str, list[int]] = {}
    for i, candidate in enumerate(candidates):
        if candidate.classes:
            by_class.setdefault(candidate.classes[0], []).append(i)
    return [p for _, m in sorted(by_class.items()) for p in superlatives_of([candidates[i] for i in m], seen[m])]


def superlatives_of(members: list[Candidate], seen: np.ndarray) -> list[tuple[int, str]]:
    """(id, word) for the smallest / largest (volume) and closest / farthest (`seen`: positions in
    the key view) of a group of two or more; a tie names none."""
    phrases = []
    if len(members) < 2:
        return phrases
    volume, depth = [float(np.prod(c.dimensions)) for c in members], [float(np.linalg.norm(p)) for p in seen]
    for values, low_word, high_word in ((volume, "smallest", "largest"), (depth, "closest", "farthest")):
        order = np.argsort(values, kind="stable")
        if values[order[1]] - values[order[0]] > 1e-9 * max(1.0, abs(values[order[0]])):
            phrases.append((members[order[0]].id, low_word))
        if values[order[-1]] - values[order[-2]] > 1e-9 * max(1.0, abs(values[order[-1]])):
            phrases.append((members[order[-1]].id, high_word))
    return phrases


def candidate_from_object(identifier: int, name: str, materials, base_colour, corners) -> Candidate:
    """A capture's object as a candidate (what the Blender add-on knows): its pass index, name,
    material names, base colour (RGB(A) 0..1) and world-space bounding-box corners (8x3 or 2x3)."""
    corners = np.asarray(corners, dtype=np.float64).reshape(-1, 3)
    if not np.isfinite(corners).all() or len(corners) < 2:
        raise CandidateError(f"object {name!r}: bounding-box corners must be finite xyz triples")
    low, high = corners.min(axis=0), corners.max(axis=0)
    colour = colour_word(np.asarray(base_colour, dtype=np.float64)[:3]) if base_colour is not None else ""
    aabb = (tuple(float(v) for v in low), tuple(float(v) for v in high))
    return Candidate(int(identifier), str(name), class_words(str(name)), tuple(str(m) for m in materials), colour, aabb)


def with_candidates(scene, folder):
    """The scene, carrying the candidate table saved beside its frames (if any and it has none)."""
    if scene.candidates is None:
        scene.candidates = CandidateTable.load(folder)
    return scene


def with_view(table: CandidateTable, view: np.ndarray | None) -> CandidateTable:
    """The same candidates with left/right recomputed as seen from another key view."""
    return relate(table.candidates, view)


def renumbered(table: CandidateTable, start: int = 1) -> tuple[CandidateTable, dict[int, int]]:
    """Ids 1..n in table order (short marks on views), and the map new id -> original id."""
    mapping = {start + i: c.id for i, c in enumerate(table.candidates)}
    candidates = [replace(c, id=start + i) for i, c in enumerate(table.candidates)]
    return relate(candidates, table.view), mapping
