"""Running a query: thin shells over core/ (decisions), capture.py and results.py (bpy work)."""

import contextlib

import bpy

from . import preferences
from .capture import World, camera_view, capture_frames, object_groups, plan_from_settings, scene_meshes
from .core.query import Backend, QueryRunner, validate_query
from .core.selection import Choice, objects_for_result, objects_in_box
from .results import apply_result, select_only, select_result_objects

_runner: QueryRunner | None = None
TICK = 0.1


def backend_from_preferences(context) -> Backend:
    prefs = preferences.get(context)
    if prefs is None:
        return Backend(preferences.DEFAULT_ADDRESS)
    return Backend(prefs.backend_address, prefs.curve_keys, prefs.timeout, deadline=prefs.deadline)


def native_box(context, settings) -> Choice:
    """A box over the camera's view -> the scene's own objects under it (exact object-index map of
    that view; no backend, no tracker). An empty Choice when no single object fits (a scan)."""
    if context.scene.camera is None or settings.capture_source == "CAMERA":
        return Choice(reason="the box is on an animation frame; the backend lifts it")
    _, intrinsics, pose = camera_view(context, settings)
    meshes = scene_meshes(context)
    world = World(context, meshes)
    index = world.cast(intrinsics, pose)[1]
    return objects_in_box(index, world.names, [float(v) for v in settings.box], object_groups(meshes))


def start_query(context, settings=None) -> QueryRunner | None:
    """Start a query from the panel's settings. A box over a scene of separate objects is answered at
    once (returns None); anything else starts a QueryRunner (health check, capture, backend)."""
    global _runner
    if _runner is not None and not _runner.finished:
        raise RuntimeError("a Scene-R1 query is already running; cancel it first")
    settings = settings or context.scene.scene_r1
    status = context.window_manager.scene_r1_status
    box = [float(v) for v in settings.box] if settings.mode == "lift" else None
    text = validate_query(settings.mode, settings.query, box)  # before anything runs
    if settings.mode == "lift":
        choice = native_box(context, settings)
        if choice.objects:
            _native_done(context, settings, choice)
            return None
        if not choice.scores and "empty background" in choice.reason:  # nothing there to lift either
            raise ValueError(choice.reason)
    plan = plan_from_settings(context, settings)
    options = {}
    if settings.mode == "lift":
        options = {"frame": settings.box_frame if settings.capture_source == "CAMERA" else 0, "box": box}
    _runner = QueryRunner(
        settings.mode,
        text,
        options,
        capture_frames(context, plan, samples=settings.samples),
        backend_from_preferences(context),
    )
    status.running, status.progress, status.stage = True, 0.0, "health"
    status.message, status.covers = "checking the backend", plan.description
    return _runner


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
    runner = start_query(context, settings)
    if runner is None:
        return list(context.selected_objects)
    runner.wait(timeout)
    return finish_query(context, runner)


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
    wait: bpy.props.BoolProperty(name="Wait", default=False, description="Run to the end in this call (scripts)")

    def execute(self, context):
        settings = context.scene.scene_r1
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
