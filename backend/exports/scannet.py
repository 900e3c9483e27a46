"""ScanNet's own annotation files for a labelled scan, and our reader of them.

- `<scene>_vh_clean_2.ply`: the scan mesh (binary PLY, vertex colours) that the rest index;
- `<scene>_vh_clean_2.0.010000.segs.json`: {"sceneId", "params", "segIndices": one segment per
  vertex}. ScanNet's segments come from a graph over-segmentation; ours are cells of SEGMENT_CELL
  metres split by object, so every segment lies inside one object or none;
- `<scene>.aggregation.json`: {"sceneId": "scannet.<scene>", "appId", "segGroups": [{"id",
  "objectId", "segments", "label"}], "segmentsFile"}: each object as the segments it covers;
- `<scene>_vh_clean_2.labels.ply`: the mesh with a ushort `label` per vertex (class id, 0 = none).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...shared.scene import SceneError

SEGMENT_CELL = 0.15  # metres
APP_ID = "Scene-R1.label.v1"


def segment_vertices(vertices: np.ndarray, instance_ids: np.ndarray, cell: float = SEGMENT_CELL) -> np.ndarray:
    """A segment id per vertex: cells of `cell` metres, split where objects meet."""
    keys = np.concatenate([instance_ids.reshape(-1, 1), np.floor(vertices / cell).astype(np.int64)], axis=1)
    _, segments = np.unique(keys, axis=0, return_inverse=True)
    return segments.reshape(-1).astype(np.int64)


def write_ply(path: Path, vertices, colors, triangles, labels=None) -> None:
    """Binary little-endian PLY as ScanNet's files are: x y z, red green blue alpha[, label], faces."""
    fields = [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("red", "u1"), ("green", "u1"), ("blue", "u1"), ("alpha", "u1")]
    if labels is not None:
        fields.append(("label", "<u2"))
    data = np.zeros(len(vertices), dtype=fields)
    data["x"], data["y"], data["z"] = np.asarray(vertices, np.float32).T
    rgb = np.rint(np.clip(np.asarray(colors, np.float64), 0, 1) * 255).astype(np.uint8)
    data["red"], data["green"], data["blue"], data["alpha"] = rgb[:, 0], rgb[:, 1], rgb[:, 2], 255
    if labels is not None:
        data["label"] = np.asarray(labels, np.uint16)
    faces = np.zeros(len(triangles), dtype=[("n", "u1"), ("v", "<i4", (3,))])
    faces["n"], faces["v"] = 3, np.asarray(triangles, np.int32)
    types = {"<f4": "float", "u1": "uchar", "<u2": "ushort"}
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(vertices)}"]
    header += [f"property {types[t]} {name}" for name, t in fields]
    header += [f"element face {len(triangles)}", "property list uchar int vertex_indices", "end_header"]
    with open(path, "wb") as handle:
        handle.write(("\n".join(header) + "\n").encode("ascii"))
        handle.write(data.tobytes())
        handle.write(faces.tobytes())


def scannet_names(scene: str) -> dict[str, str]:
    return {
        "mesh": f"{scene}_vh_clean_2.ply",
        "segs": f"{scene}_vh_clean_2.0.010000.segs.json",
        "aggregation": f"{scene}.aggregation.json",
        "labels": f"{scene}_vh_clean_2.labels.ply",
    }


def write_scannet(folder, scene: str, vertices, triangles, colors, instance_ids, objects, class_ids) -> dict[str, Path]:
    """objects: per instance id k (1..K, k - 1 in this list): {"label", "score"}; class_ids: label -> id."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = {k: folder / v for k, v in scannet_names(scene).items()}
    instance_ids = np.asarray(instance_ids, np.int64)
    segments = segment_vertices(np.asarray(vertices, np.float64), instance_ids)
    groups = []
    for k, obj in enumerate(objects, 1):
        covered = np.unique(segments[instance_ids == k])
        if len(covered):
            groups.append(
                {
                    "id": k - 1,
                    "objectId": k - 1,
                    "segments": covered.tolist(),
                    "label": obj["label"],
                    "score": round(float(obj.get("score", 1.0)), 4),
                }
            )
    segs = {
        "sceneId": scene,
        "params": {"method": "scene-r1 cells split by object", "cell": SEGMENT_CELL},
        "segIndices": segments.tolist(),
    }
    aggregation = {
        "sceneId": f"scannet.{scene}",
        "appId": APP_ID,
        "segGroups": groups,
        "segmentsFile": f"scannet.{names['segs'].name}",
    }
    names["segs"].write_text(json.dumps(segs), encoding="utf-8")
    names["aggregation"].write_text(json.dumps(aggregation, indent=1), encoding="utf-8")
    labels = np.zeros(len(instance_ids), np.uint16)
    for k, obj in enumerate(objects, 1):
        labels[instance_ids == k] = class_ids[obj["label"]]
    write_ply(names["mesh"], vertices, colors, triangles)
    write_ply(names["labels"], vertices, colors, triangles, labels)
    return names


@dataclass
class ScanNetLabels:
    instance_ids: np.ndarray  # per vertex: objectId + 1, 0 = none
    labels: dict[int, str]  # objectId + 1 -> label
    scores: dict[int, float]


def read_scannet(folder, scene: str) -> ScanNetLabels:
    """Per-vertex instances from segs.json + aggregation.json, as ScanNet's own tools combine them."""
    names = {k: Path(folder) / v for k, v in scannet_names(scene).items()}
    try:
        segments = np.asarray(json.loads(names["segs"].read_text(encoding="utf-8"))["segIndices"], np.int64)
        groups = json.loads(names["aggregation"].read_text(encoding="utf-8"))["segGroups"]
    except FileNotFoundError as error:
        raise SceneError(f"missing ScanNet file: {error.filename}") from None
    except (ValueError, KeyError, TypeError) as error:
        raise SceneError(f"malformed ScanNet annotation in {folder}: {type(error).__name__}: {error}") from None
    instance_ids = np.zeros(len(segments), np.int64)
    labels, scores = {}, {}
    for group in groups:
        k = int(group["objectId"]) + 1
        instance_ids[np.isin(segments, np.asarray(group["segments"], np.int64))] = k
        labels[k], scores[k] = str(group["label"]), float(group.get("score", 1.0))
    return ScanNetLabels(instance_ids, labels, scores)
