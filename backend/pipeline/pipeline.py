"""Scene-R1's pipeline: scene -> temporal grounding -> image grounding (key frame) -> tracking ->
lifting, and 3D VQA. Every stage's reasoning, choice, score and time is kept in the result.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from ...shared.defaults import DEFAULT_VLM
from ...shared.geometry import valid_depth
from ...shared.results import ASK, LIFT, Instance, QueryResult
from ...shared.scene import Scene, SceneError
from ..eval.metrics import box_iou_3d
from ..geometry.frame_selection import ViewSettings, select_views
from ..geometry.lifting import vote_in_frames
from ..geometry.mask3d import mask_to_3d
from ..geometry.tracking import Tracker
from ..geometry.upright import upright_turns
from ..models.loading import SHIPPED_NANO, SHIPPED_NANO_CHOOSER, ModelError, same_folder
from ..models.parsing import ParsedBox, ParseError
from ..models.reasoner import Reasoner
from .cache import SceneWorkCache, cache_reasoner_work, cache_tracker_work, scene_key
from .candidates import ask_by_candidates, ground_by_candidates, uses_candidates
from .results import masks_to_rle, stage_report
from .settings import PipelineSettings
from .warming import Warmer

# stage name, done, total
Progress = Callable[[str, int, int], None]


class Cancelled(Exception):
    """The caller asked to stop; nothing of the unfinished query is kept."""


def wants_every_instance(query: str) -> bool:
    """ "all the chairs", "every mug", "each lamp": one 3D mask per instance."""
    return bool(re.match(r"\s*(all|every|each)\b", query, re.I))


def box_visibility(frame, box) -> float:
    """How clearly a box shows its object in this frame, 0..1: the share of valid depth inside it
    (lifting needs it), halved when the box touches the image border (the object is cut off)."""
    width, height = frame.intrinsics.size
    x1, y1, x2, y2 = box
    dw, dh = frame.depth_intrinsics.size
    sx, sy = dw / width, dh / height
    inside = frame.depth[
        int(y1 * sy) : max(int(np.ceil(y2 * sy)), int(y1 * sy) + 1),
        int(x1 * sx) : max(int(np.ceil(x2 * sx)), int(x1 * sx) + 1),
    ]
    depth_share = float(valid_depth(inside).mean()) if inside.size else 0.0
    touches = x1 <= 1 or y1 <= 1 or x2 >= width - 1 or y2 >= height - 1
    return depth_share * (0.5 if touches else 1.0)


class Pipeline:
    """Loads the models once; answers many queries (thread-compatible, one query at a time)."""

    def __init__(
        self,
        settings: PipelineSettings = PipelineSettings(),
        reasoner: Reasoner | None = None,
        tracker: Tracker | None = None,
        cache: SceneWorkCache | None = None,
    ):
        self.settings = settings = settings.resolved()  # "auto" -> this machine's device, here
        self.notes: list[str] = []
        self.cache = cache if cache is not None else SceneWorkCache(settings.work_cache_mb << 20)
        self._reasoner = reasoner
        self._chooser: Reasoner | None = None
        if reasoner is not None:
            cache_reasoner_work(self.cache, reasoner)
        self.tracker = tracker or self._make_tracker()
        cache_tracker_work(self.cache, self.tracker)
        self._vote = vote_in_frames
        if settings.device.startswith(
            "cuda"
        ):  # a GPU votes all frames at once; on a CPU numpy is faster (bench lifting)
            from ..geometry.voting import TorchVoter

            self._vote = TorchVoter(settings.device)
        self._lock = threading.Lock()
        self.warmer = Warmer()

    def warm_step(self) -> bool:
        """One unit of query-independent work for the scene last queried (pipeline/warming.py); True
        while more remain. The server runs it while no query waits."""
        return self.warmer.step(self.tracker, self._lock, self.cache)

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
                self.notes.append(
                    f"{DEFAULT_VLM} is not on this machine ({str(error).splitlines()[0][:160]}); "
                    f"using the shipped scene-r1-nano ({SHIPPED_NANO}), a small model trained on synthetic rooms only"
                )
                self._reasoner = Reasoner(replace(self.settings.vlm_settings(), model=str(SHIPPED_NANO)))
            cache_reasoner_work(self.cache, self._reasoner)
        return self._reasoner

    @property
    def chooser(self) -> Reasoner:
        """The model that chooses among a scene's candidates (PipelineSettings.chooser)."""
        if self._chooser is None:
            model = self.settings.chooser
            if model == "auto":
                fell_back = same_folder(self.reasoner.settings.model, SHIPPED_NANO)  # also given as --vlm models/...
                if not (fell_back and (SHIPPED_NANO_CHOOSER / "config.json").is_file()):
                    return self.reasoner
                model = str(SHIPPED_NANO_CHOOSER)
                self.notes.append(f"choosing among candidates with the shipped scene-r1-nano-v2 ({model})")
            self._chooser = Reasoner(replace(self.settings.vlm_settings(), model=model))
            cache_reasoner_work(self.cache, self._chooser)
        return self._chooser

    def _make_tracker(self) -> Tracker:
        from ..models.segmenters import make_segmenter

        settings = self.settings
        tracker = make_segmenter(settings.segmenter, settings.tracker, settings.device, settings.dtype, self.notes)
        self.notes.append(f"segmenter: {tracker.name}")
        return tracker

    # ---- grounding --------------------------------------------------------------------------
    def ground(
        self,
        scene: Scene,
        query: str,
        every: bool | None = None,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
    ) -> QueryResult:
        with self._lock, self.cache.for_scene(scene_key(scene)):
            every = wants_every_instance(query) if every is None else every
            if uses_candidates(self.settings.grounding, scene):  # the candidates' own masks: no segmenter
                _check(cancel)
                return ground_by_candidates(self, scene, query, every, progress or _quiet)
            self.warmer.remember(scene, self.tracker)
            return self._ground(scene, query, every, progress or _quiet, cancel)

    def model_seconds(self) -> float:
        """Seconds spent so far inside model forward passes (VLM generation, SAM2)."""
        models = (self._reasoner, self._chooser, self.tracker)
        return sum(getattr(model, "model_seconds", 0.0) for model in models)

    def _ground(self, scene, query, every, progress, cancel) -> QueryResult:
        _ = self.reasoner  # loaded (or its fallback chosen, with a note) before the result copies the notes
        result = QueryResult(query=query, scene=scene.name, notes=list(self.notes))
        total_start, model_start = time.perf_counter(), self.model_seconds()

        _check(cancel)
        progress("temporal", 0, 1)
        start = time.perf_counter()
        try:
            generation, span = self.reasoner.temporal_grounding(scene, query)
            result.stages["temporal"] = stage_report(generation) | {"span": [round(span[0], 3), round(span[1], 3)]}
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
        result.stages["image"] = candidates[key] | {
            "key_frame": key,
            "candidates": {
                str(k): {n: c[n] for n in ("confidence", "visibility", "score", "boxes") if n in c}
                for k, c in candidates.items()
            },
        }
        result.timings["image"] = time.perf_counter() - start

        result.instances = self.track_and_lift(scene, key, boxes, query, progress, cancel, result)
        if not any(i.mask3d is not None for i in result.instances):
            result.notes.append("no instance could be lifted into 3D: " + "; ".join(i.error for i in result.instances))
        result.timings["total"] = time.perf_counter() - total_start
        result.timings["model"] = self.model_seconds() - model_start
        return result

    def track_and_lift(
        self,
        scene: Scene,
        key: int,
        boxes: list,
        query: str = "",
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        result: QueryResult | None = None,
        points=None,
        box_given: bool = True,
    ) -> list[Instance]:
        """Stages 3 and 4 for boxes on a key frame: one tracked, lifted Instance per box. Also the
        box-prompt path (a user's rectangle instead of the model's box, and/or `points`: click
        prompts [x, y, label]; with box_given False the box only records where the clicks are)."""
        progress = progress or _quiet
        stages = result.stages if result is not None else {}
        timings = result.timings if result is not None else {}
        start = time.perf_counter()
        views = ViewSettings(self.settings.view_step_m, self.settings.view_step_deg)
        frames = select_views(scene.poses, key, views, candidates=range(0, len(scene), self.settings.track_stride))
        if hasattr(self.tracker, "key_frame_views"):  # its key frames come from the scene's own few views
            frames = sorted(set(frames) | set(self.tracker.key_frame_views(scene)))
        instances, tracked_masks = [], []
        for number, parsed in enumerate(boxes):
            _check(cancel)

            def tracked(done, total, number=number):
                _check(cancel)
                progress("tracking", number * total + done, len(boxes) * total)

            try:
                extra = {} if points is None else {"points": points}  # clicks: the box-prompt path only
                box = parsed.box if box_given else None
                masks, error = self.tracker.track(scene, key, box, frames, progress=tracked, **extra), ""
            except SceneError as failure:  # e.g. nothing but background inside the box
                masks, error = {}, f"tracking: {failure}"
            instances.append(Instance(parsed.label or query, list(parsed.box), masks_to_rle(masks), None, error))
            tracked_masks.append(masks)
        stages["tracking"] = {
            "tracker": self.tracker.name,
            "frames": len(frames),
            "frames_total": len(scene),
            "instances": len(boxes),
        }
        if hasattr(self.tracker, "key_frames_used"):  # the frames that voted: key frames and those between
            stages["tracking"]["key_frames"] = list(self.tracker.key_frames_used)
            stages["tracking"]["between_frames"] = list(self.tracker.between_frames_used)
            stages["tracking"]["between_frames_tried"] = list(self.tracker.between_frames_tried)
        timings["tracking"] = time.perf_counter() - start

        start = time.perf_counter()
        self._lift_instances(scene, instances, tracked_masks, progress, cancel)
        lifted = [i for i in instances if i.mask3d is not None]
        stages["lifting"] = {"instances": len(lifted), "points": [int(len(i.mask3d.points)) for i in lifted]}
        timings["lifting"] = time.perf_counter() - start
        return instances

    def _lift_instances(self, scene, instances: list[Instance], tracked_masks: list, progress, cancel) -> None:
        """Stage 4: each tracked instance's masks voted into a 3D mask; duplicates dropped."""
        for number, (instance, masks) in enumerate(zip(instances, tracked_masks)):
            _check(cancel)
            progress("lifting", number, len(instances))
            if instance.error:
                continue
            try:
                instance.mask3d = mask_to_3d(scene, masks, vote=self._vote)
            except SceneError as error:
                instance.error = f"lifting: {error}"
        _drop_duplicates(instances)
        progress("lifting", len(instances), len(instances))

    def _key_frame(self, scene, query, span, every, progress, cancel):
        """Ask for a box on a few frames of the span; keep the one with the best
        confidence x visibility (the model's own token probability of its answer, times the share
        of valid depth in the box, halved when the box is cut by the image border)."""
        inside = [i for i, t in enumerate(scene.timestamps) if span[0] - 1e-6 <= t <= span[1] + 1e-6]
        if not inside:
            inside = [scene.frame_at_time((span[0] + span[1]) / 2)]
        count = min(self.settings.key_frame_candidates, len(inside))
        picks = sorted(
            {inside[int(round(p))] for p in np.linspace(0, len(inside) - 1, count + 2)[1:-1]}
            if len(inside) > 2
            else set(inside)
        )
        views = [v for v in self.warmer.views if inside[0] <= v <= inside[-1]]
        reach = len(inside) / (2 * (count + 1))  # half the spacing of the picks: they stay spread over the span
        if views:  # the nearest of the scene's views: their embeddings are encoded in the background
            nearest = {p: min(views, key=lambda v, p=p: (abs(v - p), v)) for p in picks}
            picks = sorted({v if abs(v - p) <= reach else p for p, v in nearest.items()})
        candidates, best, turns = {}, None, upright_turns(scene.poses)
        for number, index in enumerate(picks):
            _check(cancel)
            progress("image", number, len(picks))
            frame = scene.frame(index)
            try:
                generation, boxes = self.reasoner.image_grounding(frame.rgb, query, every=every, turns=turns)
            except ParseError as error:
                candidates[index] = {"error": str(error)}
                continue
            visibility = float(np.mean([box_visibility(frame, b.box) for b in boxes]))
            score = generation.confidence * visibility
            candidates[index] = stage_report(generation) | {
                "confidence": round(generation.confidence, 4),
                "visibility": round(visibility, 4),
                "score": round(score, 4),
                "boxes": [{"bbox_2d": [round(v, 2) for v in b.box], "label": b.label} for b in boxes],
            }
            if best is None or score > best[0]:
                best = (score, index, boxes if every else boxes[:1])
        progress("image", len(picks), len(picks))
        if best is None:
            reasons = "; ".join(c["error"] for c in candidates.values())
            raise ParseError(f"no usable box for {query!r} on frames {picks}: {reasons}")
        return best[1], best[2], candidates

    def lift(
        self,
        scene: Scene,
        frame: int,
        box,
        progress: Progress | None = None,
        cancel: threading.Event | None = None,
        points=None,
    ) -> QueryResult:
        """The box-prompt path: a user's rectangle and/or clicks ([x, y, label] rows, label 1 on
        the object, 0 not) on one frame -> the object in 3D."""
        from ..geometry.segmentation import check_points, prompt_box

        with self._lock, self.cache.for_scene(scene_key(scene)):
            self.warmer.remember(scene, self.tracker)
            frame = scene.check_index(frame)
            size = scene.intrinsics_at(frame).size
            points = None if points is None or len(points) == 0 else check_points(points, size)
            box_given = box is not None
            box = tuple(float(v) for v in prompt_box(box, points, size))
            result = QueryResult(query="", scene=scene.name, mode=LIFT, key_frame=frame, notes=list(self.notes))
            start = time.perf_counter()
            result.instances = self.track_and_lift(
                scene, frame, [ParsedBox(box, "")], "", progress, cancel, result, points, box_given
            )
            result.timings["total"] = time.perf_counter() - start
            if result.instances[0].mask3d is None:
                raise SceneError(
                    f"nothing could be lifted from box {[round(v) for v in box]} on frame {frame}: "
                    f"{result.instances[0].error}"
                )
            return result

    # ---- VQA ----------------------------------------------------------------------------------
    def ask(
        self, scene: Scene, question: str, progress: Progress | None = None, cancel: threading.Event | None = None
    ) -> QueryResult:
        with self._lock, self.cache.for_scene(scene_key(scene)):
            _check(cancel)
            progress = progress or _quiet
            progress("answer", 0, 1)
            if uses_candidates(self.settings.grounding, scene):
                return ask_by_candidates(self, scene, question, progress)
            start, model_start = time.perf_counter(), self.model_seconds()
            generation = self.reasoner.answer_question(scene, question)
            if not generation.reply.answer:
                raise ParseError(f"the model gave no answer to {question!r}: {generation.reply.text[:200]!r}")
            result = QueryResult(
                query=question, scene=scene.name, mode=ASK, answer=generation.reply.answer, notes=list(self.notes)
            )
            result.stages["answer"] = stage_report(generation)
            result.timings["answer"] = result.timings["total"] = time.perf_counter() - start
            result.timings["model"] = self.model_seconds() - model_start
            progress("answer", 1, 1)
            return result


def _drop_duplicates(instances: list[Instance], threshold: float = 0.5) -> None:
    """Two boxes of one object (a model listing it twice) lift to the same 3D mask: keep one."""
    kept: list[Instance] = []
    for instance in instances:
        if instance.mask3d is not None and any(
            k.mask3d is not None and box_iou_3d(k.mask3d.aabb, instance.mask3d.aabb) > threshold for k in kept
        ):
            instance.mask3d, instance.error = None, "duplicate of an earlier instance"
        kept.append(instance)


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("cancelled")


def _quiet(stage: str, done: int, total: int) -> None:
    pass
