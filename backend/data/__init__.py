"""Reading and writing RGB-D capture folders, synthetic rooms, and ScanNet records."""

from pathlib import Path

from .phone import PHONE_FORMATS
from .readers import SCENE_FORMATS, detect_format, open_scene, write_scene

# Checked in this order: ours, then the phone apps' exports, each known by its own files; an unzipped
# .r3d ("r3d", known by its .depth files) goes before Record3D's EXR + JPG export, whose layout it shares.
_formats = SCENE_FORMATS | PHONE_FORMATS
_order = [*SCENE_FORMATS, "r3d", "record3d", *(k for k in PHONE_FORMATS if k not in ("r3d", "record3d"))]
SCENE_FORMATS.clear()
SCENE_FORMATS.update({name: _formats[name] for name in _order})

# The real 7-Scenes sample beside a developer's checkout (../shared/data): the demo and the benchmarks
# use it when present.
DEFAULT_REAL = Path(__file__).resolve().parents[3] / "shared" / "data" / "redkitchen-7scenes"

__all__ = ["DEFAULT_REAL", "SCENE_FORMATS", "detect_format", "open_scene", "write_scene"]
