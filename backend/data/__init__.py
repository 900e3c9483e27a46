"""Reading and writing RGB-D capture folders, synthetic rooms, and ScanNet records."""

from pathlib import Path

from .readers import SCENE_FORMATS, detect_format, open_scene, write_scene

# The real 7-Scenes sample beside a developer's checkout (../shared/data): the demo and the benchmarks
# use it when present.
DEFAULT_REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "redkitchen-7scenes"

__all__ = ["DEFAULT_REAL", "SCENE_FORMATS", "detect_format", "open_scene", "write_scene"]
