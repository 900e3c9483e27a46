"""Benchmarks that print a ratio against a plain baseline measured in the same run."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PIL import Image
from rich.console import Console
from rich.table import Table

from ..backend.data import DEFAULT_REAL, open_scene
from ..backend.data.synth import SynthConfig, build_synthetic
from ..backend.data.synth.render import camera_rays


def _rate(work, items: int, repeats: int = 2) -> float:
    """Items per second of the best of `repeats` runs (after one warm-up item)."""
    work(1)
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        work(items)
        best = min(best, time.perf_counter() - start)
    return items / best


def render_rates(frames: int, width: int, height: int) -> tuple[float, float]:
    """(our renderer's frames/s, bare Open3D ray casting's frames/s) on the same camera path."""
    synthetic = build_synthetic(SynthConfig(seed=0, frames=frames, width=width, height=height))
    scene, renderer = synthetic.scene, synthetic.renderer
    intrinsics = scene.intrinsics_at(0)

    def ours(n):
        for i in range(n):
            renderer.render(intrinsics, scene.poses[i])

    def bare(n):
        for i in range(n):
            renderer.cast(camera_rays(intrinsics, scene.poses[i]))

    return _rate(ours, frames), _rate(bare, frames)


def reader_rates(folder: Path) -> tuple[float, float, int]:
    """(our reader's frames/s, PIL decoding the same files' frames/s, frames) on a capture folder."""
    scene = open_scene(folder)
    n = len(scene)
    rgb_paths, depth_paths = scene.source.rgb_paths, scene.source.depth_paths

    def ours(count):
        fresh = open_scene(folder)  # a new scene each run, so nothing comes from its frame cache
        for i in range(count):
            fresh.frame(i)

    def pil(count):
        for i in range(count):
            np.asarray(Image.open(rgb_paths[i]).convert("RGB"))
            np.asarray(Image.open(depth_paths[i]), dtype=np.float32) * np.float32(0.001)

    return _rate(ours, n), _rate(pil, n), n


def run_foundation_benchmark(
    real_dir: Path | None = None, frames: int = 20, width: int = 640, height: int = 480
) -> dict:
    console = Console()
    table = Table(title="Scene-R1 foundation benchmark (higher is better)")
    for column in ("what", "ours", "baseline", "ratio ours/baseline"):
        table.add_column(column)
    results = {}
    with console.status(f"rendering {frames} synthetic frames at {width}x{height}..."):
        ours, bare = render_rates(frames, width, height)
    results["render"] = (ours, bare)
    table.add_row(
        f"synthetic render {width}x{height} (frames/s)",
        f"{ours:.1f}",
        f"{bare:.1f} (bare Open3D ray cast)",
        f"{ours / bare:.2f}x",
    )
    real_dir = real_dir or DEFAULT_REAL
    if Path(real_dir).is_dir():
        with console.status(f"reading {real_dir}..."):
            ours, pil, n = reader_rates(Path(real_dir))
        results["reader"] = (ours, pil)
        table.add_row(
            f"reader on {Path(real_dir).name}, {n} frames (frames/s)",
            f"{ours:.1f}",
            f"{pil:.1f} (PIL decode only)",
            f"{ours / pil:.2f}x",
        )
    else:
        table.add_row("reader on real data", "skipped", f"{real_dir} not found", "-")
    console.print(table)
    for name, (ours, baseline) in results.items():
        print(f"ratio {name}: {ours / baseline:.2f}x ({ours:.1f} vs {baseline:.1f} frames/s)")
    return results
