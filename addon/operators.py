"""Running a query: thin shells over core/ (decisions), capture.py and results.py (bpy work)."""

import contextlib
import dataclasses

import bpy

from ..shared.protocol import QUERY_MODES
from .capture import World, camera_view, capture_frames, object_groups, plan_from_settings, scene_meshes
from .core.query import QueryRunner, validate_query
from .core.scan import RecordedScan, lift_options, recorded_frames
from .core.selection import Choice, no_instance_reason, object_clicked, objects_for_result, objects_in_box
from .preferences import backend_from_preferences
from .results import apply_result, select_only, select_result_objects, separate_covered_faces
from .scan import active_scan_camera

_runner: QueryRunner | None = None
TICK = 0.1


def native_box(context, settings) -> Choice:
    """A box (or a click) over the camera's view -> the scene's own objects under it (exact
    object-index map of that view; no backend, no tracker). An empty Choice when no single object
    fits (a scan)."""
    if context.scene.camera is None or settings.capture_source == "CAMERA":
        return Choice(reason="the box is on an animation frame; the backend lifts it")
    _, intrinsics, pose = camera_view(context, settings)
    meshes = scene_meshes(context)
    world = World(context, meshes)
    index = world.cast(intrinsics, pose)[1]
    if is_click(settings):  # the object under the clicked pixel, whatever its size
        return object_clicked(index, world.names, [float(v) for v in settings.box])
    return objects_in_box(index, world.names, [float(v) for v in settings.box], object_groups(meshes))


def is_click(settings) -> bool:
    """The panel's box stands for a click: the 2 px box apply_gesture makes. A box typed anew in the
    panel is a box again. (Not an update callback on the box property: one crashed bpy 4.2 at exit.)"""
    x1, y1, x2, y2 = (float(v) for v in settings.box)
    return bool(settings.click) and x2 - x1 <= 2 and y2 - y1 <= 2


def backend_for(context, address: str | None = None):
    """The preferences' backend, at another address for this query only (never saved)."""
    backend = backend_from_preferences(context)
    return backend if address is None else dataclasses.replace(backend, address=address)


def start_query(context, settings=None, address: str | None = None) -> QueryRunner | None:
    """Start a query from the panel's settings. A box or click over a scene of separate objects is
    answered at once (returns None); anything else starts a QueryRunner (health check, capture,
    backend). `address`: the backend's, for this query only."""
    global _runner
    if _runner is not None and not _runner.finished:
        raise RuntimeError("a Scene-R1 query is already running; cancel it first")
    settings = settings or context.scene.scene_r1
    status = context.window_manager.scene_r1_status
    box = [float(v) for v in settings.box] if settings.mode == "lift" else None
    points = [[p.x, p.y, p.label] for p in settings.points] if settings.mode == "lift" else []
    text = validate_query(settings.mode, settings.query, box, points)  # before anything runs
    scan_camera = active_scan_camera(context)
    if scan_camera is not None:  # the scan's own recorded frames, held by the backend: nothing to capture
        return _start_on_scan(context, settings, scan_camera, text, box, points, address)
    if settings.mode == "lift" and not points:
        choice = native_box(context, settings)
        if choice.objects:
            _native_done(context, settings, choice)
            return None
        if choice.empty:  # nothing there to lift either
            raise ValueError(choice.reason)
    # A box is lifted on frame 0: the camera's own view comes first whatever the source orbits.
    plan = plan_from_settings(context, settings, camera_first=settings.mode == "lift")
    options = {}
    if settings.mode == "lift":
        options = lift_options(settings.box_frame if settings.capture_source == "CAMERA" else 0, box, points)
    _runner = QueryRunner(
        settings.mode,
        text,
        options,
        capture_frames(context, plan, samples=settings.samples),
        backend_for(context, address),
    )
    status.running, status.progress, status.stage = True, 0.0, "health"
    status.message, status.covers = "checking the backend", plan.description
    return _runner


def _start_on_scan(context, settings, camera, text: str, box, points, address=None) -> QueryRunner:
    """A query on an imported scan: its recorded frames by their hash; a box or clicks on the
    recorded frame they were given on (box_frame)."""
    global _runner
    options = {}
    if settings.mode == "lift":
        options = lift_options(settings.box_frame, box, points)
    status = context.window_manager.scene_r1_status
    _runner = QueryRunner(
        settings.mode,
        text,
        options,
        recorded_frames(camera["scene_r1_scan_hash"]),
        backend_for(context, address),
    )
    status.running, status.progress, status.stage = True, 0.0, "health"
    status.message = "checking the backend"
    status.covers = f"the scan's {camera['scene_r1_scan_frames']} recorded frames"
    return _runner


def _finish_on_scan(context, settings, runner: QueryRunner) -> list:
    """A result on a scan: its 3D masks as objects, and the scan mesh's faces they cover split off
    (as Separate covered faces does)."""
    result = runner.result
    chosen = apply_result(context, result)
    scan_obj = next(
        (o for o in bpy.data.objects if o.type == "MESH" and o.get("scene_r1_scan_hash") == runner.capture.scene_hash),
        None,
    )
    parts = [p for p in (separate_covered_faces(context, scan_obj, o) for o in chosen) if p] if scan_obj else []
    for part, obj in zip(parts, chosen):
        part["scene_r1_query"], part["scene_r1_result"] = obj["scene_r1_query"], obj.name
    if parts:
        select_only(context, parts)
        message = f"found {', '.join(p.name for p in parts)} ({sum(len(p.data.polygons) for p in parts):,} faces)"
    elif chosen:
        select_only(context, chosen)
        message = f"its 3D mask is {chosen[0].name}; it covers none of the scan's faces"
    else:
        message = f"nothing found: {no_instance_reason(result)}"
    _finished(context, settings, runner.text, result.mode, message, result.reasoning_text())
    return parts or chosen


def _native_done(context, settings, choice: Choice) -> None:
    info = {
        "query": "box",
        "mode": "lift",
        "reasoning": "selected by the box over the camera view",
        "score": float(choice.scores.get(choice.objects[0], 0.0)),
    }
    chosen = select_result_objects(context, choice.objects, info)
    _finished(context, settings, "box", "lift", f"selected {', '.join(o.name for o in chosen)}", "")


def _finished(context, settings, text: str, mode: str, message: str, reasoning: str, state: str = "done") -> None:
    status = context.window_manager.scene_r1_status
    status.running, status.message = False, message
    settings.answer, settings.reasoning = message, reasoning
    item = settings.history.add()
    item.query, item.mode, item.answer, item.status = text, mode, message, state
    with contextlib.suppress(RuntimeError):  # no undo stack in background mode
        bpy.ops.ed.undo_push(message=f"Scene-R1: {text or 'box'}")


def finish_query(context, runner: QueryRunner) -> list:
    """Apply a finished query on the main thread: the scene's own objects selected (or, for a scanned
    mesh, the 3D mask's points as a new object), the answer, the history and the status."""
    settings, status = context.scene.scene_r1, context.window_manager.scene_r1_status
    status.running = False
    if runner.state != runner.DONE:
        status.message = "cancelled" if runner.state == runner.CANCELLED else f"failed: {runner.error}"
        return []
    result = runner.result
    if result.mode == "ask":
        answer = result.answer or "the model gave no answer in the expected form"
        _finished(context, settings, runner.text, "ask", answer, result.reasoning_text())
        return []
    capture = runner.capture
    if isinstance(capture, RecordedScan):
        return _finish_on_scan(context, settings, runner)
    groups = object_groups([bpy.data.objects[n] for n in capture.object_names if n in bpy.data.objects])
    choice = objects_for_result(result, capture.object_index, capture.object_names, groups)
    choice.objects = [n for n in choice.objects if n in bpy.data.objects]
    reasoning = result.reasoning_text()
    if choice.objects:
        info = {
            "query": result.query or "box",
            "mode": result.mode,
            "reasoning": reasoning,
            "score": float(choice.scores.get(choice.objects[0], 0.0)),
        }
        chosen = select_result_objects(context, choice.objects, info)
        message = f"found {', '.join(o.name for o in chosen)}"
    else:
        chosen = apply_result(context, result)
        if chosen:
            select_only(context, chosen)
            message = f"no whole object ({choice.reason}); its 3D mask is {chosen[0].name}"
        else:
            message = f"nothing found: {choice.reason}"
    _finished(context, settings, runner.text, result.mode, message, reasoning)
    return chosen


def _tick():
    """bpy.app.timers callback: advance the runner, refresh the panel, apply when finished."""
    runner = _runner
    if runner is None:
        return None
    context = bpy.context
    status = context.window_manager.scene_r1_status
    runner.step()
    status.stage, status.progress = runner.stage, 100.0 * runner.fraction
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()
    if not runner.finished:
        return TICK
    try:
        finish_query(context, runner)
    except Exception as error:  # noqa: BLE001 - a timer must not raise
        status.message = f"failed while importing the result: {error}"
    if status.message.startswith("failed"):
        bpy.ops.scene_r1.report("INVOKE_DEFAULT", message=status.message)
    return None


def run_to_end(context, settings=None, timeout: float | None = None) -> list:
    """Start and finish a query in this call (headless scripts: timers do not fire in background mode)."""
    return run_query(context, settings, timeout)[1]


def run_query(context, settings=None, timeout: float | None = None, address: str | None = None) -> tuple[str, list]:
    """run_to_end, with the runner's own state (done / failed / cancelled; done for a native
    selection) and the backend's address for this query only."""
    runner = start_query(context, settings, address)
    if runner is None:
        return QueryRunner.DONE, list(context.selected_objects)
    runner.wait(timeout)
    return runner.state, finish_query(context, runner)


class SCENE_R1_OT_report(bpy.types.Operator):
    """Shows a failed query as a Blender report (timers cannot report themselves)."""

    bl_idname = "scene_r1.report"
    bl_label = "Scene-R1 report"
    bl_options = {"INTERNAL"}
    message: bpy.props.StringProperty()

    def invoke(self, context, event):
        return self.execute(context)

    def execute(self, context):
        self.report({"ERROR"}, f"Scene-R1: {self.message}")
        return {"FINISHED"}


class SCENE_R1_OT_run(bpy.types.Operator):
    """Capture the scene and send the query to the Scene-R1 backend. From scripts:
    bpy.ops.scene_r1.run(query="the mug", mode="ground", wait=True) runs it to the end."""

    bl_idname = "scene_r1.run"
    bl_label = "Run"
    bl_description = "Capture the scene and send the query to the Scene-R1 backend"
    query: bpy.props.StringProperty(name="Query", default="", description="Overrides the panel's query when set")
    mode: bpy.props.StringProperty(name="Mode", default="", description="ground, ask or lift; empty: the panel's")
    # (a string, not an enum: empty means the panel's mode; checked in execute with a one-line error)
    wait: bpy.props.BoolProperty(name="Wait", default=False, description="Run to the end in this call (scripts)")

    def execute(self, context):
        settings = context.scene.scene_r1
        if self.mode and self.mode not in QUERY_MODES:
            self.report({"ERROR"}, f"Scene-R1: unknown mode {self.mode!r}; use {', '.join(QUERY_MODES)} (or empty)")
            return {"CANCELLED"}
        if self.query:
            settings.query = self.query
        if self.mode:
            settings.mode = self.mode
        try:
            if self.wait:
                run_to_end(context, settings)
                status = context.window_manager.scene_r1_status
                level = "ERROR" if status.message.startswith(("failed", "nothing")) else "INFO"
                self.report({level}, f"Scene-R1: {status.message}")
                return {"FINISHED"} if level == "INFO" else {"CANCELLED"}
            if start_query(context, settings) is None:
                return {"FINISHED"}
        except (ValueError, RuntimeError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        if not bpy.app.timers.is_registered(_tick):  # one timer drives whichever query runs
            bpy.app.timers.register(_tick, first_interval=0.0)
        return {"FINISHED"}


class SCENE_R1_OT_cancel(bpy.types.Operator):
    bl_idname = "scene_r1.cancel"
    bl_label = "Cancel"
    bl_description = "Stop the running query; nothing of it is kept"

    def execute(self, context):
        if _runner is not None and not _runner.finished:
            _runner.cancel()
        return {"FINISHED"}


classes = (SCENE_R1_OT_run, SCENE_R1_OT_cancel, SCENE_R1_OT_report)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister() -> None:
    global _runner
    if _runner is not None and not _runner.finished:
        _runner.cancel()
    _runner = None
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
