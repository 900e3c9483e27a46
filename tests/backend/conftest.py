from pathlib import Path

import pytest

from scene_r1.backend.synth import SynthConfig, build_synthetic, write_synthetic

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
        pytest.skip(f"real RGB-D sequence not found at {REAL_SEQUENCE} (it lives beside the checkout, in ../shared/data)")
    return REAL_SEQUENCE
