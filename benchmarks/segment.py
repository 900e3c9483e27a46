"""Segmenter benchmarks, each segmenter side by side.

`scene-r1 bench segment` (real kitchen, 50 frames): seconds per frame for the encoder and decoder, the
key frames used, the time to lift one box (cold, and again with embeddings cached), each against the
geometric segmenter measured in the same run; and the hand-drawn box checks (benchmarks/
redkitchen_boxes.json): lifted from one box, re-projected onto the boxes drawn in other frames.

`segmenter_accuracy` (used by `scene-r1 bench lifting`): on synthetic rooms, 2D mask IoU against the
exact instance maps and 3D Acc@0.25/0.5 per segmenter, and whether 8 identical runs give identical
masks.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from pathlib import Path

import numpy as np

from ..backend.data import DEFAULT_REAL
from ..backend.data.readers import open_scene
from ..backend.data.synth import SynthConfig, build_synthetic
from ..backend.data.synth.generate import visible_boxes
from ..backend.eval.metrics import accuracy_at, box_iou_3d
from ..backend.eval.reprojection import check_box_projection, load_boxes
from ..backend.geometry.lifting import resize_mask
from ..backend.geometry.mask3d import mask_to_3d
from ..backend.models.segmenters import make_segmenter
from ..shared.scene import SceneError

BOXES = Path(__file__).with_name("redkitchen_boxes.json")
TIMED_OBJECT = "white mug"


def available_segmenters() -> dict:
    """name -> segmenter for each one that loads here (a line says why the others do not)."""
    found = {}
    for name in ("geometric", "mobile_sam", "sam2"):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found[name] = make_segmenter(name, "auto", "cpu", "auto", [])
        except SceneError as error:
            print(f"{name:>10}: not run ({str(error).splitlines()[0][:150]})")
    return found


def lift(scene, segmenter, frame: int, box, frames=None):
    masks = segmenter.track(scene, frame, box, frames)
    return masks, mask_to_3d(scene, masks)


def digest(points: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(points).tobytes()).hexdigest()


def box_checks(scene, segmenter) -> tuple[int, int, int, int]:
    """(passed, checks, held-out passed, held-out checks) over the hand-drawn boxes."""
    passed = total = held_passed = held_total = 0
    for obj in load_boxes(BOXES):
        frame, box = obj["prompt"]
        try:
            points = lift(scene, segmenter, frame, box)[1].points
        except SceneError:
            points = np.zeros((0, 3))
        results = [check_box_projection(scene, index, points, drawn) for index, drawn in obj["checks"]]
        ok = sum(r.passed for r in results)
        print(f"    {obj['name']:<16} {'held out' if obj['held_out'] else 'tuned':<8} {ok}/{len(results)}")
        passed, total = passed + ok, total + len(results)
        if obj["held_out"]:
            held_passed, held_total = held_passed + ok, held_total + len(results)
    return passed, total, held_passed, held_total


def run_segment_benchmark(real_dir: Path | None = None) -> None:
    real_dir = Path(real_dir or DEFAULT_REAL)
    if not real_dir.is_dir():
        raise SceneError(f"bench segment needs the real sequence at {real_dir} (or --real FOLDER)")
    scene = open_scene(real_dir)
    obj = next(o for o in load_boxes(BOXES) if o["name"] == TIMED_OBJECT)
    frame, box = obj["prompt"]
    segmenters = available_segmenters()
    print(f"lifting one box ({TIMED_OBJECT}, frame {frame}) on {len(scene)} real frames:")
    baseline = None
    for name, segmenter in segmenters.items():
        start = time.perf_counter()
        masks, mask = lift(scene, segmenter, frame, box)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        lift(scene, segmenter, frame, box)
        warm = time.perf_counter() - start
        baseline = baseline or cold
        model = getattr(segmenter, "model", None)
        keys = getattr(segmenter, "key_frames_used", None)
        line = f"{name:>10}: lift {cold:6.2f} s ({cold / baseline:5.1f}x geometric), again {warm:6.2f} s"
        if model is not None and getattr(model, "encoded", 0):
            line += (
                f"; encoder {model.encoder_seconds / model.encoded:.2f} s/frame ({model.encoded} frames), "
                f"decoder {model.decoder_seconds / max(model.decoded, 1):.3f} s/prompt"
            )
        if keys is not None:
            line += f"; key frames {len(keys)} {keys}"
        print(line + f"; {len(masks)} frames masked, {len(mask.points)} points")
    print("hand-drawn boxes re-projected (centre within 60 px, area ratio 0.4-2.5):")
    for name, segmenter in segmenters.items():
        print(f"  {name}:")
        passed, total, held_passed, held_total = box_checks(scene, segmenter)
        print(
            f"{name:>10}: {passed}/{total} checks pass ({passed / total:.0%}); "
            f"held-out objects {held_passed}/{held_total}"
        )


def _synthetic_rooms(seeds, frames: int):
    for seed in seeds:
        synthetic = build_synthetic(SynthConfig(seed=seed, frames=frames, width=320, height=240))
        instances = [synthetic.scene.instance(i) for i in range(frames)]
        boxes = [visible_boxes(inst, synthetic.config.min_visible_pixels) for inst in instances]
        yield synthetic, instances, boxes


def _mask_iou(masks: dict, instances: list, object_id: int) -> list[float]:
    """IoU of each frame's mask with the exact instance map, over frames where either shows it."""
    ious = []
    for index, truth in enumerate(instances):
        truth = truth == object_id
        mask = masks.get(index)
        mask = np.zeros_like(truth) if mask is None else resize_mask(mask, (truth.shape[1], truth.shape[0]))
        union = np.count_nonzero(mask | truth)
        if union:
            ious.append(np.count_nonzero(mask & truth) / union)
    return ious


def segmenter_accuracy(segmenters: dict, seeds=(31, 32), frames: int = 12) -> dict[str, dict]:
    """name -> {"iou_2d": [...], "iou_3d": [...]} on synthetic rooms, one GT box per object (its best view)."""
    scores = {name: {"iou_2d": [], "iou_3d": []} for name in segmenters}
    for synthetic, instances, boxes in _synthetic_rooms(seeds, frames):
        for obj in synthetic.room.objects:
            seen = [(b[obj.id][1], i) for i, b in enumerate(boxes) if obj.id in b]
            if not seen:
                continue
            key = max(seen)[1]
            for name, segmenter in segmenters.items():
                try:
                    masks, mask = lift(synthetic.scene, segmenter, key, boxes[key][obj.id][0])
                    scores[name]["iou_2d"].append(float(np.mean(_mask_iou(masks, instances, obj.id))))
                    scores[name]["iou_3d"].append(box_iou_3d(mask.aabb, obj.aabb))
                except SceneError:
                    scores[name]["iou_2d"].append(0.0)
                    scores[name]["iou_3d"].append(0.0)
    return scores


def identical_runs(segmenter, runs: int = 8) -> bool:
    """The same box on the same real frames `runs` times: the same 3D mask, point for point?"""
    scene = open_scene(DEFAULT_REAL)
    obj = next(o for o in load_boxes(BOXES) if o["name"] == TIMED_OBJECT)
    frame, box = obj["prompt"]
    return len({digest(lift(scene, segmenter, frame, box)[1].points) for _ in range(runs)}) == 1


def print_segmenter_accuracy() -> None:
    segmenters = available_segmenters()
    scores = segmenter_accuracy(segmenters)
    for name, values in scores.items():
        iou_3d = values["iou_3d"]
        print(
            f"segmenter {name:>10}: 2D mask IoU {np.mean(values['iou_2d']):.3f}  3D Acc@0.25 "
            f"{accuracy_at(iou_3d, 0.25):.3f}  Acc@0.5 {accuracy_at(iou_3d, 0.5):.3f}  ({len(iou_3d)} objects)"
        )
    if DEFAULT_REAL.is_dir():
        for name, segmenter in segmenters.items():
            same = identical_runs(segmenter)
            print(f"segmenter {name:>10}: 8 identical runs: identical masks {'yes' if same else 'no'}")
