"""A scan opened by the backend as Blender data (bpy side of core/scan.py): the fused mesh with its
vertex colours and the recording's camera as an animated camera, in the "Scene-R1 scan" collection;
and the Import scan operator."""

from __future__ import annotations

import dataclasses

import bpy
import numpy as np

from .core.scan import (
    SCAN_COLLECTION,
    ScanOpener,
    camera_keyframes,
    camera_settings,
    mesh_buffers,
    scan_fps,
    scan_frame_at,
)
from .preferences import backend_from_preferences
from .results import linked_collection

COLOR_ATTRIBUTE = "Col"
_opener: ScanOpener | None = None


def scan_collection(context) -> bpy.types.Collection:
    return linked_collection(context, SCAN_COLLECTION)


def scan_material() -> bpy.types.Material:
    """Shows the recorded colours (the mesh's colour attribute) in renders and material preview."""
    material = bpy.data.materials.get("Scene-R1 scan colours")
    if material is None:
        material = bpy.data.materials.new("Scene-R1 scan colours")
        if bpy.app.version < (5, 0, 0):
            material.use_nodes = True
        nodes = material.node_tree.nodes
        nodes.clear()
        colours = nodes.new("ShaderNodeVertexColor")
        colours.layer_name = COLOR_ATTRIBUTE
        shader = nodes.new("ShaderNodeBsdfDiffuse")
        output = nodes.new("ShaderNodeOutputMaterial")
        material.node_tree.links.new(colours.outputs["Color"], shader.inputs["Color"])
        material.node_tree.links.new(shader.outputs["BSDF"], output.inputs["Surface"])
    return material


def build_mesh(name: str, scan) -> bpy.types.Mesh:
    buffers = mesh_buffers(scan.vertices, scan.triangles, scan.colors)
    mesh = bpy.data.meshes.new(name)
    mesh.vertices.add(len(scan.vertices))
    mesh.vertices.foreach_set("co", buffers["co"])
    mesh.loops.add(len(buffers["vertex_index"]))
    mesh.loops.foreach_set("vertex_index", buffers["vertex_index"])
    mesh.polygons.add(len(scan.triangles))
    mesh.polygons.foreach_set("loop_start", buffers["loop_start"])  # loop_total follows (Blender 4.0+)
    mesh.update(calc_edges=True)
    attribute = mesh.color_attributes.new(COLOR_ATTRIBUTE, "BYTE_COLOR", "POINT")
    key = "color_srgb" if len(attribute.data) and hasattr(attribute.data[0], "color_srgb") else "color"
    attribute.data.foreach_set(key, buffers["color"])
    mesh.materials.append(scan_material())
    return mesh


def build_camera(context, name: str, scan, frame_start: int) -> bpy.types.Object:
    settings = camera_settings(scan.intrinsics, scan.color_size)
    data = bpy.data.cameras.new(name)
    data.sensor_fit, data.sensor_width, data.lens = settings["sensor_fit"], settings["sensor_width"], settings["lens"]
    data.shift_x, data.shift_y = settings["shift_x"], settings["shift_y"]
    data.clip_start, data.clip_end = 0.05, 100.0
    camera = bpy.data.objects.new(name, data)
    camera.rotation_mode = "QUATERNION"
    keys = camera_keyframes(scan.poses, frame_start)
    for frame, location, rotation in zip(keys["frames"], keys["location"], keys["rotation_quaternion"]):
        camera.location, camera.rotation_quaternion = location.tolist(), rotation.tolist()
        camera.keyframe_insert("location", frame=float(frame))
        camera.keyframe_insert("rotation_quaternion", frame=float(frame))
    render = context.scene.render
    render.resolution_x, render.resolution_y = settings["resolution_x"], settings["resolution_y"]
    render.resolution_percentage = 100
    render.pixel_aspect_x, render.pixel_aspect_y = settings["pixel_aspect_x"], settings["pixel_aspect_y"]
    return camera


def import_scan(context, scan, path: str = "") -> tuple[bpy.types.Object, bpy.types.Object]:
    """(mesh object, camera object) of an opened scan, linked into the "Scene-R1 scan" collection;
    the camera becomes the scene's camera and the scene's frames are the recording's."""
    name = (scan.name or "scan")[:50]
    frame_start = 1
    mesh_obj = bpy.data.objects.new(f"{name} mesh", build_mesh(f"{name} mesh", scan))
    camera = build_camera(context, f"{name} camera", scan, frame_start)
    for obj in (mesh_obj, camera):
        obj["scene_r1_scan_hash"] = scan.hash
        obj["scene_r1_scan_path"] = path
    camera["scene_r1_scan_frame_start"] = frame_start
    camera["scene_r1_scan_frames"] = scan.frames
    camera["scene_r1_scan_color_size"] = list(scan.color_size)
    camera["scene_r1_scan_intrinsics"] = np.asarray(scan.intrinsics, float).ravel().tolist()
    collection = scan_collection(context)
    collection.objects.link(mesh_obj)
    collection.objects.link(camera)
    scene = context.scene
    scene.camera = camera
    scene.render.fps, scene.render.fps_base = scan_fps(scan.timestamps), 1.0
    scene.frame_start, scene.frame_end = frame_start, frame_start + scan.frames - 1
    scene.frame_set(frame_start)
    return mesh_obj, camera


# ---- the scan a query runs on ------------------------------------------------------------------------
def active_scan_camera(context):
    """The scene camera when it is a scan's camera (queries then run on the recorded frames), else None."""
    camera = context.scene.camera
    return camera if camera is not None and camera.get("scene_r1_scan_hash") else None


def scan_mesh_for(camera):
    """The mesh object of the scan whose camera this is (None when it was deleted)."""
    key = camera.get("scene_r1_scan_hash")
    return next((o for o in bpy.data.objects if o.type == "MESH" and o.get("scene_r1_scan_hash") == key), None)


def scan_frame_intrinsics(context, camera):
    """(recorded frame index at the current Blender frame, its colour intrinsics)."""
    from ..shared.camera import Intrinsics

    frames = int(camera["scene_r1_scan_frames"])
    index = scan_frame_at(context.scene.frame_current, int(camera["scene_r1_scan_frame_start"]), frames)
    fx, fy, cx, cy = np.asarray(camera["scene_r1_scan_intrinsics"], float).reshape(frames, 4)[index]
    width, height = (int(v) for v in camera["scene_r1_scan_color_size"])
    return index, Intrinsics(fx, fy, cx, cy, width, height)


def gesture_intrinsics(context, settings):
    """(render intrinsics, intrinsics of the image a box or click is given in, frame index): the
    scan's recorded frame under its camera, else the capture of the camera's own view (frame 0)."""
    from .capture import camera_view
    from .core.region import camera_intrinsics

    camera = active_scan_camera(context)
    if camera is None:
        at_render, at_capture, _ = camera_view(context, settings)
        return at_render, at_capture, 0
    index, recorded = scan_frame_intrinsics(context, camera)
    at_render, _ = camera_intrinsics(camera.data, context.scene.render, recorded.size)
    return at_render, recorded, index


# ---- operators ---------------------------------------------------------------------------------------
def open_scan_start(context, path: str, voxel: float = 0.0, address: str | None = None) -> ScanOpener:
    """Start opening a capture folder on the backend (`address`: for this call only, never saved)."""
    global _opener
    if _opener is not None and not _opener.finished:
        raise RuntimeError("a scan is already being opened; cancel it first")
    backend = backend_from_preferences(context)
    if address is not None:
        backend = dataclasses.replace(backend, address=address)
    options = {"voxel": round(float(voxel), 4)} if voxel else {}  # a float32 property: 0.02 is 0.0199999...
    _opener = ScanOpener(path, backend.connect, options, deadline=backend.deadline)
    status = context.window_manager.scene_r1_status
    status.running, status.progress, status.stage, status.message = True, 0.0, "open", f"opening {path}"
    return _opener


def open_scan_finish(context, opener: ScanOpener):
    """Build the opened scan's objects on the main thread; (mesh, camera) or None (the status says why)."""
    status = context.window_manager.scene_r1_status
    status.running = False
    if opener.state != opener.DONE:
        status.message = "cancelled" if opener.state == opener.CANCELLED else f"failed: {opener.error}"
        return None
    mesh_obj, camera = import_scan(context, opener.scan, opener.path)
    _show_colours(context)
    status.message = (
        f"imported {mesh_obj.name}: {len(opener.scan.triangles):,} triangles, {opener.scan.frames} recorded frames;"
        " queries through its camera run on those frames"
    )
    return mesh_obj, camera


def _show_colours(context) -> None:
    """Solid viewports show colour attributes (the recorded colours) instead of one grey."""
    screen = getattr(context, "screen", None)
    for area in screen.areas if screen is not None else ():
        if area.type == "VIEW_3D" and area.spaces.active.shading.type == "SOLID":
            area.spaces.active.shading.color_type = "VERTEX"


def _tick():
    opener = _opener
    if opener is None:
        return None
    status = bpy.context.window_manager.scene_r1_status
    opener.step()
    status.stage, status.progress = opener.stage, 100.0 * opener.fraction
    if not opener.finished:
        return 0.1
    try:
        open_scan_finish(bpy.context, opener)
    except Exception as error:  # noqa: BLE001 - a timer must not raise
        status.message = f"failed while importing the scan: {error}"
    if status.message.startswith("failed"):
        bpy.ops.scene_r1.report("INVOKE_DEFAULT", message=status.message)
    return None


class SCENE_R1_OT_import_scan(bpy.types.Operator):
    """Open a capture folder on the backend's machine (7-Scenes, ScanNet, Record3D, Scene-R1...): its
    fused mesh and camera path come in; queries through its camera then run on its recorded frames.
    From scripts: bpy.ops.scene_r1.import_scan(path="/data/scan", wait=True)."""

    bl_idname = "scene_r1.import_scan"
    bl_label = "Import scan"
    bl_description = "Open an RGB-D capture folder on the backend's machine: fused mesh + camera path"
    path: bpy.props.StringProperty(name="Folder on the backend", default="", description="Absolute path there")
    voxel: bpy.props.FloatProperty(name="Voxel (m)", default=0.02, min=0.0, max=0.5, description="0: the backend's")
    wait: bpy.props.BoolProperty(name="Wait", default=False, description="Open and import in this call (scripts)")

    def invoke(self, context, event):
        self.path = self.path or context.scene.scene_r1.scan_path
        return context.window_manager.invoke_props_dialog(self, width=480)

    def execute(self, context):
        context.scene.scene_r1.scan_path = self.path
        try:
            opener = open_scan_start(context, self.path, self.voxel)
        except (ValueError, RuntimeError) as error:
            self.report({"ERROR"}, str(error))
            return {"CANCELLED"}
        if self.wait:
            opener.wait()
            done = open_scan_finish(context, opener)
            message = context.window_manager.scene_r1_status.message
            self.report({"INFO" if done else "ERROR"}, f"Scene-R1: {message}")
            return {"FINISHED"} if done else {"CANCELLED"}
        if not bpy.app.timers.is_registered(_tick):
            bpy.app.timers.register(_tick, first_interval=0.0)
        return {"FINISHED"}


classes = (SCENE_R1_OT_import_scan,)


def register() -> None:
    for cls in classes:
        bpy.utils.register_class(cls)


def unregister() -> None:
    global _opener
    if _opener is not None and not _opener.finished:
        _opener.cancel()
    _opener = None
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    for cls in reversed(classes):
        bpy.utils.unregister_class(cls)
