"""The segmenters a box or click prompt can run on, behind one interface (geometry.tracking.Tracker):

- "sam2": SAM2's video predictor (models/sam2.py), when the user has its weights;
- "mobile_sam": MobileSAM on a few key frames chosen for coverage, re-prompted with the 3D mask lifted
  so far, and geometric propagation between them (MobileSamTracker below): the default without SAM2;
- "geometric": depth segmentation and re-projection, no learned weights (geometry/tracking.py);
- "auto": the first of those three that loads here.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ...shared.defaults import DEFAULT_TRACKER
from ...shared.scene import Scene, SceneError
from ..geometry.keyframes import (
    KeyFrameSettings,
    key_frame_pool,
    key_frame_views,
    main_cluster,
    next_key_frame,
    prompt_for,
    spread_views,
    view_of,
    view_score,
)
from ..geometry.lifting import LiftSettings, lift_masks, masked_points, resize_mask, voxel_average
from ..geometry.segmentation import check_points, prompt_box
from ..geometry.tracking import GeometricTracker, Tracker, TrackSettings, follow_points
from .loading import ModelError
from .mobile_sam import EmbeddingCache, MobileSam

SEGMENTERS = ("auto", "sam2", "mobile_sam", "geometric")


@dataclass(frozen=True)
class MobileSamSettings:
    device: str = "cpu"
    key_frames: KeyFrameSettings = field(default_factory=KeyFrameSettings)
    min_score: float = 0.6  # decoder's IoU estimate under which a key-frame mask is not trusted
    max_area_ratio: float = 3.0  # a key-frame mask this many times larger/smaller than the projection is a miss
    between: bool = True  # geometric propagation on the frames between key frames
    # Frames between key frames that are segmented, spread over the sides the object is seen from
    # (keyframes.spread_views); None: every tracked frame that sees it (still subject to
    # between_trials). On the real kitchen 12 re-project onto the hand-drawn boxes as well as all 32
    # did (docs/performance.md).
    between_views: int | None = 12
    # When this many frames tried (the most different first) all disagree with the projection, depth
    # segmentation does not work for this object (a concave sink, a magazine flat on the table) and
    # no more are tried: on the kitchen's 8 hand-drawn objects and 31 synthetic ones, no frame was
    # ever kept after 4 first refusals (the rule was set on those same objects). None: never stop.
    between_trials: int | None = 4
    min_agreement: float = 0.5  # IoU of a between-frame depth mask with the projected 3D mask, to keep it
    use_mask_prompt: bool = True  # the projected mask as the decoder's mask input

    def __post_init__(self):
        if self.between_views is not None and self.between_views < 0:
            raise SceneError(f"between_views must be >= 0 or None, got {self.between_views}")
        if self.between_trials is not None and self.between_trials < 1:
            raise SceneError(f"between_trials must be >= 1 or None, got {self.between_trials}")


class MobileSamTracker:
    """MobileSAM on key frames, geometry between them (see the module's docstring)."""

    name = "mobile_sam"

    def __init__(
        self,
        settings: MobileSamSettings = MobileSamSettings(),
        cache: EmbeddingCache | None = None,
        model: MobileSam | None = None,
    ):
        self.settings = settings
        self.model = model or MobileSam(settings.device, cache)
        self.key_frames_used: list[int] = []
        self.between_frames_used: list[int] = []  # frames between key frames that voted, last track
        self.between_frames_tried: list[int] = []  # ...and those segmented, in the order tried

    def key_frame_views(self, scene: Scene) -> list[int]:
        """The frames key frames come from when they are among the tracked ones (the same for every
        query on `scene`, so their image embeddings are computed once): see key_frame_pool."""
        return key_frame_views(scene.poses, self.settings.key_frames)

    @property
    def model_seconds(self) -> float:
        return self.model.encoder_seconds + self.model.decoder_seconds

    def track(self, scene, key_index, box, frames=None, progress=None, points=None):
        self.key_frames_used, self.between_frames_used, self.between_frames_tried = [], [], []
        key_index = scene.check_index(key_index)
        frames = sorted(set(range(len(scene)) if frames is None else frames) | {key_index})
        pool = key_frame_pool(scene.poses, frames, key_index, self.settings.key_frames)
        scene = HeldFrames(scene, len(pool) + 1)  # each key-frame round reads every candidate
        key = scene.frame(key_index)
        points = None if points is None else check_points(points, key.intrinsics.size)
        box = None if box is None else prompt_box(box, None, key.intrinsics.size)
        if box is None and (points is None or not (points[:, 2] == 1).any()):
            raise SceneError("a prompt needs a box or at least one positive point")
        self.model.set_frame(key_index, key.rgb)
        first = self.model.decode(box, points)
        if not first.mask.any():
            raise SceneError(f"MobileSAM found no object for the prompt on frame {key_index}")
        masks = {key_index: first.mask}
        lift = LiftSettings()
        object_points = main_cluster(voxel_average(masked_points(key, first.mask, lift), lift.voxel))
        if len(object_points) == 0:
            raise SceneError(f"the mask on frame {key_index} covers no valid depth")
        chosen = [view for view in [_view(scene, key_index, object_points)] if view is not None]
        total = self.settings.key_frames.count
        while len(masks) < total:
            if progress is not None:
                progress(len(masks), total + 1)
            candidates = [i for i in pool if i not in masks]
            view = next_key_frame(scene, object_points, candidates, chosen, self.settings.key_frames)
            if view is None:
                break
            chosen.append(view)
            mask = self._segment_view(scene, view)
            if mask is None:
                continue
            masks[view.index] = mask
            object_points = self._points(scene, masks, object_points)
        self.key_frames_used = sorted(masks)
        if self.settings.between:
            masks = self._between(scene, frames, masks, object_points)
        if progress is not None:
            progress(total + 1, total + 1)
        return masks

    def _segment_view(self, scene: Scene, view) -> np.ndarray | None:
        """MobileSAM on one key frame, prompted with the projection of the 3D mask; None when its
        answer disagrees with the projection (a miss is left out rather than forced)."""
        frame = scene.frame(view.index)
        box, points, projected = prompt_for(view, frame.intrinsics.size, self.settings.key_frames)
        self.model.set_frame(view.index, frame.rgb)
        logits = self.model.mask_prompt(projected) if self.settings.use_mask_prompt else None
        decoded = self.model.decode(box, points, logits)
        area, expected = np.count_nonzero(decoded.mask), np.count_nonzero(projected)
        ratio = self.settings.max_area_ratio
        if decoded.score < self.settings.min_score or not expected / ratio <= area <= expected * ratio:
            return None
        return decoded.mask

    @staticmethod
    def _points(scene: Scene, masks: dict[int, np.ndarray], fallback: np.ndarray) -> np.ndarray:
        """The 3D mask the key-frame masks agree on so far (multi-view voting)."""
        try:
            lifted = lift_masks(scene, masks)
        except SceneError:
            return fallback
        return lifted.points if len(lifted.points) >= KeyFrameSettings.min_points else fallback

    def _between(self, scene: Scene, frames, masks: dict[int, np.ndarray], object_points: np.ndarray):
        """Depth segmentation hinted by the projected 3D mask on frames between key frames, kept
        where it agrees with that projection (IoU >= min_agreement): depth alone loses flat objects
        into the table they lie on, and a frame that says "not here" wrongly would outvote the
        model. Of the frames that see the object, `between_views` spread over its sides are
        segmented, the most different first, unless the first `between_trials` tried all disagree;
        frames not tried, not seeing it, or disagreeing keep no mask (no vote)."""
        track, lift, keys = TrackSettings(), LiftSettings(), self.settings.key_frames
        views = {}
        for index in frames:
            if index in masks:
                continue
            view = _view(scene, index, object_points)
            if view is not None and view_score(view, scene.color_size, keys) > 0.0:
                views[index] = view
        seen = [v.direction for v in (_view(scene, i, object_points) for i in sorted(masks)) if v is not None]
        count = len(views) if self.settings.between_views is None else self.settings.between_views
        kept = {}
        for tried, index in enumerate(spread_views(list(views.values()), seen, count)):
            if not kept and self.settings.between_trials is not None and tried >= self.settings.between_trials:
                break
            self.between_frames_tried.append(index)
            frame = scene.frame(index)
            mask = resize_mask(follow_points(frame, object_points, track, lift), frame.intrinsics.size)
            projected = prompt_for(views[index], frame.intrinsics.size, keys)[2]
            overlap = np.count_nonzero(mask & projected) / max(np.count_nonzero(mask | projected), 1)
            if overlap >= self.settings.min_agreement:
                kept[index] = mask
        # The frames between in frame order, so the votes do not depend on the order they were tried in.
        filled = dict(masks) | dict(sorted(kept.items()))
        self.between_frames_used = sorted(set(filled) - set(masks))
        return filled


class HeldFrames:
    """A scene whose last `capacity` decoded frames stay in memory for one tracking call (the
    scene's own cache is sized for streaming, and key-frame rounds revisit every candidate)."""

    def __init__(self, scene: Scene, capacity: int):
        self.scene, self.capacity = scene, capacity
        self._frames: OrderedDict = OrderedDict()

    def frame(self, index: int):
        frame = self._frames.get(index)
        if frame is None:
            frame = self._frames[index] = self.scene.frame(index)
            if len(self._frames) > self.capacity:
                self._frames.popitem(last=False)
        else:
            self._frames.move_to_end(index)
        return frame

    def __len__(self) -> int:
        return len(self.scene)

    def __getattr__(self, name):
        return getattr(self.scene, name)


def _view(scene: Scene, index: int, points: np.ndarray):
    return view_of(scene.frame(index), points)


def make_segmenter(
    choice: str, tracker: str, device: str, dtype: str, notes: list[str], cache: EmbeddingCache | None = None
) -> Tracker:
    """The segmenter for `choice` (one of SEGMENTERS); `tracker` names SAM2's weights (an id or
    folder; "auto" = DEFAULT_TRACKER; "geometric" = the old spelling of the geometric segmenter).
    With "auto", what could not load is said in `notes`. `cache` keeps MobileSAM's image embeddings
    (default: its own LRU; the service may pass its per-scene cache)."""
    if choice not in SEGMENTERS:
        raise SceneError(f"unknown segmenter {choice!r}: choose one of {', '.join(SEGMENTERS)}")
    if choice == "geometric" or (choice == "auto" and tracker == "geometric"):
        return GeometricTracker()
    if choice in ("auto", "sam2"):
        from .sam2 import Sam2Settings, Sam2Tracker

        model = DEFAULT_TRACKER if tracker in ("auto", "geometric") else tracker
        try:
            return Sam2Tracker(Sam2Settings(model=model, device=device, dtype="float32" if dtype == "auto" else dtype))
        except ModelError as error:
            if choice == "sam2":
                raise
            notes.append(f"no SAM2 weights for {model} here ({str(error).splitlines()[0][:200]})")
    try:
        segmenter = MobileSamTracker(MobileSamSettings(device=device), cache)
    except ModelError as error:
        if choice == "mobile_sam":
            raise
        notes.append(f"no MobileSAM here ({str(error).splitlines()[0][:200]}); the geometric segmenter was used")
        return GeometricTracker()
    if choice == "auto":
        notes.append("MobileSAM (key frames + geometric propagation) was used")
    return segmenter
