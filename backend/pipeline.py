"""Scene-R1's pipeline: scene -> temporal grounding -> image grounding (key frame) -> tracking ->
lifting, and 3D VQA. Every stage's reasoning, choice, score and time is kept in the result.
"""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..shared.geometry import valid_depth
from ..shared.lifting import vote_in_frames
from ..shared.metrics import box_iou_3d
from ..shared.scene import Scene, SceneError
from .geometry.frame_selection import ViewSettings, select_views
from .lifting import Mask3D, mask_to_3d
from .scene_cache import SceneWorkCache, cache_reasoner_work, cache_tracker_work, scene_key
from .models.loading import SHIPPED_NANO, ModelError
from .models.parsing import ParsedBox, ParseError
from .models.reasoner import Generation, Reasoner, VLMSettings
from .models.tracker import GeometricTracker, Sam2Settings, Sam2Tracker, Tracker

# stage name, done, total
Progress = Callable[[str, int, int], None]
STAGES = ("temporal", "image", "tracking", "lifting")
DEFAULT_TRACKER = "facebook/sam2.1-hiera-tiny"


class Cancelled(Exception):
    """The caller asked to stop; nothing of the unfinished query is kept."""


DEFAULT_VLM = "Qwen/Qwen2.5-VL-7B-Instruct"


@dataclass(frozen=True)
class PipelineSettings:
    """What `scene-r1 ground/ask/serve` run. Also read from a TOML config file ([pipeline])."""

    vlm: str = DEFAULT_VLM  # when it is not on this machine, the shipped scene-r1-nano is used (with a note)
    tracker: str = "auto"  # "auto": SAM2 (DEFAULT_TRACKER) if its weights are here, else geometric; an id/path; or "geometric"
    device: str = "cpu"
    dtype: str = "auto"
    max_new_tokens: int = 256
    video_frames: int = 32
    key_frame_candidates: int = 3  # frames of the span asked for a box; the best one is the key frame
    track_stride: int = 1  # track every n-th frame (plus the key frame) on long scans
    view_step_m: float = 0.10  # track and vote a new view each time the camera moves this far...
    view_step_deg: float = 10.0  # ...or turns this much (0 and 0: every frame); see geometry/frame_selection.py
    video_as_images: bool = False  # models trained on frames-as-images (scene-r1-nano)
    work_cache_mb: int = 2048  # query-independent work kept per scene (scene_cache.py); 0: none

    def vlm_settings(self) -> VLMSettings:
        return VLMSettings(model=self.vlm, device=self.device, dtype=self.dtype, max_new_tokens=self.max_new_tokens,
                           video_frames=self.video_frames, video_as_images=self.video_as_images)

    @classmethod
    def from_file(cls, path, **overrides) -> "PipelineSettings":
        import tomllib

        try:
            table = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("pipeline", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise SceneError(f"cannot read config {path}: {error}") from error
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(table) - known
        if unknown:
            raise SceneError(f"unknown settings in {path}: {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})")
        return replace(cls(**table), **{k: v for k, v in overrides.items() if v is not None})


def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO RLE (pycocotools' compressed form, counts as text)."""
    from pycocotools import mask as coco

    rle = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_to_mask(rle: dict) -> np.ndarray:
    from pycocotools import mask as coco

    return coco.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)


def wants_every_instance(query: str) -> bool:
    """"all the chairs", "every mug", "each lamp": one 3D mask per instance."""
    return bool(re.match(r"\s*(all|every|each)\b", query, re.I))


def box_visibility(frame, box) -> float:
    """How clearly a box shows its object in this frame, 0..1: the share of valid depth inside it
    (lifting needs it), halved when the box touches the image border (the object is cut off)."""
    width, height = frame.intrinsics.size
    x1, y1, x2, y2 = box
    dw, dh = frame.depth_intrinsics.size
    sx, sy = dw / width, dh / height
    inside = frame.depth[int(y1 * sy) : max(int(np.ceil(y2 * sy)), int(y1 * sy) + 1), int(x1 * sx) : max(int(np.ceil(x2 * sx)), int(x1 * sx) + 1)]
    depth_share = float(valid_depth(inside).mean()) if inside.size else 0.0
    touches = x1 <= 1 or y1 <= 1 or x2 >= width - 1 or y2 >= height - 1
    return depth_share * (0.5 if touches else 1.0)


def _stage_json(generation: Generation) -> dict:
    return {
        "reasoning": generation.reply.think,
        "answer": generation.reply.answer,
        "raw": generation.reply.text,
        "well_formed": generation.reply.well_formed,
        "constrained": generation.constrained,
        "confidence": round(generation.confidence, 4),
        "seconds": round(generation.seconds, 4),
    }


@dataclass
class Instance:
    label: str
    box_2d: list[float]  # on the key frame, frame pixels
    masks: dict[int, np.ndarray]  # frame index -> 2D mask
    mask3d: Mask3D | None
    error: str = ""

    def to_json(self) -> dict:
        out = {"label": self.label, "box_2d": [round(v, 2) for v in self.box_2d],
               "masks_2d": {str(i): mask_to_rle(m) for i, m in sorted(self.masks.items()) if m.any()}}
        if self.mask3d is not None:
            out["mask_3d"] = self.mask3d.to_json()
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class GroundingResult:
    query: str
    scene: str
    mode: str = "ground"
    stages: dict = field(default_factory=dict)
    span: tuple[float, float] | None = None
    key_frame: int | None = None
    instances: list[Instance] = field(default_factory=list)
    answer: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        out = {"query": self.query, "scene": self.scene, "mode": self.mode, "stages": self.stages, "timings": {k: round(v, 4) for k, v in self.timings.items()}, "notes": self.notes}
        if self.mode == "ask":
            out["answer"] = self.answer
            return out
        out |= {"span": list(self.span) if self.span else None, "key_frame": self.key_frame, "instances": [i.to_json() for i in self.instances]}
        first = next((i for i in self.instances if i.mask3d is not None), None)
        if first is not None:  # the single-object view most tools want
            out |= {"box_2d": first.box_2d, "box_3d": first.mask3d.aabb.round(5).tolist(), "score": round(float(first.mask3d.confidence.mean()), 4)}
        return out

    def write(self, out) -> dict:
        """OUT/result.json and OUT/mask.ply (all instances' points, with an `instance` property)."""
        import open3d as o3d

        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        result = self.to_json()
        lifted = [(k, i.mask3d) for k, i in enumerate(self.instances) if i.mask3d is not None]
        if lifted:
            points = np.concatenate([m.points for _, m in lifted]).astype(np.float32)
            confidence = np.concatenate([m.confidence for _, m in lifted]).astype(np.float32)
            instance = np.concatenate([np.full(len(m.points), k, np.int32) for k, m in lifted])
            cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(points))
            cloud.point["confidence"] = o3d.core.Tensor(confidence[:, None])
            cloud.point["instance"] = o3d.core.Tensor(instance[:, None])
            cloud.point["colors"] = o3d.core.Tensor(np.stack([np.ones_like(confidence), 1 - confidence, np.zeros_like(confidence)], 1))
            if not o3d.t.io.write_point_cloud(str(out / "mask.ply"), cloud):
                raise SceneError(f"could not write {out / 'mask.ply'}")
            result["mask_ply"] = "mask.ply"
        (out / "result.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
        return result


class Pipeline:
    """Loads the models once; answers many queries (thread-compatible, one query at a time)."""

    def __init__(self, settings: PipelineSettings = PipelineSettings(), reasoner: Reasoner | None = None, tracker: Tracker | None = None,
                 cache: SceneWorkCache | None = None):
        self.settings = settings
        self.notes: list[str] = []
        self.cache = cache if cache is not None else SceneWorkCache(settings.work_cache_mb << 20)
        self._reasoner = reasoner
        if reasoner is not None:
            cache_reasoner_work(self.cache, reasoner)
        self.tracker = tracker or self._make_tracker()
        cache_tracker_work(self.cache, self.tracker)
        self._vote = vote_in_frames
        if settings.device.startswith("cuda"):  # a GPU votes all frames at once; on a CPU numpy is faster (bench lifting)
            from .voting import TorchVoter

            self._vote = TorchVoter(settings.device)
        self._lock = threading.Lock()

    @property
    def reasoner(self) -> Reasoner:
        """Loaded on first use: the box-prompt path never needs the vision-language model."""
        if self._reasoner is None:
            try:
                self._reasoner = Reasoner(self.settings.vlm_settings())
            except ModelError as error:
                # Nothing configured and the default checkpoint not on this machine: the shipped
                # scene-r1-nano keeps the whole product working (a newcomer without a GPU or downloads).
                if self.settings.vlm != DEFAULT_VLM or not (SHIPPED_NANO / "config.json").is_file():
                    raise
                self.notes.append(f"{DEFAULT_VLM} is not on this machine ({str(error).splitlines()[0][:160]}); "
                                  f"using the shipped scene-r1-nano ({SHIPPED_NANO}), a small model trained on synthetic rooms only")
                self._reasoner = Reasoner(replace(self.settings.vlm_settings(), model=str(SHIPPED_NANO)))
            cache_reasoner_work(self.cache, self._reasoner)
        return self._reasoner

    def _make_tracker(self) -> Tracker:
        choice = self.settings.tracker
        if choice == "geometric":
            return GeometricTracker()
        model = DEFAULT_TRACKER if choice == "auto" else choice
        try:
            return Sam2Tracker(Sam2Settings(model=model, device=self.settings.device, dtype="float32" if self.settings.dtype == "auto" else self.settings.dtype))
        except ModelError as error:
            if choice != "auto":
                raise
            self.notes.append(f"no SAM2 weights for {model} here ({str(error).splitlines()[0]}); the geometric tracker (depth segmentation + re-projection) was used")
            return GeometricTracker()

    # ---- grounding --------------------------------------------------------------------------
    def ground(self, scene: Scene, query: str, every: bool | None = None, progress: Progress | None = None, cancel: threading.Event | None = None) -> GroundingResult:
        with self._lock, self.cache.for_scene(scene_key(scene)):
            return self._ground(scene, query, wants_every_instance(query) if every is None else every, progress or _quiet, cancel)

    def model_seconds(self) -> float:
        """Seconds spent so far inside model forward passes (VLM generation, SAM2)."""
        return getattr(self._reasoner, "model_seconds", 0.0) + getattr(self.tracker, "model_seconds", 0.0)

    def _ground(self, scene, query, every, progress, cancel) -> GroundingResult:
        self.reasoner  # loaded (or its fallback chosen, with a note) before the result copies the notes
        result = GroundingResult(query=query, scene=scene.name, notes=list(self.notes))
        total_start, model_start = time.perf_counter(), self.model_seconds()

        _check(cancel)
        progress("temporal", 0, 1)
        start = time.perf_counter()
        try:
            generation, span = self.reasoner.temporal_grounding(scene, query)
            result.stages["temporal"] = _stage_json(generation) | {"span": [round(span[0], 3), round(span[1], 3)]}
        except ParseError as error:
            span = (float(scene.timestamps[0]), float(scene.timestamps[-1]))
            result.stages["temporal"] = {"error": str(error), "span": list(span)}
            result.notes.append("the temporal answer had no usable span; the whole video was searched")
        result.span = span
        result.timings["temporal"] = time.perf_counter() - start
        progress("temporal", 1, 1)

        start = time.perf_counter()
        key, boxes, candidates = self._key_frame(scene, query, span, every, progress, cancel)
        result.key_frame = key
        result.stages["image"] = candidates[key] | {"key_frame": key, "candidates": {str(k): {n: c[n] for n in ("confidence", "visibility", "score", "boxes") if n in c} for k, c in candidates.items()}}
        result.timings["image"] = time.perf_counter() - start

        result.instances = self.track_and_lift(scene, key, boxes, query, progress, cancel, result)
        if not any(i.mask3d is not None for i in result.instances):
            result.notes.append("no instance could be lifted into 3D: " + "; ".join(i.error for i in result.instances))
        result.timings["total"] = time.perf_counter() - total_start
        result.timings["model"] = self.model_seconds() - model_start
        return result

    def track_and_lift(self, scene: Scene, key: int, boxes: list, query: str = "", progress: Progress | None = None,
                       cancel: threading.Event | None = None, result: GroundingResult | None = None) -> list[Instance]:
        """Stages 3 and 4 for boxes on a key frame: one tracked, lifted Instance per box. Also the
        box-prompt path (a user's rectangle instead of the model's box)."""
        progress = progress or _quiet
        stages = result.stages if result is not None else {}
        timings = result.timings if result is not None else {}
        start = time.perf_counter()
        views = ViewSettings(self.settings.view_step_m, self.settings.view_step_deg)
        frames = select_views(scene.poses, key, views, candidates=range(0, len(scene), self.settings.track_stride))
        instances = []
        for number, parsed in enumerate(boxes):
            _check(cancel)

            def tracked(done, total, number=number):
                _check(cancel)
                progress("tracking", number * total + done, len(boxes) * total)

            try:
                masks, error = self.tracker.track(scene, key, parsed.box, frames, progress=tracked), ""
            except SceneError as failure:  # e.g. nothing but background inside the box
                masks, error = {}, f"tracking: {failure}"
            instances.append(Instance(parsed.label or query, list(parsed.box), masks, None, error))
        stages["tracking"] = {"tracker": self.tracker.name, "frames": len(frames), "frames_total": len(scene), "instances": len(boxes)}
        timings["tracking"] = time.perf_counter() - start

        start = time.perf_counter()
        for number, instance in enumerate(instances):
            _check(cancel)
            progress("lifting", number, len(instances))
            if instance.error:
                continue
            try:
                instance.mask3d = mask_to_3d(scene, instance.masks, vote=self._vote)
            except SceneError as error:
                instance.error = f"lifting: {error}"
        _drop_duplicates(instances)
        lifted = [i for i in instances if i.mask3d is not None]
        stages["lifting"] = {"instances": len(lifted), "points": [int(len(i.mask3d.points)) for i in lifted]}
        timings["lifting"] = time.perf_counter() - start
        progress("lifting", len(instances), len(instances))
        return instances

    def _key_frame(self, scene, query, span, every, progress, cancel):
        """Ask for a box on a few frames of the span; keep the one with the best
        confidence x visibility (the model's own token probability of its answer, times the share
        of valid depth in the box, halved when the box is cut by the image border)."""
        inside = [i for i, t in enumerate(scene.timestamps) if span[0] - 1e-6 <= t <= span[1] + 1e-6]
        if not inside:
            inside = [scene.frame_at_time((span[0] + span[1]) / 2)]
        count = min(self.settings.key_frame_candidates, len(inside))
        picks = sorted({inside[int(round(p))] for p in np.linspace(0, len(inside) - 1, count + 2)[1:-1]} if len(inside) > 2 else set(inside))
        candidates, best = {}, None
        for number, index in enumerate(picks):
            _check(cancel)
            progress("image", number, len(picks))
            frame = scene.frame(index)
            try:
                generation, boxes = self.reasoner.image_grounding(frame.rgb, query, every=every)
            except ParseError as error:
                candidates[index] = {"error": str(error)}
                continue
            visibility = float(np.mean([box_visibility(frame, b.box) for b in boxes]))
            score = generation.confidence * visibility
            candidates[index] = _stage_json(generation) | {"confidence": round(generation.confidence, 4), "visibility": round(visibility, 4), "score": round(score, 4),
                                                          "boxes": [{"bbox_2d": [round(v, 2) for v in b.box], "label": b.label} for b in boxes]}
            if best is None or score > best[0]:
                best = (score, index, boxes if every else boxes[:1])
        progress("image", len(picks), len(picks))
        if best is None:
            reasons = "; ".join(c["error"] for c in candidates.values())
            raise ParseError(f"no usable box for {query!r} on frames {picks}: {reasons}")
        return best[1], best[2], candidates

    def lift(self, scene: Scene, frame: int, box, progress: Progress | None = None, cancel: threading.Event | None = None) -> GroundingResult:
        """The box-prompt path: a user's rectangle on one frame -> the object in 3D."""
        from .lifting import check_box

        with self._lock, self.cache.for_scene(scene_key(scene)):
            frame = scene.check_index(frame)
            box = tuple(float(v) for v in check_box(box, scene.intrinsics_at(frame).size))
            result = GroundingResult(query="", scene=scene.name, mode="lift", key_frame=frame, notes=list(self.notes))
            start = time.perf_counter()
            result.instances = self.track_and_lift(scene, frame, [ParsedBox(box, "")], "", progress, cancel, result)
            result.timings["total"] = time.perf_counter() - start
            if result.instances[0].mask3d is None:
                raise SceneError(f"nothing could be lifted from box {[round(v) for v in box]} on frame {frame}: {result.instances[0].error}")
            return result

    # ---- VQA ----------------------------------------------------------------------------------
    def ask(self, scene: Scene, question: str, progress: Progress | None = None, cancel: threading.Event | None = None) -> GroundingResult:
        with self._lock, self.cache.for_scene(scene_key(scene)):
            _check(cancel)
            progress = progress or _quiet
            progress("answer", 0, 1)
            start, model_start = time.perf_counter(), self.model_seconds()
            generation = self.reasoner.answer_question(scene, question)
            if not generation.reply.answer:
                raise ParseError(f"the model gave no answer to {question!r}: {generation.reply.text[:200]!r}")
            result = GroundingResult(query=question, scene=scene.name, mode="ask", answer=generation.reply.answer, notes=list(self.notes))
            result.stages["answer"] = _stage_json(generation)
            result.timings["answer"] = result.timings["total"] = time.perf_counter() - start
            result.timings["model"] = self.model_seconds() - model_start
            progress("answer", 1, 1)
            return result


def _drop_duplicates(instances: list[Instance], threshold: float = 0.5) -> None:
    """Two boxes of one object (a model listing it twice) lift to the same 3D mask: keep one."""
    kept: list[Instance] = []
    for instance in instances:
        if instance.mask3d is not None and any(k.mask3d is not None and box_iou_3d(k.mask3d.aabb, instance.mask3d.aabb) > threshold for k in kept):
            instance.mask3d, instance.error = None, "duplicate of an earlier instance"
        kept.append(instance)


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")


def _quiet(stage: str, done: int, total: int) -> None:
    pass

