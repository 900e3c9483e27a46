"""The result of a query, typed: what crosses the wire from the backend to every consumer (CLI, demo,
viewer, Blender). One dataclass family for the three modes ("ground" finds objects, "ask" answers,
"lift" lifts a user's box or points); `result_to_wire` / `result_from_wire` are the only
serialisation, one function on each side. numpy only: runs in Blender and in the backend.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

FIND, ASK, LIFT = "ground", "ask", "lift"


def _rounded(values, digits: int) -> list:
    return np.round(np.asarray(values, dtype=np.float64), digits).tolist()


@dataclass
class Mask3D:
    """A lifted 3D mask: points with confidence, and its boxes, in the scene's world frame."""

    points: np.ndarray  # (N, 3) float32
    confidence: np.ndarray  # (N,) 0..1, the share of frames that see a point and mark it in-mask
    aabb: np.ndarray  # [[min xyz], [max xyz]]
    obb_center: np.ndarray
    obb_extent: np.ndarray
    obb_rotation: np.ndarray
    frame_boxes: dict[int, list[int]] = field(default_factory=dict)  # per-frame 2D boxes (colour pixels)
    timings: dict[str, float] = field(default_factory=dict)
    frames_used: list[int] = field(default_factory=list)  # frames whose masks voted (a long scan's selected views)

    @property
    def mean_confidence(self) -> float:
        return float(np.mean(self.confidence)) if len(self.confidence) else 0.0

    def to_json(self) -> dict:
        """Everything but the points (they travel as buffers, or in a PLY beside result.json)."""
        return {
            "point_count": int(len(self.points)),
            "aabb": _rounded(self.aabb, 5),
            "obb": {
                "center": _rounded(self.obb_center, 5),
                "extent": _rounded(self.obb_extent, 5),
                "rotation": _rounded(self.obb_rotation, 6),
            },
            "mean_confidence": round(self.mean_confidence, 4),
            "frame_boxes": {str(k): v for k, v in sorted(self.frame_boxes.items())},
            "frames_used": [int(i) for i in self.frames_used],
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    @classmethod
    def from_json(cls, data: dict, points: np.ndarray, confidence: np.ndarray) -> Mask3D:
        obb = data.get("obb") or {}
        return cls(
            points=np.asarray(points, np.float32).reshape(-1, 3),
            confidence=np.asarray(confidence, np.float32).reshape(-1),
            aabb=np.asarray(data["aabb"], np.float64),
            obb_center=np.asarray(obb.get("center", [0, 0, 0]), np.float64),
            obb_extent=np.asarray(obb.get("extent", [0, 0, 0]), np.float64),
            obb_rotation=np.asarray(obb.get("rotation", np.eye(3)), np.float64),
            frame_boxes={int(k): list(v) for k, v in data.get("frame_boxes", {}).items()},
            timings=dict(data.get("timings", {})),
            frames_used=[int(i) for i in data.get("frames_used", [])],
        )


@dataclass
class Instance:
    """One object found: its box on the key frame, its per-frame 2D masks (COCO RLE, frame index ->
    {"size", "counts"}), its 3D mask when lifting succeeded, or why it failed."""

    label: str
    box_2d: list[float]
    masks_2d: dict[int, dict] = field(default_factory=dict)
    mask3d: Mask3D | None = None
    error: str = ""

    def to_json(self) -> dict:
        out = {
            "label": self.label,
            "box_2d": [round(float(v), 2) for v in self.box_2d],
            "masks_2d": {str(k): v for k, v in sorted(self.masks_2d.items())},
        }
        if self.mask3d is not None:
            out["mask_3d"] = self.mask3d.to_json()
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class QueryResult:
    """A finished query. `stages` holds each stage's report (reasoning, answer, confidence,
    seconds, ...) by stage name, in the order the stages ran."""

    query: str
    scene: str
    mode: str = FIND
    stages: dict[str, dict] = field(default_factory=dict)
    span: tuple[float, float] | None = None
    key_frame: int | None = None
    instances: list[Instance] = field(default_factory=list)
    answer: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    worker: str = ""  # which backend answered (a broker's worker name)
    cached: bool = False  # answered from the backend's memo of this scene

    @property
    def lifted(self) -> list[Instance]:
        return [i for i in self.instances if i.mask3d is not None]

    def to_json(self) -> dict:
        out = {
            "query": self.query,
            "scene": self.scene,
            "mode": self.mode,
            "stages": self.stages,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "notes": self.notes,
            "span": list(self.span) if self.span else None,
            "key_frame": self.key_frame,
            "instances": [i.to_json() for i in self.instances],
            "answer": self.answer,
        }
        if self.lifted:  # the single-object view most tools want
            first = self.lifted[0]
            out |= {
                "box_2d": first.box_2d,
                "box_3d": _rounded(first.mask3d.aabb, 5),
                "score": round(first.mask3d.mean_confidence, 4),
            }
        if self.worker:
            out["worker"] = self.worker
        if self.cached:
            out["cached"] = True
        return out

    def title(self) -> str:
        """One line for lists and history: what was asked and what came back."""
        if self.mode == ASK:
            return f"ask: {self.query} -> {self.answer}"
        count = len(self.lifted)
        return f"{self.mode}: {self.query or 'box'} ({count} object{'s' if count != 1 else ''})"

    def reasoning_text(self) -> str:
        """Each stage's reasoning and answer, as people read it (CLI, demo, viewer, Blender)."""
        parts = []
        for stage, info in self.stages.items():
            if not isinstance(info, dict):
                continue
            if info.get("reasoning") or info.get("answer"):
                parts.append(f"[{stage}] {info.get('reasoning', '')}\n  -> {info.get('answer', '')}")
            elif info.get("error"):
                parts.append(f"[{stage}] {info['error']}")
        return "\n".join(parts) or "(no reasoning: a box-prompt result)"

    def failure_reason(self) -> str:
        """Why nothing was lifted, in words (empty when something was)."""
        if self.lifted or self.mode == ASK:
            return ""
        errors = [i.error for i in self.instances if i.error]
        return "; ".join(errors) or "the model's answer named no object"


def result_to_wire(result: QueryResult) -> tuple[dict, dict[str, np.ndarray]]:
    """(JSON payload, named buffers): the 3D points travel as float32 buffers, not JSON."""
    arrays = {}
    for number, instance in enumerate(result.instances):
        if instance.mask3d is not None:
            arrays[f"points/{number}"] = np.ascontiguousarray(instance.mask3d.points, np.float32)
            arrays[f"confidence/{number}"] = np.ascontiguousarray(instance.mask3d.confidence, np.float32)
    return result.to_json(), arrays


def _finite_pair(value) -> tuple[float, float] | None:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        return None
    pair = tuple(float(v) for v in value)
    return pair if all(math.isfinite(v) for v in pair) else None


def result_from_wire(payload: dict, arrays: dict[str, np.ndarray]) -> QueryResult:
    """The client's side of `result_to_wire`. Raises ValueError on a payload that is not a result."""
    try:
        instances = []
        for number, data in enumerate(payload.get("instances", [])):
            mask3d = None
            if "mask_3d" in data and f"points/{number}" in arrays:
                mask3d = Mask3D.from_json(
                    data["mask_3d"], arrays[f"points/{number}"], arrays.get(f"confidence/{number}", [])
                )
                if len(mask3d.confidence) != len(mask3d.points):
                    raise ValueError(
                        f"instance {number}: {len(mask3d.confidence)} confidence values for {len(mask3d.points)} points"
                    )
            instances.append(
                Instance(
                    label=str(data.get("label", "")),
                    box_2d=[float(v) for v in data.get("box_2d", [])],
                    masks_2d={int(k): v for k, v in data.get("masks_2d", {}).items()},
                    mask3d=mask3d,
                    error=str(data.get("error", "")),
                )
            )
        key_frame = payload.get("key_frame")
        return QueryResult(
            query=str(payload.get("query", "")),
            scene=str(payload.get("scene", "")),
            mode=str(payload.get("mode", FIND)),
            stages=dict(payload.get("stages", {})),
            span=_finite_pair(payload.get("span")),
            key_frame=int(key_frame) if key_frame is not None else None,
            instances=instances,
            answer=str(payload.get("answer", "")),
            timings={str(k): float(v) for k, v in payload.get("timings", {}).items()},
            notes=[str(n) for n in payload.get("notes", [])],
            worker=str(payload.get("worker", "")),
            cached=bool(payload.get("cached", False)),
        )
    except (TypeError, KeyError, AttributeError, ValueError) as error:
        raise ValueError(f"the backend's result is malformed: {type(error).__name__}: {error}") from None
