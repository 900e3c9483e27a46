"""The instance-segmentation scores (ScanNet's AP at vertex IoU 0.25 / 0.5) on known cases, and on
ground truth written through our ScanNet exporter and read back by our reader (AP = 1)."""

import numpy as np
import pytest

from scene_r1.backend.data import open_scene
from scene_r1.backend.eval.instances import THRESHOLDS, average_precision, match_scan, summarize, vertex_truth
from scene_r1.backend.exports.bundle import fuse_for_export
from scene_r1.backend.exports.scannet import read_scannet, write_scannet


def test_average_precision_on_known_rankings():
    assert average_precision([(0.9, True), (0.8, True)], 2) == 1.0
    assert average_precision([(0.9, False), (0.8, True)], 1) == pytest.approx(0.5)
    assert average_precision([(0.9, True)], 2) == pytest.approx(0.5)  # half the truth never predicted
    assert average_precision([], 3) == 0.0 and np.isnan(average_precision([(0.5, False)], 0))


def test_a_prediction_matches_one_truth_only():
    gt = np.array([1, 1, 1, 1, 0, 0])
    pred = np.array([1, 1, 1, 2, 2, 0])  # two predictions of one chair: the second is a false positive
    scan = match_scan(pred, {1: "chair", 2: "chair"}, {1: 0.9, 2: 0.8}, gt, {1: "chair"}, ["chair"], 0.5)
    assert scan["chair"] == {"hits": [(0.9, True), (0.8, False)], "truth": 1}


def test_ground_truth_through_our_scannet_files_scores_one(synthetic_folder, tmp_path):
    scene = open_scene(synthetic_folder)
    fused = fuse_for_export(scene)
    ids, labels = vertex_truth(synthetic_folder, fused.mesh_vertices)
    present = [k for k in sorted(labels) if (ids == k).any()]
    compact = np.zeros_like(ids)
    for number, k in enumerate(present, 1):
        compact[ids == k] = number
    classes = sorted({labels[k] for k in present})
    objects = [{"label": labels[k], "score": 1.0} for k in present]
    write_scannet(
        tmp_path,
        scene.name,
        fused.mesh_vertices,
        fused.mesh_triangles,
        fused.mesh_colors,
        compact,
        objects,
        {c: i for i, c in enumerate(classes, 1)},
    )
    back = read_scannet(tmp_path, scene.name)
    assert np.array_equal(back.instance_ids, compact) and len(present) >= 3
    per_scan = [
        {t: match_scan(back.instance_ids, back.labels, back.scores, ids, labels, classes, t) for t in THRESHOLDS}
    ]
    report = summarize(per_scan, classes)
    assert report["mean"] == {"ap@0.25": 1.0, "ap@0.5": 1.0}
