"""Reading and writing RGB-D capture folders."""
from .readers import SCENE_FORMATS, detect_format, open_scene, write_scene

__all__ = ["SCENE_FORMATS", "detect_format", "open_scene", "write_scene"]
