from pathlib import Path

import pytest

from scene_r1.backend.data.synth import SynthConfig, build_synthetic, write_synthetic

REAL_SEQUENCE = Path(__file__).resolve().parents[3] / "shared" / "data" / "redkitchen-7scenes"
SMALL = SynthConfig(seed=3, frames=12, width=160, height=120, fps=4.0)


@pytest.fixture(scope="session")
def synthetic_folder(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synthetic") / "scene"
    write_synthetic(SMALL, out)
    return out


@pytest.fixture(scope="session")
def synthetic():
    return build_synthetic(SMALL)


@pytest.fixture(scope="session")
def real_sequence() -> Path:
    if not REAL_SEQUENCE.is_dir():
        pytest.skip(
            f"real RGB-D sequence not found at {REAL_SEQUENCE} (it lives beside the checkout, in ../shared/data)"
        )
    return REAL_SEQUENCE


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> dict:
    """Tiny random-weight Qwen2.5-VL and SAM2 video models, saved and loaded like real ones."""
    from scene_r1.backend.models.tiny import make_tiny_models

    return make_tiny_models(tmp_path_factory.mktemp("tiny-models"))


@pytest.fixture(scope="session")
def tiny_pipeline(tiny_models):
    from scene_r1.backend.pipeline.pipeline import Pipeline
    from scene_r1.backend.pipeline.settings import PipelineSettings

    settings = PipelineSettings(
        vlm=str(tiny_models["vlm"]),
        tracker=str(tiny_models["tracker"]),
        dtype="float32",
        max_new_tokens=16,
        video_frames=8,
    )
    return Pipeline(settings)
