"""Every export of a scan's results in one call: the objects as GLB and USDZ, ScanNet's files, COCO
JSON with the frames it names. Used by `scene-r1 export`, `scene-r1 label` and the viewer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...shared.results import QueryResult, result_from_wire
from ...shared.scene import Scene, SceneError
from ..data import images
from ..geometry.neighbours import near_points
from ..geometry.upright import scan_up
from .coco import CocoBuilder
from .names import safe_stem
from .objects import cut_object, usd_problems, write_glb, write_usdz
from .scannet import write_scannet

FORMATS = ("glb", "usdz", "scannet", "coco")
VERTEX_RADIUS = 0.03  # metres: a scan vertex this close to a mask point belongs to the object
MAX_EXPORT_DEPTH = 20.0  # metres: depth fused for exports at most (a window's far readings cost memory)


@dataclass
class LabelledObject:
    label: str  # the class asked for (or the model's label)
    score: float  # mean confidence of its 3D points
    points: np.ndarray
    masks_2d: dict[int, dict] = field(default_factory=dict)  # frame -> COCO RLE


def labelled_objects(results: list[tuple[str, QueryResult]]) -> list[LabelledObject]:
    """(class, result) pairs -> every lifted instance, labelled with its class."""
    return [
        LabelledObject(
            label or instance.label or "object",
            instance.mask3d.mean_confidence,
            np.asarray(instance.mask3d.points),
            dict(instance.masks_2d),
        )
        for label, result in results
        for instance in result.lifted
    ]


def assign_vertices(
    vertices: np.ndarray, objects: list[LabelledObject], radius: float = VERTEX_RADIUS, claimed: list | None = None
) -> np.ndarray:
    """Per scan vertex: k + 1 for object k whose points lie within `radius`, 0 for none; where two
    objects claim a vertex, the more confident one keeps it. `claimed`, when given, receives per
    object how many vertices lay near it before any was taken by another."""
    ids = np.zeros(len(vertices), np.int64)
    counts = [0] * len(objects)
    for k in sorted(range(len(objects)), key=lambda k: -objects[k].score):
        near = near_points(vertices, objects[k].points, radius)
        ids[near & (ids == 0)] = k + 1
        counts[k] = int(near.sum())
    if claimed is not None:
        claimed[:] = counts
    return ids


def fuse_for_export(scene: Scene):
    """The scan's TSDF mesh with its vertices and faces in a canonical order: Open3D's parallel
    marching cubes lists them in an order that depends on its thread count, and exported vertex
    indices (ScanNet's segs.json, labels.ply) must not. The mesh depends on the scan alone (not on
    what was found in it), so two labellings of one scan share its vertices."""
    from ..geometry.fusion import FusionSettings, fuse_scene

    stride = max(1, len(scene) // 100)
    depth_max = max(FusionSettings.depth_max, scan_reach(scene, range(0, len(scene), stride)))
    fused = fuse_scene(scene, FusionSettings(frame_stride=stride, depth_max=depth_max))
    vertices, triangles = fused.mesh_vertices, fused.mesh_triangles
    order = np.lexsort(vertices.T[::-1])  # by x, then y, then z
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    faces = rank[triangles]
    faces = np.take_along_axis(faces, (np.argmin(faces, axis=1)[:, None] + np.arange(3)) % 3, axis=1)  # same winding
    faces = faces[np.lexsort(faces.T[::-1])]
    fused.mesh_vertices, fused.mesh_colors = vertices[order], fused.mesh_colors[order]
    fused.mesh_triangles = faces.astype(np.int32)
    return fused


def scan_reach(scene: Scene, frames, samples: int = 24) -> float:
    """Metres of depth the export's mesh covers: the 99th percentile of valid depth in up to `samples`
    of `frames`, plus 10 cm, at most MAX_EXPORT_DEPTH. An object is lifted from depth of any range,
    so one seen only from 5 m away must not fall outside a mesh fused to 4 m."""
    frames = list(frames)
    picked = frames[:: max(1, len(frames) // samples)]
    reach = 0.0
    for index in picked:
        depth = scene.frame(index).depth
        valid = depth[np.isfinite(depth) & (depth > 0)]
        if valid.size:
            reach = max(reach, float(np.percentile(valid, 99)))
    return min(reach + 0.1, MAX_EXPORT_DEPTH)


def export_scan(
    scene: Scene,
    objects: list[LabelledObject],
    out,
    classes: list[str] | None = None,
    fused=None,
    formats=FORMATS,
    name: str | None = None,
) -> dict:
    """Write the chosen exports of `objects` (found in `scene`) into `out`; returns the manifest
    (also written as out/export.json)."""
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise SceneError(f"unknown export format(s) {', '.join(sorted(unknown))}; known: {', '.join(FORMATS)}")
    out, name = Path(out), safe_stem(name or scene.name)
    out.mkdir(parents=True, exist_ok=True)
    classes = list(classes or dict.fromkeys(o.label for o in objects))
    fused = fused if fused is not None else fuse_for_export(scene)
    claimed: list[int] = []
    ids = assign_vertices(fused.mesh_vertices, objects, claimed=claimed)
    # An object whose every vertex a more confident one took is the same object found twice (under
    # another class): ScanNet's files have no group for it, and COCO leaves it out too.
    duplicate = [claimed[k - 1] > 0 and not (ids == k).any() for k in range(1, len(objects) + 1)]
    manifest = {"scene": name, "classes": classes, "objects": [], "files": {}}
    up = scan_up(scene.poses)
    for k, obj in enumerate(objects, 1):
        entry = {
            "object_id": k - 1,
            "label": obj.label,
            "score": round(obj.score, 4),
            "vertices": int((ids == k).sum()),
        }
        if duplicate[k - 1]:
            entry["duplicate"] = True
        if {"glb", "usdz"} & set(formats):
            entry |= _write_object(
                fused, obj, ids == k, up, out / "objects" / f"{k - 1:03d}_{safe_stem(obj.label, 'object')}", formats
            )
        manifest["objects"].append(entry)
    if "scannet" in formats:
        class_ids = {c: i for i, c in enumerate(classes, 1)}
        files = write_scannet(
            out / "scannet",
            name,
            fused.mesh_vertices,
            fused.mesh_triangles,
            fused.mesh_colors,
            ids,
            [{"label": o.label, "score": o.score} for o in objects],
            class_ids,
        )
        manifest["files"]["scannet"] = {k: str(p.relative_to(out)) for k, p in files.items()}
        manifest["class_ids"] = class_ids
    if "coco" in formats:
        kept = [(k, o) for k, o in enumerate(objects) if not duplicate[k]]
        manifest["files"]["coco"] = str(_write_coco(scene, kept, classes, out, name).relative_to(out))
    (out / "export.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    return manifest


def _write_object(fused, obj: LabelledObject, on_object: np.ndarray, up, stem: Path, formats) -> dict:
    stem.parent.mkdir(parents=True, exist_ok=True)
    # the vertices the object owns (not those a more confident neighbour took), as points to cut by
    try:
        mesh = cut_object(
            fused.mesh_vertices,
            fused.mesh_triangles,
            fused.mesh_colors,
            fused.mesh_vertices[on_object],
            obj.label,
            up,
            radius=1e-4,
        )
    except SceneError as error:
        return {"error": str(error)}
    entry = {"faces": int(len(mesh.triangles)), "object_to_world": np.round(mesh.object_to_world, 6).tolist()}
    if "glb" in formats:
        entry["glb"] = str(write_glb(mesh, stem.with_suffix(".glb")).relative_to(stem.parent.parent))
    if "usdz" in formats:
        usdz = write_usdz(mesh, stem.with_suffix(".usdz"))
        entry["usdz"], entry["usd_problems"] = str(usdz.relative_to(stem.parent.parent)), usd_problems(usdz)
    return entry


def _write_coco(scene: Scene, objects: list[tuple[int, LabelledObject]], classes, out: Path, name: str) -> Path:
    """COCO JSON of (object id, object) pairs, with the frames their masks lie on."""
    builder = CocoBuilder(classes)
    for k, obj in objects:
        builder.add_object(name, scene.color_size, obj.label, obj.score, k, obj.masks_2d, scene.frame_numbers)
    (out / "frames").mkdir(parents=True, exist_ok=True)
    for image in builder.frames_of(name):
        images.write_color(out / image["file_name"], scene.frame(image["frame_index"]).rgb)
    return builder.write(out / "coco.json")


def check_result_fits(result: QueryResult, scene: Scene, what: str = "the result does not fit the scan") -> str:
    """A result's masks must lie on `scene`'s frames (a SceneError beginning with `what` otherwise);
    a result found in a scan of another name whose masks fit (a renamed folder, the same capture
    copied) is allowed, and the note saying so is returned ("" when the names agree)."""
    sizes = {(h, w) for w, h in (scene.color_size, scene.depth_size)}
    for instance in result.lifted:
        for frame, rle in instance.masks_2d.items():
            if not 0 <= int(frame) < len(scene) or tuple(rle.get("size", ())) not in sizes:
                raise SceneError(
                    f"{what}: its masks lie on frame {frame} of a {rle.get('size')} image, the scan has "
                    f"{len(scene)} frames of {scene.color_size[0]}x{scene.color_size[1]} (the result was found "
                    f"in scene {result.scene!r}; export a result with the scan it came from)"
                )
    if result.scene and result.scene != scene.name:
        return f"was found in scene {result.scene!r}, not {scene.name!r}; its masks fit this scan"
    return ""


def read_result(folder) -> QueryResult:
    """A result folder written by `scene-r1 ground/lift` (result.json + mask.ply) as a QueryResult."""
    import open3d as o3d

    folder = Path(folder)
    try:
        payload = json.loads((folder / "result.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SceneError(f"{folder} holds no result.json (a folder written by scene-r1 ground or lift)") from None
    except (ValueError, UnicodeDecodeError) as error:
        raise SceneError(f"{folder / 'result.json'} is not valid JSON: {error}") from None
    arrays = {}
    if (folder / "mask.ply").is_file():
        cloud = o3d.t.io.read_point_cloud(str(folder / "mask.ply"))
        points = cloud.point.positions.numpy()
        number = cloud.point["instance"].numpy().reshape(-1) if "instance" in cloud.point else np.zeros(len(points))
        confidence = cloud.point["confidence"].numpy().reshape(-1) if "confidence" in cloud.point else None
        lifted = [i for i, data in enumerate(payload.get("instances", [])) if "mask_3d" in data]
        for k, index in enumerate(lifted):  # mask.ply numbers the lifted instances 0, 1, ...
            arrays[f"points/{index}"] = points[number == k]
            arrays[f"confidence/{index}"] = (
                confidence[number == k] if confidence is not None else np.ones((number == k).sum())
            )
    try:
        return result_from_wire(payload, arrays)
    except ValueError as error:
        raise SceneError(f"{folder / 'result.json'}: {error}") from None
