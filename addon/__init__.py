"""The Blender side (bpy only): preferences, panel, capture, result import.

Talks to the backend only through ..shared's client; never imports torch or ..backend.
Operators and panels are thin: decisions live in core/ (plain functions, tested without Blender),
the bpy work in capture.py and results.py; api.py is the scripting entry. The bpy modules are
imported when Blender registers the add-on, so core/ imports without Blender.
"""

import importlib

MODULES = ("preferences", "properties", "operators", "viewport", "sample_scene", "panel")


def _modules() -> list:
    return [importlib.import_module(f"{__name__}.{name}") for name in MODULES]


def register() -> None:
    for module in _modules():
        module.register()


def unregister() -> None:
    for module in reversed(_modules()):
        module.unregister()
