"""Instance segmentation scores of a labelling in ScanNet's files against a synthetic room's ground
truth: per class, average precision at vertex-mask IoU 0.25 and 0.5 (ScanNet's benchmark measure:
predictions ranked by score, each matched to at most one unmatched ground-truth instance of its class),
and their mean over classes."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from ...shared.scene import SceneError
from ..data.synth import load_ground_truth
from ..geometry.neighbours import near_points

THRESHOLDS = (0.25, 0.5)


def vertex_truth(folder, vertices: np.ndarray, radius: float = 0.03) -> tuple[np.ndarray, dict[int, str]]:
    """Per scan vertex: the synthetic room's instance id whose surface lies within `radius` (0 = none,
    the room's structure); and id -> class (the object's shape: cube, table, ...; or its household word)."""
    folder = Path(folder)
    truth = load_ground_truth(folder)
    try:
        samples = np.load(folder / "gt_instances.npz")
    except FileNotFoundError:
        raise SceneError(f"{folder} has no gt_instances.npz (only synthetic scenes carry ground truth)") from None
    ids = np.zeros(len(vertices), np.int64)
    # Smaller objects first, so one resting on a table keeps its own vertices.
    objects = sorted(truth["objects"], key=lambda o: np.prod(np.diff(np.array(o["aabb"]), axis=0)))
    for obj in objects:
        near = near_points(vertices, samples["points"][samples["instance_ids"] == obj["id"]], radius)
        ids[near & (ids == 0)] = obj["id"]
    # A primitive room's objects are named by shape; a household room's by class word (chair, mug, ...).
    return ids, {o["id"]: o.get("class") or o["shape"] for o in truth["objects"]}


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def match_scan(pred_ids, pred_labels, pred_scores, gt_ids, gt_labels, classes, threshold) -> dict[str, dict]:
    """Per class: [(score, true positive?)] of the predictions and the number of ground-truth instances."""
    out = {c: {"hits": [], "truth": 0} for c in classes}
    for cls in classes:
        truths = [k for k, label in gt_labels.items() if label == cls and (gt_ids == k).any()]
        out[cls]["truth"] = len(truths)
        used = set()
        for k in sorted((k for k, label in pred_labels.items() if label == cls), key=lambda k: -pred_scores[k]):
            ious = {t: _iou(pred_ids == k, gt_ids == t) for t in truths if t not in used}
            best = max(ious, key=ious.get, default=None)
            hit = best is not None and ious[best] >= threshold
            if hit:
                used.add(best)
            out[cls]["hits"].append((pred_scores[k], hit))
    return out


def average_precision(hits: list[tuple[float, bool]], truth: int) -> float:
    """Area under the precision-recall curve (precision made monotone), as in ScanNet's script."""
    if truth == 0:
        return float("nan")
    if not hits:
        return 0.0
    order = sorted(hits, key=lambda h: -h[0])
    tp = np.cumsum([h[1] for h in order])
    precision = tp / np.arange(1, len(order) + 1)
    recall = tp / truth
    precision = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.concatenate([[0.0], recall]))
    return float(np.sum(steps * precision))


def summarize(per_scan: list[dict[float, dict[str, dict]]], classes) -> dict:
    """AP per class and threshold over all scans, and mAP (classes without ground truth left out)."""
    report = {"classes": {}, "mean": {}}
    for threshold in THRESHOLDS:
        pooled = defaultdict(lambda: {"hits": [], "truth": 0})
        for scan in per_scan:
            for cls, block in scan[threshold].items():
                pooled[cls]["hits"] += block["hits"]
                pooled[cls]["truth"] += block["truth"]
        for cls in classes:
            block = pooled[cls]
            entry = report["classes"].setdefault(cls, {"truth": block["truth"], "predicted": len(block["hits"])})
            entry[f"ap@{threshold}"] = average_precision(block["hits"], block["truth"])
        values = [report["classes"][c][f"ap@{threshold}"] for c in classes]
        values = [v for v in values if not np.isnan(v)]
        report["mean"][f"ap@{threshold}"] = float(np.mean(values)) if values else float("nan")
    return report


def markdown(report: dict) -> str:
    lines = ["| class | truth | predicted | AP@0.25 | AP@0.5 |", "|---|---|---|---|---|"]
    for cls, e in report["classes"].items():
        lines.append(f"| {cls} | {e['truth']} | {e['predicted']} | {e['ap@0.25']:.3f} | {e['ap@0.5']:.3f} |")
    mean = report["mean"]
    lines.append(f"| mean | | | {mean['ap@0.25']:.3f} | {mean['ap@0.5']:.3f} |")
    return "\n".join(lines) + "\n"


def named_as(truth: str, classes) -> str:
    """The labelling's class that names the same thing as a ground-truth class ("Bottles" for
    "bottle": case and number aside, inflect's noun comparison), else the truth's own name."""
    import inflect

    engine = inflect.engine()
    for cls in classes:
        a, b = " ".join(cls.lower().split()), " ".join(truth.lower().split())
        if a and b and (a == b or engine.compare_nouns(a, b)):
            return cls
    return truth


def evaluate_labelling(out, summaries: list[dict]) -> dict:
    """Score `scene-r1 label`'s ScanNet files (out/<scan>/scannet/) against each scan's ground truth
    (synthetic rooms: gt.json + gt_instances.npz); scans without ground truth are left out."""
    import open3d as o3d

    from ..exports.scannet import read_scannet, scannet_names

    per_scan, scored, classes, skipped = [], [], [], []
    for summary in summaries:
        if "error" in summary or not (Path(summary["scan"]) / "gt.json").is_file():
            continue
        classes = summary["classes"]
        folder = Path(out) / summary["name"] / "scannet"
        mesh = o3d.io.read_triangle_mesh(str(folder / scannet_names(summary["name"])["mesh"]))
        try:
            predicted = read_scannet(folder, summary["name"])
            gt_ids, gt_labels = vertex_truth(summary["scan"], np.asarray(mesh.vertices))
        except SceneError as error:  # e.g. a room written before gt_instances.npz: the others are scored
            skipped.append(f"{summary['name']}: {error}")
            continue
        gt_labels = {k: named_as(label, classes) for k, label in gt_labels.items()}
        per_scan.append(
            {
                t: match_scan(predicted.instance_ids, predicted.labels, predicted.scores, gt_ids, gt_labels, classes, t)
                for t in THRESHOLDS
            }
        )
        scored.append(summary["name"])
    if not scored:
        raise SceneError(
            "no labelled scan carries ground truth (gt.json): nothing to score"
            + "".join(f"; {note}" for note in skipped)
        )
    return summarize(per_scan, classes) | {"scans": scored, "skipped": skipped}
