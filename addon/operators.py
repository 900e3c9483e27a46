"""Operators: thin shells over capture.py, session.py and results.py."""

import bpy
import numpy as np

from ..shared.camera import blender_to_opencv_pose, intrinsics_from_blender
from ..shared.capture import orbit_plan, region_box_to_frame, with_first_view
from . import preferences
from .capture import capture_bounds, plan_from_settings
from .results import apply_result, select_covered, separate_covered_faces
from .session import QueryRunner

_runner: QueryRunner | None = None
TICK = 0.1


def active_runner() -> QueryRunner | None:
    return _runner


def build_plan(context, settings):
    """The capture plan for the panel's settings. "From a box" puts the active camera's view (where
    the box was drawn) first, then orbits the scene or selection with the same intrinsics."""
    if settings.mode != "lift":
        return plan_from_settings(context, settings), {}
    box = [float(v) for v in settings.box]
    if settings.capture_source == "CAMERA":
        return plan_from_settings(context, settings), {"frame": settings.box_frame, "box": box}
    camera = context.scene.camera
    if camera is None:
        raise ValueError("From a box needs an active camera: the box is drawn over its view")
    data = camera.data
    if data.shift_x or data.shift_y:
        raise ValueError("From a box needs a camera without lens shift")
    intrinsics = intrinsics_from_blender(data.lens, data.sensor_width, data.sensor_height, data.sensor_fit, settings.width, settings.height)
    centre, size = capture_bounds(context, settings)
    orbit = orbit_plan(centre, size, frames=max(settings.frames - 1, 2), fps=settings.fps, intrinsics=intrinsics)
    return with_first_view(orbit, blender_to_opencv_pose(np.array(camera.matrix_world)), settings.fps), {"frame": 0, "box": box}


def start_query(context, settings=None) -> QueryRunner:
    """Start a query from the panel's settings (also the scripting entry point)."""
    global _runner
    if _runner is not None and not _runner.finished:
        raise RuntimeError("a Scene-R1 query is already running; cancel it first")
    settings = settings or context.scene.scene_r1
    prefs = preferences.get(context)
    if settings.mode != "lift" and not settings.query.strip():
        raise ValueError("type a query first")
    plan, options = build_plan(context, settings)
    _runner = QueryRunner(context, plan, settings.mode, settings.query.strip(), options,
                          address=prefs.backend_address if prefs else "tcp://127.0.0.1:5555",
                          curve_folder=prefs.curve_keys if prefs else "", timeout=prefs.timeout if prefs else 60.0,
                          samples=settings.samples)
    status = context.window_manager.scene_r1_status
    status.running, status.progress, status.stage, status.message = True, 0.0, "capture", "capturing views"
    return _runner


def finish_query(context, runner: QueryRunner) -> list:
    """Apply a finished query on the main thread: objects (one undo step), answer, history, status."""
    settings, status = context.scene.scene_r1, context.window_manager.scene_r1_status
    status.running = False
    created = []
    if runner.state == runner.DONE:
        payload = runner.reply.payload
        created = apply_result(context, runner.reply)
        stages = payload.get("stages", {})
        reasoning = "\n".join(f"{name}: {info['reasoning']}" for name, info in stages.items() if info.get("reasoning"))
        settings.answer = payload.get("answer", "") or (f"{len(created)} object(s) found" if created else "nothing could be lifted into 3D")
        settings.reasoning = reasoning
        status.message = settings.answer
        item = settings.history.add()
        item.query, item.mode, item.answer, item.status = runner.text, runner.mode, settings.answer, "done"
        if created:
            for obj in context.view_layer.objects:
                obj.select_set(obj in created)
            context.view_layer.objects.active = created[0]
            try:
                bpy.ops.ed.undo_push(message=f"Scene-R1: {runner.text or 'box'}")
            except RuntimeError:  # no undo stack (background mode)
                pass
    else:
        status.message = "cancelled" if runner.state == runner.CANCELLED else f"failed: {runner.error}"
    return created


def _tick():
    """bpy.app.timers callback: advance the runner, refresh the panel, apply when finished."""
    runner = _runner
    if runner is None:
        return None
    context = bpy.context
    status = context.window_manager.scene_r1_status
    try:
        runner.step()
    except Exception as error:  # noqa: BLE001 - a timer must not raise
        runner.state, runner.error = runner.FAILED, str(error)
    status.stage, status.progress = runner.stage, 100.0 * runner.fraction
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type == "VIEW_3D":
                area.tag_redraw()
    if not runner.finished:
        return TICK
    try:
        finish_query(context, runner)
    except Exception as error:  # noqa: BLE001
        status.message = f"failed while importing the result: {error}"
    if status.message.startswith("failed"):
        bpy.ops.scene_r1.report("INVOKE_DEFAULT", message=status.message)
    return None


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
    bl_idname = "scene_r1.run"
    bl_label = "Run"
    bl_description = "Capture the scene and send the query to the Scene-R1 backend"

    def execute(self, context):
        try:
            start_query(context)
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


class SCENE_R1_OT_select_covered(bpy.types.Operator):
    bl_idname = "scene_r1.select_covered"
    bl_label = "Select covered objects"
    bl_description = "Select the scene's objects the active result's 3D mask covers"
    bl_options = {"REGISTER", "UNDO"}
    radius: bpy.props.FloatProperty(name="Radius", default=0.03, min=0.001, description="Metres from a mask point to a surface")

    @classmethod
    def poll(cls, context):
        return context.active_object is not None and "scene_r1_query" in context.active_object

    def execute(self, context):
        chosen = select_covered(context, context.active_object, self.radius)
        self.report({"INFO"}, f"selected {', '.join(o.name for o in chosen)}" if chosen else "the mask covers no object")
        return {"FINISHED"}


class SCENE_R1_OT_separate_faces(bpy.types.Operator):
    bl_idname = "scene_r1.separate_faces"
    bl_label = "Separate covered faces"
    bl_description = "Split the faces of the selected scanned mesh that the active result covers into a new object"
    bl_options = {"REGISTER", "UNDO"}
    radius: bpy.props.FloatProperty(name="Radius", default=0.03, min=0.001)

    @classmethod
    def poll(cls, context):
        result = context.active_object
        return result is not None and "scene_r1_query" in result and any(o.type == "MESH" and o != result for o in context.selected_objects)

    def execute(self, context):
        result = context.active_object
        scan = next(o for o in context.selected_objects if o.type == "MESH" and o != result)
        part = separate_covered_faces(context, scan, result, self.radius)
        if part is None:
            self.report({"WARNING"}, "the mask covers none of its faces")
            return {"CANCELLED"}
        self.report({"INFO"}, f"separated {part.name}")
        return {"FINISHED"}


class SCENE_R1_OT_draw_box(bpy.types.Operator):
    """Drag a rectangle over the camera view; the object inside is lifted to 3D."""

    bl_idname = "scene_r1.draw_box"
    bl_label = "Draw box"
    bl_description = "Drag a rectangle over the camera view around the object to lift"

    def invoke(self, context, event):
        if context.area is None or context.area.type != "VIEW_3D" or context.region_data.view_perspective != "CAMERA":
            self.report({"ERROR"}, "look through the active camera (Numpad 0) and drag over it")
            return {"CANCELLED"}
        self.start = None
        context.window_manager.modal_handler_add(self)
        context.workspace.status_text_set("Scene-R1: drag a rectangle around the object (Esc cancels)")
        return {"RUNNING_MODAL"}

    def modal(self, context, event):
        if event.type in {"ESC", "RIGHTMOUSE"}:
            context.workspace.status_text_set(None)
            return {"CANCELLED"}
        if event.type == "LEFTMOUSE" and event.value == "PRESS":
            self.start = (event.mouse_region_x, event.mouse_region_y)
        elif event.type == "LEFTMOUSE" and event.value == "RELEASE" and self.start is not None:
            context.workspace.status_text_set(None)
            settings = context.scene.scene_r1
            try:
                settings.box = region_box_to_frame(self.start, (event.mouse_region_x, event.mouse_region_y),
                                                   camera_frame_in_region(context), (settings.width, settings.height))
            except ValueError as error:
                self.report({"ERROR"}, str(error))
                return {"CANCELLED"}
            settings.mode = "lift"
            bpy.ops.scene_r1.run()
            return {"FINISHED"}
        return {"RUNNING_MODAL"}


def camera_frame_in_region(context) -> list:
    from bpy_extras.view3d_utils import location_3d_to_region_2d

    camera = context.scene.camera
    corners = camera.data.view_frame(scene=context.scene)
    points = [location_3d_to_region_2d(context.region, context.region_data, camera.matrix_world @ c) for c in corners]
    return [(p.x, p.y) for p in points if p is not None]


class SCENE_R1_OT_start_backend(bpy.types.Operator):
    bl_idname = "scene_r1.start_backend"
    bl_label = "Start local backend"

    def execute(self, context):
        prefs = preferences.get(context)
        try:
            preferences.start_local_backend(prefs.backend_command, prefs.backend_address, prefs.backend_arguments)
        except (ValueError, OSError) as error:
            self.report({"ERROR"}, f"could not start the backend: {error}")
            return {"CANCELLED"}
        return {"FINISHED"}


class SCENE_R1_OT_stop_backend(bpy.types.Operator):
    bl_idname = "scene_r1.stop_backend"
    bl_label = "Stop local backend"

    def execute(self, context):
        preferences.stop_local_backend()
        return {"FINISHED"}


classes = (SCENE_R1_OT_run, SCENE_R1_OT_cancel, SCENE_R1_OT_report, SCENE_R1_OT_select_covered, SCENE_R1_OT_separate_faces, SCENE_R1_OT_draw_box,
           SCENE_R1_OT_start_backend, SCENE_R1_OT_stop_backend)


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
