"""`scene-r1 bench pipeline`: the pipeline's own overhead per query (everything but model forward
passes: frame decoding, prompting, parsing, key-frame choice, mask post-processing, lifting) as a
fraction of the total, on tiny models so the overhead is not hidden behind a big model."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from ..backend.data.synth import SynthConfig, build_synthetic
from ..shared.scene import Scene
from .common import tiny_pipeline


def run_pipeline_benchmark(queries: int = 3, frames: int = 24, models_dir: Path | None = None) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        synthetic = build_synthetic(SynthConfig(seed=11, frames=frames, width=320, height=240))
        # Frames decoded once and held, as the server's scene cache holds them: rendering the
        # synthetic room is not the pipeline's overhead.
        rendered = [synthetic.scene.frame(i) for i in range(frames)]
        scene = Scene.from_arrays(
            [f.rgb for f in rendered],
            [f.depth for f in rendered],
            synthetic.scene.intrinsics,
            synthetic.scene.poses,
            synthetic.scene.timestamps,
            cache_frames=frames,
        )
        pipeline = tiny_pipeline(models_dir or Path(scratch) / "tiny")
        texts = ["the large cube", "the white table", "the small sphere", "the chair", "the torus"][:queries]
        pipeline.ground(scene, texts[0])  # warm-up: first-call allocations, token tables
        rows = []
        for text in texts:
            result = pipeline.ground(scene, text)
            rows.append(("ground", result.timings["total"], result.timings["model"]))
            result = pipeline.ask(scene, f"What colour is {text}?")
            rows.append(("ask", result.timings["total"], result.timings["model"]))
    for mode in ("ground", "ask"):
        total = np.array([r[1] for r in rows if r[0] == mode])
        model = np.array([r[2] for r in rows if r[0] == mode])
        overhead = total - model
        print(
            f"{mode:>6}: {len(total)} queries, {frames} frames 320x240; per query total {total.mean():.3f} s, "
            f"model forward passes {model.mean():.3f} s, "
            f"pipeline overhead {overhead.mean():.3f} s = {overhead.sum() / total.sum():.2f} of the total"
        )
    total = sum(r[1] for r in rows)
    overhead = total - sum(r[2] for r in rows)
    print(
        f"overall pipeline overhead fraction: {overhead / total:.2f} "
        "(tiny models: a 7B model's forward passes make it far smaller)"
    )
    return {"overhead_fraction": overhead / total}
