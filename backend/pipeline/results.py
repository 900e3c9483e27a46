"""The pipeline's result and the one writer of result.json and the mask PLY."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import open3d as o3d

from ...shared.scene import Scene, SceneError
from ..geometry.mask3d import Mask3D, lift_from_box
from ..models.reasoner import Generation


def mask_to_rle(mask: np.ndarray) -> dict:
    """COCO RLE (pycocotools' compressed form, counts as text)."""
    from pycocotools import mask as coco

    rle = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def rle_to_mask(rle: dict) -> np.ndarray:
    from pycocotools import mask as coco

    return coco.decode({"size": rle["size"], "counts": rle["counts"].encode("ascii")}).astype(bool)


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
        out = {
            "label": self.label,
            "box_2d": [round(v, 2) for v in self.box_2d],
            "masks_2d": {str(i): mask_to_rle(m) for i, m in sorted(self.masks.items()) if m.any()},
        }
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
        out = {
            "query": self.query,
            "scene": self.scene,
            "mode": self.mode,
            "stages": self.stages,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "notes": self.notes,
        }
        if self.mode == "ask":
            out["answer"] = self.answer
            return out
        out |= {
            "span": list(self.span) if self.span else None,
            "key_frame": self.key_frame,
            "instances": [i.to_json() for i in self.instances],
        }
        first = next((i for i in self.instances if i.mask3d is not None), None)
        if first is not None:  # the single-object view most tools want
            out |= {
                "box_2d": first.box_2d,
                "box_3d": first.mask3d.aabb.round(5).tolist(),
                "score": round(float(first.mask3d.confidence.mean()), 4),
            }
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
            cloud.point["colors"] = o3d.core.Tensor(
                np.stack([np.ones_like(confidence), 1 - confidence, np.zeros_like(confidence)], 1)
            )
            if not o3d.t.io.write_point_cloud(str(out / "mask.ply"), cloud):
                raise SceneError(f"could not write {out / 'mask.ply'}")
            result["mask_ply"] = "mask.ply"
        (out / "result.json").write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
        return result


def write_mask_ply(path, mask: Mask3D) -> None:
    """The 3D mask as a PLY point cloud with a per-point `confidence` property."""
    cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(mask.points.astype(np.float32)))
    cloud.point["confidence"] = o3d.core.Tensor(mask.confidence.astype(np.float32)[:, None])
    colours = np.stack([np.ones_like(mask.confidence), 1 - mask.confidence, np.zeros_like(mask.confidence)], 1)
    cloud.point["colors"] = o3d.core.Tensor(colours.astype(np.float32))
    if not o3d.t.io.write_point_cloud(str(path), cloud):
        raise SceneError(f"could not write {path}")


def lift_to_folder(scene: Scene, frame_index: int, box, out, fuse: bool = False) -> dict:
    """`scene-r1 lift`: write OUT/result.json and OUT/mask.ply for one box on one frame.

    With `fuse`, the scene is also TSDF-fused into OUT/scene_mesh.ply and the mask is given as
    indices of that mesh's vertices (result.json "scene_vertex_indices").
    """
    from .fusion import FusionSettings, fuse_scene
    from .neighbours import indices_near  # fusion needs Open3D's TSDF only when asked

    out = Path(out)
    start = time.perf_counter()
    mask = lift_from_box(scene, frame_index, box)
    result = {
        "scene": scene.name,
        "mode": "lift-from-box",
        "frame": int(frame_index),
        "box_2d": [float(b) for b in box],
    } | mask.to_json()
    out.mkdir(parents=True, exist_ok=True)
    if fuse:
        fuse_start = time.perf_counter()
        settings = FusionSettings(frame_stride=max(1, len(scene) // 100))
        fused = fuse_scene(scene, settings)
        indices = indices_near(fused.mesh_vertices, mask.points, 1.5 * settings.voxel)
        if not o3d.io.write_triangle_mesh(str(out / "scene_mesh.ply"), fused.triangle_mesh()):
            raise SceneError(f"could not write {out / 'scene_mesh.ply'}")
        result["scene_mesh"] = "scene_mesh.ply"
        result["scene_vertex_indices"] = indices.tolist()
        result["timings"]["fuse"] = round(time.perf_counter() - fuse_start, 4)
    result["timings"]["total"] = round(time.perf_counter() - start, 4)
    write_mask_ply(out / "mask.ply", mask)
    (out / "result.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    return result
