"""Scene-R1: ask about a 3D scene in words, get selectable objects or an answer, with reasoning.

This file is both the Blender extension's entry point (Blender imports the repository root as
`bl_ext.<repo>.scene_r1`) and the top of the installed `scene_r1` package. It must import
without bpy: the add-on is imported only when Blender calls register().
"""

__version__ = "0.1.0"


def run(query: str = "", mode: str = "ground", box=None, **options):
    """Run a query on the open Blender scene to the end (headless scripts): see addon/api.py."""
    from .addon import api

    return api.run(query, mode, box, **options)


def register() -> None:
    from . import addon

    addon.register()


def unregister() -> None:
    from . import addon

    addon.unregister()
