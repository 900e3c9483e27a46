"""What the viewer draws for a result, and its exports, as plain functions (tested without a window).

Exports of a selected result:
- PLY: the scan's points (fused mesh vertices) with an integer `label` property (0 = background,
  k = the result's instance k) and colours, readable by Open3D and any PLY reader;
- ScanNet instance masks (the ScanNet benchmark's prediction format): `<scene>.txt` listing
  `pred_mask/<scene>_<k>.txt <label_id> <confidence>` per instance, each mask file one 0/1 line
  per scan vertex;
- JSON: the backend's result with the scan-vertex indices of every instance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...shared.results import QueryResult
from ..exports.bundle import safe_stem
from ..geometry.neighbours import indices_near

PALETTE = np.array(
    [[1.0, 0.35, 0.0], [0.1, 0.6, 1.0], [0.2, 0.8, 0.2], [0.9, 0.1, 0.6], [1.0, 0.85, 0.0], [0.5, 0.3, 1.0]]
)


@dataclass
class Drawable:
    name: str
    kind: str  # "points" or "lines"
    points: np.ndarray  # (N, 3)
    colors: np.ndarray  # (N, 3) for points, (L, 3) for lines
    lines: np.ndarray | None = None  # (L, 2) vertex index pairs


def box_lines(aabb) -> tuple[np.ndarray, np.ndarray]:
    """The 12 edges of an axis-aligned box: (8 corners, 12 index pairs)."""
    low, high = np.asarray(aabb, float)
    corners = np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])
    edges = np.array([[0, 1], [2, 3], [4, 5], [6, 7], [0, 2], [1, 3], [4, 6], [5, 7], [0, 4], [1, 5], [2, 6], [3, 7]])
    return corners, edges


def obb_lines(center, extent, rotation) -> tuple[np.ndarray, np.ndarray]:
    corners, edges = box_lines([-np.asarray(extent, float) / 2, np.asarray(extent, float) / 2])
    return corners @ np.asarray(rotation, float).T + np.asarray(center, float), edges


def result_drawables(result: QueryResult, number: int = 0) -> list[Drawable]:
    """For each lifted instance: its mask points (coloured by confidence towards the instance's
    colour), its axis-aligned box, and its oriented box."""
    drawables = []
    for k, instance in enumerate(result.instances):
        mask3d = instance.mask3d
        if mask3d is None:
            continue
        colour = PALETTE[(number + k) % len(PALETTE)]
        points = np.asarray(mask3d.points, float)
        confidence = np.clip(np.asarray(mask3d.confidence, float), 0, 1)[:, None]
        drawables.append(
            Drawable(f"result{number}/instance{k}/points", "points", points, (0.35 + 0.65 * confidence) * colour)
        )
        corners, edges = box_lines(mask3d.aabb)
        drawables.append(
            Drawable(f"result{number}/instance{k}/aabb", "lines", corners, np.tile(colour, (len(edges), 1)), edges)
        )
        if np.any(mask3d.obb_extent):
            corners, edges = obb_lines(mask3d.obb_center, mask3d.obb_extent, mask3d.obb_rotation)
            drawables.append(
                Drawable(
                    f"result{number}/instance{k}/obb", "lines", corners, np.tile(colour * 0.6, (len(edges), 1)), edges
                )
            )
    return drawables


def shows_colour(image: np.ndarray, colour, tolerance: float = 40, at_least: int = 100) -> bool:
    """Whether a screen grab (H, W, 3 of 0..255) has `at_least` pixels within `tolerance` levels of
    `colour` (0..1 RGB): how the viewer knows a drawn result has reached the screen."""
    target = np.asarray(colour, float) * 255
    near = np.all(np.abs(np.asarray(image, float)[..., :3] - target) <= tolerance, axis=-1)
    return int(near.sum()) >= at_least


def vertex_labels(vertices: np.ndarray, result: QueryResult, radius: float = 0.03) -> np.ndarray:
    """Per scan vertex: 0, or k + 1 for the instance k whose mask points lie within `radius`."""
    labels = np.zeros(len(vertices), np.int32)
    for k, instance in enumerate(result.instances):
        if instance.mask3d is not None:
            labels[indices_near(vertices, np.asarray(instance.mask3d.points), radius)] = k + 1
    return labels


def export_ply(path, vertices: np.ndarray, colors: np.ndarray, labels: np.ndarray) -> None:
    import open3d as o3d

    cloud = o3d.t.geometry.PointCloud(o3d.core.Tensor(np.asarray(vertices, np.float32)))
    cloud.point["colors"] = o3d.core.Tensor(np.asarray(colors, np.float32))
    cloud.point["label"] = o3d.core.Tensor(np.asarray(labels, np.int32)[:, None])
    if not o3d.t.io.write_point_cloud(str(path), cloud):
        raise OSError(f"could not write {path}")


def export_scannet_instances(
    folder, scene_name: str, labels: np.ndarray, result: QueryResult, label_id: int = 40
) -> Path:
    """The ScanNet benchmark's instance prediction files (label_id 40: ScanNet's "otherprop")."""
    folder = Path(folder)
    (folder / "pred_mask").mkdir(parents=True, exist_ok=True)
    lines = []
    for k, instance in enumerate(result.instances):
        mask = (labels == k + 1).astype(np.uint8)
        if not mask.any():
            continue
        relative = f"pred_mask/{scene_name}_{k:03d}.txt"
        np.savetxt(folder / relative, mask, fmt="%d")
        confidence = instance.mask3d.mean_confidence if instance.mask3d is not None else 1.0
        lines.append(f"{relative} {label_id} {confidence:.4f}")
    summary = folder / f"{scene_name}.txt"
    summary.write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")
    return summary


def read_scannet_instances(summary) -> list[dict]:
    """Read the ScanNet benchmark's instance prediction format back (as its evaluation script does)."""
    summary = Path(summary)
    out = []
    for line in summary.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        relative, label_id, confidence = line.split()
        out.append(
            {
                "mask": np.loadtxt(summary.parent / relative, dtype=np.int64).reshape(-1) != 0,
                "label_id": int(label_id),
                "confidence": float(confidence),
            }
        )
    return out


def export_json(path, result: QueryResult, labels: np.ndarray) -> None:
    data = result.to_json()
    data["scan_vertex_indices"] = {
        str(k): np.flatnonzero(labels == k + 1).tolist() for k in range(len(result.instances))
    }
    Path(path).write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")


def export_result(
    folder, scene_name: str, vertices, colors, result: QueryResult, radius: float = 0.03, scene=None, fused=None
) -> dict[str, Path]:
    """The three exports of one result into `folder` (named by the scene, made a safe file stem); given
    the scene and its fused mesh, also the objects cut from it as GLB and USDZ, ScanNet's annotation
    files and COCO JSON (FOLDER/objects/)."""
    folder = Path(folder)
    scene_name = safe_stem(scene_name)
    folder.mkdir(parents=True, exist_ok=True)
    labels = vertex_labels(vertices, result, radius)
    export_ply(folder / f"{scene_name}_labels.ply", vertices, colors, labels)
    summary = export_scannet_instances(folder / "scannet", scene_name, labels, result)
    export_json(folder / f"{scene_name}_result.json", result, labels)
    paths = {
        "ply": folder / f"{scene_name}_labels.ply",
        "scannet": summary,
        "json": folder / f"{scene_name}_result.json",
    }
    if scene is not None and fused is not None and result.lifted:
        from ..exports import export_scan, labelled_objects

        export_scan(scene, labelled_objects([("", result)]), folder / "objects", fused=fused, name=scene_name)
        paths["objects"] = folder / "objects" / "export.json"
    return paths


BOX_PROMPT_HELP = "box mode: 'FRAME x1,y1,x2,y2' and/or clicks '+x,y' (on the object) '-x,y' (not on it)"


def parse_box_prompt(text: str) -> dict:
    """The box mode's text as lift options: 'FRAME [x1,y1,x2,y2] [+x,y ...] [-x,y ...]' (a bare
    'x,y' is a positive click). ValueError with BOX_PROMPT_HELP on anything else."""
    words = text.split()
    try:
        options: dict = {"frame": int(words[0]), "box": None}
        points = []
        for word in words[1:]:
            label = 0 if word.startswith("-") else 1
            values = [float(v) for v in word.lstrip("+-").split(",")]
            if len(values) == 4 and options["box"] is None and word[0] not in "+-":
                options["box"] = values
            elif len(values) == 2:
                points.append([*values, label])
            else:
                raise ValueError(word)
    except (ValueError, IndexError):
        raise ValueError(BOX_PROMPT_HELP) from None
    if options["box"] is None and not any(p[2] == 1 for p in points):
        raise ValueError(BOX_PROMPT_HELP)
    if points:
        options["points"] = points
    return options
