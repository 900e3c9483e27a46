"""Building results (shared.results.QueryResult) from the pipeline's stages, and the one writer of
result.json and the mask PLY beside it."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import open3d as o3d

from ...shared.results import LIFT, Instance, Mask3D, QueryResult
from ...shared.scene import Scene, SceneError
from ..geometry.frame_selection import ViewSettings, select_views
from ..geometry.mask3d import lift_from_box, mask_to_3d
from ..geometry.tracking import GeometricTracker
from ..models.reasoner import Generation


def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO RLE (pycocotools' compressed form, counts as text)."""
    from pycocotools import mask as coco

    rle = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_to_mask(rle: dict) -> np.ndarray:
    from pycocotools import mask as coco

    return coco.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)


def masks_to_rle(masks: dict[int, np.ndarray]) -> dict[int, dict]:
    """Per-frame masks as COCO RLE, empty frames left out."""
    return {int(k): mask_to_rle(m) for k, m in sorted(masks.items()) if m.any()}


def stage_report(generation: Generation) -> dict:
    """One model stage's entry in QueryResult.stages."""
    return {
        "reasoning": generation.reply.think,
        "answer": generation.reply.answer,
        "raw": generation.reply.text,
        "well_formed": generation.reply.well_formed,
        "constrained": generation.constrained,
        "confidence": round(generation.confidence, 4),
        "seconds": round(generation.seconds, 4),
    }


def write_points_ply(path, masks: list[Mask3D]) -> None:
    """3D masks as one PLY point cloud with per-point `confidence` and `instance` properties,
    coloured from yellow (few frames agree) to red (all agree)."""
    points = np.concatenate([m.points for m in masks]).astype(np.float32)
    confidence = np.concatenate([m.confidence for m in masks]).astype(np.float32)
    instance = np.concatenate([np.full(len(m.points), k, np.int32) for k, m in enumerate(masks)])
    cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(points))
    cloud.point["confidence"] = o3d.core.Tensor(confidence[:, None])
    cloud.point["instance"] = o3d.core.Tensor(instance[:, None])
    colours = np.stack([np.ones_like(confidence), 1 - confidence, np.zeros_like(confidence)], 1)
    cloud.point["colors"] = o3d.core.Tensor(colours.astype(np.float32))
    if not o3d.t.io.write_point_cloud(str(path), cloud):
        raise SceneError(f"could not write {path}")


def write_result(result: QueryResult, out, extra: dict | None = None, frame_numbers=None) -> dict:
    """OUT/result.json and, when anything was lifted, OUT/mask.ply (all instances' points, with an
    `instance` property). Returns what result.json holds. Frames in a result are indices into the
    scene; `frame_numbers` (the scene's) adds the capture's own numbers when they differ from the
    indices (7-Scenes' every 20th frame, a ScanNet export with dropped frames), as `--frame` takes them."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise SceneError(f"--out {out} is a file, not a folder")
    written = result.to_json() | (extra or {})
    numbers = None if frame_numbers is None else [int(n) for n in frame_numbers]
    if numbers is not None and numbers != list(range(len(numbers))):
        written["frame_numbers"] = numbers  # index -> the capture's frame number
        if result.key_frame is not None and 0 <= result.key_frame < len(numbers):
            written["key_frame_number"] = numbers[result.key_frame]
    if result.lifted:
        written["mask_ply"] = "mask.ply"
    # Encoded before anything is written, so text that cannot be saved leaves no half result.
    data = json.dumps(written, indent=1, ensure_ascii=False).encode("utf-8", errors="backslashreplace")
    out.mkdir(parents=True, exist_ok=True)
    if result.lifted:
        write_points_ply(out / "mask.ply", [i.mask3d for i in result.lifted])
    partial = out / "result.json.partial"
    partial.write_bytes(data)
    partial.replace(out / "result.json")  # result.json appears whole or not at all
    return written


def lift_to_folder(
    scene: Scene,
    frame_index: int,
    box,
    out,
    fuse: bool = False,
    views: ViewSettings = ViewSettings(),
    segmenter=None,
    points=None,
    notes=(),
) -> dict:
    """`scene-r1 lift`: one box and/or clicks ([x, y, label]) on one frame, segmented and tracked by
    `segmenter` (default: the geometric one, no learned weights), lifted, written to OUT.

    The views selected by camera motion (`views`) are tracked, voted and, with `fuse`, TSDF-fused
    into OUT/scene_mesh.ply, the mask then also given as indices of that mesh's vertices
    (result.json "scene_vertex_indices"); "frames_used" lists those views.
    """
    from ..geometry.fusion import FusionSettings, fuse_scene  # Open3D's TSDF only when asked
    from ..geometry.neighbours import indices_near
    from ..geometry.segmentation import check_points, prompt_box

    start = time.perf_counter()
    size = scene.intrinsics_at(frame_index).size
    points = None if points is None or len(points) == 0 else check_points(points, size)
    masks_2d = {}
    if segmenter is None and points is None:
        mask = lift_from_box(scene, frame_index, box, views=views)
        name = "geometric"
    else:
        segmenter = segmenter or GeometricTracker()
        track_start = time.perf_counter()
        frames = select_views(scene.poses, scene.check_index(frame_index), views)
        masks = segmenter.track(scene, frame_index, box, frames, points=points)
        mask = mask_to_3d(scene, masks)
        masks_2d = masks_to_rle(masks)  # kept, as `ground` keeps them: COCO exports are made of them
        mask.timings = {"track": time.perf_counter() - track_start} | mask.timings
        name = segmenter.name
    box = prompt_box(box, points, size)
    result = QueryResult(
        query="", scene=scene.name, mode=LIFT, key_frame=int(frame_index), notes=[*notes, f"segmenter: {name}"]
    )
    result.instances = [Instance(label="", box_2d=[float(b) for b in box], masks_2d=masks_2d, mask3d=mask)]
    result.timings = dict(mask.timings)
    # The keys `scene-r1 lift` has always written at the top level, beside the common result.
    extra = {"frame": int(frame_index), "frames_total": len(scene)}
    extra |= {k: v for k, v in mask.to_json().items() if k != "timings"}
    if fuse:
        Path(out).mkdir(parents=True, exist_ok=True)
        fuse_start = time.perf_counter()
        settings = FusionSettings()
        fused = fuse_scene(scene, settings, frames=mask.frames_used)
        indices = indices_near(fused.mesh_vertices, mask.points, 1.5 * settings.voxel)
        if not o3d.io.write_triangle_mesh(str(Path(out) / "scene_mesh.ply"), fused.triangle_mesh()):
            raise SceneError(f"could not write {Path(out) / 'scene_mesh.ply'}")
        extra |= {"scene_mesh": "scene_mesh.ply", "scene_vertex_indices": indices.tolist()}
        result.timings["fuse"] = time.perf_counter() - fuse_start
    result.timings["total"] = time.perf_counter() - start
    return write_result(result, out, extra, scene.frame_numbers)
