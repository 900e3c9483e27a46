"""Scores used by tests, benchmarks and the eval harness: one definition of each, numpy only."""

from __future__ import annotations

import numpy as np


def box_iou_2d(a, b) -> float:
    """IoU of two [x1, y1, x2, y2] boxes (pixel edges)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    inter = np.clip(np.minimum(a[2:], b[2:]) - np.maximum(a[:2], b[:2]), 0, None).prod()
    union = np.clip(a[2:] - a[:2], 0, None).prod() + np.clip(b[2:] - b[:2], 0, None).prod() - inter
    return float(inter / union) if union > 0 else 0.0


def box_iou_3d(a, b) -> float:
    """IoU of two axis-aligned 3D boxes given as [[xmin, ymin, zmin], [xmax, ymax, zmax]]."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    inter = np.clip(np.minimum(a[1], b[1]) - np.maximum(a[0], b[0]), 0, None).prod()
    union = np.clip(a[1] - a[0], 0, None).prod() + np.clip(b[1] - b[0], 0, None).prod() - inter
    return float(inter / union) if union > 0 else 0.0


def mask_iou_2d(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def point_mask_iou(predicted: np.ndarray, truth: np.ndarray, voxel: float = 0.02) -> float:
    """IoU of two point sets as sets of occupied voxels of size `voxel` metres."""
    if len(predicted) == 0 or len(truth) == 0:
        return 0.0
    keys = [set(map(tuple, np.floor(np.asarray(p) / voxel).astype(np.int64))) for p in (predicted, truth)]
    union = len(keys[0] | keys[1])
    return len(keys[0] & keys[1]) / union


def accuracy_at(ious, threshold: float) -> float:
    """Fraction of IoUs at or above a threshold (Acc@0.25, Acc@0.5)."""
    ious = np.asarray(list(ious), dtype=float)
    return float((ious >= threshold).mean()) if len(ious) else 0.0


def temporal_iou(a, b) -> float:
    """IoU of two [start, end] time spans in seconds."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union > 0 else float(a == b)
