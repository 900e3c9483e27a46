"""`scene-r1 bench scale`: one box lifted (and the scene fused) on a 1000-frame 30 fps scan,
against decoding the same 1000 frames in the same run; peak memory of each; `scene-r1 info`;
and where the result re-projects in later frames, against a run on every frame.

Each measurement runs in its own fresh process (spawned), so its peak RSS is its own and no
cache is shared; times start after the imports.
"""

from __future__ import annotations

import multiprocessing
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

DEFAULT_SCAN = Path(__file__).resolve().parents[2] / "shared" / "data" / "redkitchen-1000"
DEFAULT_BOX = (0, (360.0, 160.0, 402.0, 200.0))  # the white mug on the table, frame 0
CHECK_FRAMES = (200, 300, 500)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def decode_all(folder: str) -> dict:
    """Decode every frame's colour and depth once (the readers' own decoders), dropping each."""
    from ..backend.data import open_scene

    scene = open_scene(folder)
    start = time.perf_counter()
    for index in range(len(scene)):
        scene.source.load_rgb(index)
        scene.source.load_depth(index)
    return {"seconds": time.perf_counter() - start, "frames": len(scene), "peak_mb": _peak_mb()}


def lift_scan(folder: str, frame: int, box, every_frame: bool) -> dict:
    """`scene-r1 lift --fuse` as a function: open, select views, segment, track, vote, clean, fuse, write."""
    from ..backend.data import open_scene
    from ..backend.geometry.frame_selection import ALL_FRAMES, ViewSettings
    from ..backend.pipeline.results import lift_to_folder

    start = time.perf_counter()
    scene = open_scene(folder)
    with tempfile.TemporaryDirectory() as out:
        result = lift_to_folder(scene, frame, box, out, fuse=True, views=ALL_FRAMES if every_frame else ViewSettings())
        import open3d as o3d

        cloud = np.asarray(o3d.io.read_point_cloud(str(Path(out) / "mask.ply")).points)
    seconds = time.perf_counter() - start
    centres = {f: projected_centre(scene, cloud, f) for f in CHECK_FRAMES if f < len(scene)}
    tracked = {f: _box_centre(result["frame_boxes"].get(str(f))) for f in CHECK_FRAMES}
    return {
        "seconds": seconds,
        "peak_mb": _peak_mb(),
        "frames_used": len(result["frames_used"]),
        "points": result["point_count"],
        "aabb": result["aabb"],
        "timings": result["timings"],
        "centres": centres,
        "tracked_centres": tracked,
    }


def projected_centre(scene, points: np.ndarray, index: int) -> list[float] | None:
    """Mean pixel (colour image) of the points that project inside frame `index`; poses only."""
    from ..shared.geometry import project_points

    intrinsics = scene.intrinsics_at(index)
    uv, z = project_points(points, intrinsics, scene.poses[index])
    inside = (
        (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < intrinsics.width) & (uv[:, 1] >= 0) & (uv[:, 1] < intrinsics.height)
    )
    return uv[inside].mean(axis=0).round(1).tolist() if inside.any() else None


def _box_centre(box) -> list[float] | None:
    return None if box is None else [(box[0] + box[2]) / 2, (box[1] + box[3]) / 2]


def run_info(folder: str) -> dict:
    """`scene-r1 info FOLDER` in a child process: wall time (imports included) and peak RSS."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "scene_r1.backend.cli", "info", folder], capture_output=True, text=True, timeout=120
    )
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"scene-r1 info failed: {done.stderr.strip()[-300:]}")
    return {"seconds": seconds, "peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024}


def _in_fresh_process(function, *args) -> dict:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1, maxtasksperchild=1) as pool:
        return pool.apply_async(function, args).get(timeout=900)


def _offset(a, b) -> str:
    if a is None or b is None:
        return "n/a (not in view)"
    return f"{float(np.hypot(a[0] - b[0], a[1] - b[1])):.1f} px"


def run_scale_benchmark(folder: Path | None = None, reference: bool = True) -> int:
    folder = Path(folder or DEFAULT_SCAN)
    if not folder.is_dir():
        print(f"scene-r1 bench scale: no scan at {folder} (pass --real FOLDER, e.g. ../shared/data/redkitchen-1000)")
        return 2
    frame, box = DEFAULT_BOX
    info = run_info(str(folder))  # first: RUSAGE_CHILDREN is the peak over every child so far
    decoded = _in_fresh_process(decode_all, str(folder))
    ours = _in_fresh_process(lift_scan, str(folder), frame, box, False)
    n = decoded["frames"]
    print(f"scene-r1 info: {info['seconds']:.2f} s (imports included), peak RSS {info['peak_mb']:.0f} MB")
    print(
        f"decode {n} frames (colour + depth): {decoded['seconds']:.2f} s "
        f"({1000 * decoded['seconds'] / n:.1f} ms/frame), "
        f"peak RSS {decoded['peak_mb']:.0f} MB"
    )
    print(
        f"lift one box on all {n} frames + fuse (views every 10 cm / 10 deg: "
        f"{ours['frames_used']} frames tracked, voted and fused): "
        f"{ours['seconds']:.2f} s = {ours['seconds'] / decoded['seconds']:.2f}x decoding (goal <= 3x); "
        f"peak RSS {ours['peak_mb']:.0f} MB = {ours['peak_mb'] / 1024:.2f} GB (goal <= 1 GB)"
    )
    print("  stages: " + ", ".join(f"{k} {v:.2f} s" for k, v in ours["timings"].items()))
    if not reference:
        return 0
    full = _in_fresh_process(lift_scan, str(folder), frame, box, True)
    print(
        f"the same on every frame ({full['frames_used']} frames): {full['seconds']:.2f} s = "
        f"{full['seconds'] / decoded['seconds']:.2f}x decoding, "
        f"peak RSS {full['peak_mb']:.0f} MB; {full['seconds'] / ours['seconds']:.1f}x slower than the selected views"
    )
    print(
        f"  3D box (selected views) {np.round(ours['aabb'], 3).tolist()}; "
        f"(every frame) {np.round(full['aabb'], 3).tolist()}"
    )
    for f in CHECK_FRAMES:
        tracked, mine, theirs = full["tracked_centres"].get(f), ours["centres"].get(f), full["centres"].get(f)
        print(
            f"re-projection in frame {f}: centre offset selected-views vs every-frame result {_offset(mine, theirs)}; "
            f"vs the object as tracked in that frame: selected views {_offset(mine, tracked)}, "
            f"every frame {_offset(theirs, tracked)}"
        )
    return 0
