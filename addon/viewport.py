"""Operators on the viewport and on results: draw a box, click or click points over the camera view,
select what a scan's result covers, separate a scan's covered faces, start and stop a local backend."""

import bpy

from . import preferences
from .core.region import region_box_to_frame, region_point_to_pixel
from .core.scan import PointClicks, prompt_point
from .results import select_covered, separate_covered_faces
from .scan import gesture_intrinsics


class BoxDrag:
    """The draw-box gesture as a small state machine (the modal operator feeds it Blender's events):
    press, release -> a box, or a click when the pointer barely moved."""

    CLICK_PIXELS = 3.0

    def __init__(self):
        self.start = None

    def feed(self, kind: str, value: str, x: float, y: float):
        """-> None (keep going), "cancel", ("box", start, end) or ("click", point)."""
        if kind in {"ESC", "RIGHTMOUSE"}:
            return "cancel"
        if kind != "LEFTMOUSE":
            return None
        if value == "PRESS":
            self.start = (x, y)
        elif value == "RELEASE" and self.start is not None:
            start, self.start = self.start, None
            if max(abs(x - start[0]), abs(y - start[1])) < self.CLICK_PIXELS:
                return ("click", (x, y))
            return ("box", start, (x, y))
        return None


def camera_frame_in_region(context) -> list:
    """The active camera's frame (render aspect, fit and shift included) in region pixels."""
    from bpy_extras.view3d_utils import location_3d_to_region_2d

    camera = context.scene.camera
    corners = camera.data.view_frame(scene=context.scene)
    points = [location_3d_to_region_2d(context.region, context.region_data, camera.matrix_world @ c) for c in corners]
    return [(p.x, p.y) for p in points if p is not None]


def apply_gesture(context, gesture, frame_corners) -> str:
    """A finished box or click over the camera view -> the panel's box, then the query runs."""
    settings = context.scene.scene_r1
    at_render, at_capture, frame = gesture_intrinsics(context, settings)  # a scan's recorded frame, or the capture
    if gesture[0] == "click":
        column, row = region_point_to_pixel(gesture[1], frame_corners, at_render, at_capture)
        box = [column - 0.5, row - 0.5, column + 1.5, row + 1.5]  # the clicked pixel, widened to a 2 px box
        width, height = at_capture.size
        box = [max(box[0], 0.0), max(box[1], 0.0), min(box[2], float(width)), min(box[3], float(height))]
    else:
        box = region_box_to_frame(gesture[1], gesture[2], frame_corners, at_render, at_capture)
    if frame != settings.box_frame:
        settings.points.clear()  # clicks on another recorded frame are not about this box
    settings.box, settings.mode, settings.box_frame = box, "lift", frame
    settings.click = gesture[0] == "click"  # a scene of separate objects: the object under it (object_at)
    return gesture[0]


def start_gesture(operator, context, what: str, status: str) -> set:
    """A gesture operator's invoke: only over the camera view; then modal, with its hint in the status bar."""
    if context.area is None or context.area.type != "VIEW_3D" or context.region_data.view_perspective != "CAMERA":
        operator.report({"ERROR"}, f"look through the active camera (Numpad 0) and {what}")
        return {"CANCELLED"}
    context.window_manager.modal_handler_add(operator)
    context.workspace.status_text_set(status)
    return {"RUNNING_MODAL"}


class SCENE_R1_OT_draw_box(bpy.types.Operator):
    """Drag a rectangle (or click) over the camera view; the object inside is selected."""

    bl_idname = "scene_r1.draw_box"
    bl_label = "Draw box"
    bl_description = "Drag a rectangle over the camera view around the object (or click on it)"

    def invoke(self, context, event):
        self.drag = BoxDrag()
        return start_gesture(
            self, context, "drag over it", "Scene-R1: drag a rectangle around the object, or click it (Esc cancels)"
        )

    def modal(self, context, event):
        gesture = self.drag.feed(event.type, event.value, event.mouse_region_x, event.mouse_region_y)
        if gesture is None:
            return {"RUNNING_MODAL"}
        context.workspace.status_text_set(None)
        if gesture == "cancel":
            return {"CANCELLED"}
        try:
            apply_gesture(context, gesture, camera_frame_in_region(context))
        except ValueError as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        bpy.ops.scene_r1.run()
        return {"FINISHED"}


def add_click(context, point, frame_corners, label: int) -> list:
    """A click over the camera view -> a point of the box query, in the frame's capture pixels (the
    frame the scan's camera shows, for a scan)."""
    settings = context.scene.scene_r1
    at_render, at_image, frame = gesture_intrinsics(context, settings)
    column, row = region_point_to_pixel(point, frame_corners, at_render, at_image)
    x, y, label = prompt_point(column, row, label)
    if frame != settings.box_frame:  # a box or clicks on another recorded frame: a new prompt
        settings.points.clear()
        settings.box = (0, 0, 0, 0)
    settings.click = False  # click prompts are lifted by the backend, not selected natively
    item = settings.points.add()
    item.x, item.y, item.label = x, y, label
    settings.mode, settings.box_frame = "lift", frame
    return [x, y, label]


class SCENE_R1_OT_click_points(bpy.types.Operator):
    """Click on the object in the camera view (ctrl+click: not the object); Enter runs the box query."""

    bl_idname = "scene_r1.click_points"
    bl_label = "Click points"
    bl_description = "Click the object in the camera view (ctrl+click marks what is not it); Enter runs the query"

    def invoke(self, context, event):
        self.clicks = PointClicks()
        return start_gesture(
            self,
            context,
            "click on it",
            "Scene-R1: click the object, ctrl+click what is not it; Backspace undoes; Enter runs; Esc stops",
        )

    def modal(self, context, event):
        gesture = self.clicks.feed(event.type, event.value, event.mouse_region_x, event.mouse_region_y, event.ctrl)
        if gesture is None:
            return {"RUNNING_MODAL"} if event.type in {"LEFTMOUSE", "MOUSEMOVE"} else {"PASS_THROUGH"}
        points = context.scene.scene_r1.points
        if gesture == "undo" and len(points):
            points.remove(len(points) - 1)
        elif isinstance(gesture, tuple):
            try:
                add_click(context, gesture[1], camera_frame_in_region(context), gesture[2])
            except ValueError as error:
                self.report({"WARNING"}, str(error))
        if gesture not in ("done", "cancel"):
            return {"RUNNING_MODAL"}
        context.workspace.status_text_set(None)
        if gesture == "done":
            bpy.ops.scene_r1.run()
        return {"FINISHED"}


class SCENE_R1_OT_clear_points(bpy.types.Operator):
    bl_idname = "scene_r1.clear_points"
    bl_label = "Clear points"
    bl_description = "Forget the clicked points (and the box)"

    def execute(self, context):
        settings = context.scene.scene_r1
        settings.points.clear()
        settings.box = (0, 0, 0, 0)
        return {"FINISHED"}


class SCENE_R1_OT_select_covered(bpy.types.Operator):
    bl_idname = "scene_r1.select_covered"
    bl_label = "Select covered objects"
    bl_description = "Select the scene's objects the active result's 3D mask covers"
    bl_options = {"REGISTER", "UNDO"}
    radius: bpy.props.FloatProperty(
        name="Radius", default=0.03, min=0.001, description="Metres from a mask point to a surface"
    )

    @classmethod
    def poll(cls, context):
        obj = context.active_object
        return obj is not None and "scene_r1_query" in obj and obj.type == "MESH" and not obj.data.polygons

    def execute(self, context):
        chosen = select_covered(context, context.active_object, self.radius)
        self.report(
            {"INFO"}, f"selected {', '.join(o.name for o in chosen)}" if chosen else "the mask covers no object"
        )
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
        return (
            result is not None
            and "scene_r1_query" in result
            and any(o.type == "MESH" and o != result for o in context.selected_objects)
        )

    def execute(self, context):
        result = context.active_object
        scan = next(o for o in context.selected_objects if o.type == "MESH" and o != result)
        part = separate_covered_faces(context, scan, result, self.radius)
        if part is None:
            self.report({"WARNING"}, "the mask covers none of its faces")
            return {"CANCELLED"}
        self.report({"INFO"}, f"separated {part.name}")
        return {"FINISHED"}


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


classes = (
    SCENE_R1_OT_draw_box,
    SCENE_R1_OT_click_points,
    SCENE_R1_OT_clear_points,
    SCENE_R1_OT_select_covered,
    SCENE_R1_OT_separate_faces,
    SCENE_R1_OT_start_backend,
    SCENE_R1_OT_stop_backend,
)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister() -> None:
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
