"""The headless scripting entry (batch annotation scripts, our own tests): run a query to the end in
this call and get back what it selected. Background Blender fires no timers, so nothing here waits
on one; and `bpy.ops.wm.read_factory_settings()` turns extensions off, so `run` turns this one back
on first. See docs/blender_scripting.md.

    import scene_r1                        # an extension: from bl_ext.user_default import scene_r1
    outcome = scene_r1.run("the mug on the table")
    print(outcome.selected, outcome.message)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import bpy

from ..shared.protocol import QUERY_MODES

SETTINGS = ("frames", "width", "height", "fps", "samples", "capture_source")


@dataclass
class Outcome:
    """How a query ended: state (done / failed / cancelled), the panel's message, the names of the
    objects it selected (or created, for a scan), the answer and the reasoning."""

    state: str
    message: str
    selected: list[str] = field(default_factory=list)
    answer: str = ""
    reasoning: str = ""
    covers: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "done" and not self.message.startswith("nothing")


def package() -> str:
    return __package__.rpartition(".")[0]


def ensure_enabled() -> None:
    """Enable the add-on if it is off (a fresh or factory-reset Blender), as the user would."""
    import addon_utils

    if package() not in bpy.context.preferences.addons or not hasattr(bpy.types.Scene, "scene_r1"):
        addon_utils.enable(package(), default_set=True)
    if not hasattr(bpy.types.Scene, "scene_r1"):
        raise RuntimeError(f"the Scene-R1 add-on ({package()}) could not be enabled")


def run(
    query: str = "",
    mode: str = "ground",
    box=None,
    *,
    points=(),
    address: str | None = None,
    timeout: float | None = None,
    **capture,
) -> Outcome:
    """Run one query on the current scene to the end. mode: "ground" (find and select), "ask"
    (answer), "lift" (box=[x1, y1, x2, y2] in pixels of the camera view's capture, and/or clicks
    points=[[x, y, label], ...] there, label 1 on the object, 0 not). `address` and `timeout`
    override the preferences for this query only (nothing is saved); `capture` sets the panel's
    capture settings by name (frames, width, height, fps, samples, capture_source)."""
    unknown = set(capture) - set(SETTINGS)
    if unknown:
        raise TypeError(f"unknown capture settings {sorted(unknown)}; known: {', '.join(SETTINGS)}")
    box, points = _checked_prompts(mode, box, points)  # before the panel's settings change at all
    ensure_enabled()
    operators = importlib.import_module(package() + ".addon.operators")  # the module enabled now
    context = bpy.context
    settings = context.scene.scene_r1
    settings.mode, settings.query = mode, query
    # The prompt is run()'s arguments alone: no box means none, not the last call's (or the panel's).
    settings.box, settings.click = box if box is not None else (0.0, 0.0, 0.0, 0.0), False
    settings.points.clear()
    for x, y, label in points:
        item = settings.points.add()
        item.x, item.y, item.label = float(x), float(y), int(label)
    for name, value in capture.items():
        setattr(settings, name, value)
    status = context.window_manager.scene_r1_status
    status.message = ""
    try:
        state, _ = operators.run_query(context, settings, timeout, address)
    except (ValueError, RuntimeError) as error:
        return Outcome("failed", str(error))
    return Outcome(
        state,
        status.message,
        [o.name for o in context.selected_objects] if state == "done" else [],  # not what was selected before
        settings.answer if mode == "ask" else "",
        settings.reasoning,
        status.covers,
    )


def import_scan(path: str, *, address: str | None = None, voxel: float = 0.02, timeout: float | None = None) -> Outcome:
    """Open a capture folder on the backend's machine and bring in its fused mesh and camera path
    (the "Scene-R1 scan" collection); later queries through that camera run on its recorded frames.
    `address`: the backend's, for this call only (the preferences are not changed)."""
    ensure_enabled()
    scan = importlib.import_module(package() + ".addon.scan")
    context = bpy.context
    try:
        opener = scan.open_scan_start(context, path, voxel, address)
    except (ValueError, RuntimeError) as error:
        return Outcome("failed", str(error))
    opener.wait(timeout)
    made = scan.open_scan_finish(context, opener)
    message = context.window_manager.scene_r1_status.message
    return Outcome(opener.state, message, [o.name for o in made] if made else [])


def _checked_prompts(mode, box, points) -> tuple[list[float] | None, list[tuple[float, float, int]]]:
    """run()'s mode, box and clicks as the panel holds them, or a ValueError in run()'s own words
    (bpy's would name a property, not the argument)."""
    if mode not in QUERY_MODES:
        raise ValueError(f"mode must be one of {', '.join(QUERY_MODES)}, got {mode!r}")
    try:
        box = None if box is None else [float(v) for v in box]
        points = [(float(x), float(y), int(label)) for x, y, label in points]
    except (TypeError, ValueError):
        raise ValueError("box takes [x1, y1, x2, y2] and points [[x, y, label], ...], numbers in pixels") from None
    if box is not None and len(box) != 4:
        raise ValueError(f"box takes [x1, y1, x2, y2] in pixels, got {len(box)} numbers")
    return box, points
