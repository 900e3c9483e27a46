"""What several benchmarks build the same way."""

from __future__ import annotations

from pathlib import Path


def tiny_pipeline(folder: Path):
    """A pipeline of tiny random-weight Qwen2.5-VL and SAM2 models built into `folder` (the real classes,
    so the pipeline's own overhead shows beside model time)."""
    from ..backend.models.tiny import make_tiny_models
    from ..backend.pipeline.pipeline import Pipeline
    from ..backend.pipeline.settings import PipelineSettings

    paths = make_tiny_models(Path(folder))
    settings = PipelineSettings(
        vlm=str(paths["vlm"]), tracker=str(paths["tracker"]), dtype="float32", max_new_tokens=32, video_frames=16
    )
    return Pipeline(settings)
