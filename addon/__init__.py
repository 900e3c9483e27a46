"""The Blender side (bpy only): preferences, panel, capture, result import.

Talks to the backend only through ..shared's client; never imports torch or ..backend.
Operators and panels are thin: decisions live in ..shared.capture (plain functions), and the
bpy work in capture.py, session.py and results.py.
"""
from . import operators, panel, preferences, properties, sample_scene

modules = (preferences, properties, operators, sample_scene, panel)


def register() -> None:
    for module in modules:
        module.register()


def unregister() -> None:
    for module in reversed(modules):
        module.unregister()
