"""The same scene, prompt and settings give the same 3D mask point for point: in one process, in
separate processes, and with different thread counts (Open3D's RANSAC used to vary with thread
scheduling; GrabCut with OpenCV's unseeded generator)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from scene_r1.backend.data.readers import open_seven_scenes
from scene_r1.backend.geometry.mask3d import lift_from_box
from scene_r1.backend.geometry.segmentation import fit_plane

# A script each process runs: the box path on the real sequence, printing a digest of the points.
LIFT = """
import hashlib, sys, warnings
warnings.simplefilter("ignore")
from pathlib import Path
from scene_r1.backend.data.readers import open_seven_scenes
from scene_r1.backend.geometry.mask3d import mask_to_3d
from scene_r1.backend.models.segmenters import make_segmenter
scene = open_seven_scenes(Path(sys.argv[1]))
segmenter = make_segmenter(sys.argv[2], "auto", "cpu", "auto", [])
frames = None if sys.argv[2] == "geometric" else [10, 12, 14]  # MobileSAM: a few frames (its encoder is slow)
points = mask_to_3d(scene, segmenter.track(scene, 12, [215, 305, 265, 358], frames)).points
print(len(points), hashlib.sha256(points.tobytes()).hexdigest())
"""


def digest(points: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(points).tobytes()).hexdigest()


def run_elsewhere(real_sequence: Path, segmenter: str, threads: int) -> str:
    env = os.environ | {"OMP_NUM_THREADS": str(threads), "PYTHONHASHSEED": "random"}
    done = subprocess.run(
        [sys.executable, "-c", LIFT, str(real_sequence), segmenter],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip().splitlines()[-1]


def test_eight_identical_runs_give_identical_masks(real_sequence):
    scene = open_seven_scenes(real_sequence)
    frames = range(6, 30)  # 24 of the 50 frames: the mug and the views around it
    runs = [lift_from_box(scene, 12, [215, 305, 265, 358], frames).points for _ in range(8)]
    assert len(runs[0]) > 100 and len({digest(points) for points in runs}) == 1


def test_separate_processes_with_different_thread_counts_agree(real_sequence):
    for segmenter in ("geometric", "mobile_sam"):
        results = [run_elsewhere(real_sequence, segmenter, threads) for threads in (1, 2)]
        count = int(results[0].split()[0])
        assert count > 100 and results[0] == results[1], (segmenter, results)


def test_plane_fit_is_reproducible_and_finds_the_plane():
    rng = np.random.default_rng(5)
    floor = np.c_[rng.uniform(-1, 1, (500, 2)), rng.normal(0, 0.002, 500)]
    clutter = rng.uniform(-1, 1, (200, 3))
    points = np.concatenate([floor, clutter])
    normal, offset, inliers = fit_plane(points, 0.01)
    again = fit_plane(points, 0.01)
    assert abs(abs(normal[2]) - 1) < 1e-3 and abs(offset) < 0.01
    assert np.array_equal(inliers, again[2]) and np.isin(np.arange(500), inliers).mean() > 0.97
