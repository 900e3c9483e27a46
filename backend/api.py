"""The backend's small public surface: open a capture, build a pipeline from typed settings, and ask it.

from scene_r1.backend.api import PipelineSettings, build_pipeline, open_scene
pipeline = build_pipeline(PipelineSettings(device="cuda"))
result = pipeline.ground(open_scene("scans/kitchen"), "the mug left of the kettle")  # a QueryResult
"""

from __future__ import annotations

from dataclasses import replace

from ..shared.results import QueryResult
from .data import open_scene
from .pipeline.pipeline import Pipeline
from .pipeline.settings import PipelineSettings


def build_pipeline(settings: PipelineSettings | None = None, **overrides) -> Pipeline:
    """A pipeline for these settings (models load on first use); keyword overrides replace fields."""
    return Pipeline(replace(settings or PipelineSettings(), **overrides))


__all__ = ["Pipeline", "PipelineSettings", "QueryResult", "build_pipeline", "open_scene"]
