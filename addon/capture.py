"""Capturing a Blender scene as an RGB-D video for the backend (bpy side of core/capture and core/framing).

Colour comes from Cycles. Depth and object index come from ray casting the evaluated meshes through
mathutils' BVH: exact planar depth on every Blender from 4.2 to 5.2 (Blender 5.0 in background mode
writes only the Combined pass to multilayer EXR, so render passes are not a portable source of
depth), and the object index says exactly which object each pixel shows. Everything the capture
touches (render settings, a temporary camera, images) is restored.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

import bpy
import numpy as np
from mathutils import Matrix, Vector
from mathutils.bvhtree import BVHTree

from ..shared.camera import blender_to_opencv_pose
from ..shared.scene import Scene
from .core.candidates import ObjectFacts, capture_table
from .core.capture import CapturePlan, animation_frames
from .core.framing import Box, camera_orbit, describe, seen_objects, small_objects, target_bounds
from .core.region import blender_camera_for, camera_intrinsics, capture_size

RESULT_COLLECTION = "Scene-R1"


@dataclass
class Capture:
    """What was captured: an in-memory Scene plus, per frame, which object each pixel shows."""

    scene: Scene
    object_index: list = field(default_factory=list)  # per frame: HxW int32, 0 = nothing, k = object_names[k - 1]
    object_names: list = field(default_factory=list)


def scene_meshes(context, exclude_results: bool = True) -> list:
    """Visible mesh objects, without our own result objects."""
    results = bpy.data.collections.get(RESULT_COLLECTION)
    skip = set(results.all_objects) if (results is not None and exclude_results) else set()
    return [o for o in context.scene.objects if o.type == "MESH" and o.visible_get() and o not in skip]


def object_boxes(objects) -> dict[str, Box]:
    """World-space bounds of objects (their bound-box corners)."""
    return {o.name: Box.of(_corners(o)) for o in objects}


def _corners(obj) -> np.ndarray:
    matrix = np.array(obj.matrix_world)
    return np.array([matrix @ np.append(np.array(c), 1.0) for c in obj.bound_box])[:, :3]


def object_groups(objects) -> dict[str, str]:
    """Each object's group: the top of its parent tree (parts parented together form one thing)."""
    groups = {}
    for obj in objects:
        top = obj
        while top.parent is not None:
            top = top.parent
        groups[obj.name] = top.name
    return groups


def camera_view(context, settings):
    """(render intrinsics, capture intrinsics, OpenCV pose) of the active camera's own view, captured
    at the largest size with the render's aspect inside the panel's width x height."""
    camera = context.scene.camera
    if camera is None:
        raise ValueError("the scene has no active camera (add one, or capture the selection or the scene)")
    if camera.data.type != "PERSP":
        raise ValueError(f"the active camera is {camera.data.type.lower()}; Scene-R1 captures perspective cameras")
    render = context.scene.render
    size = capture_size(
        render.resolution_x,
        render.resolution_y,
        settings.width,
        settings.height,
        render.pixel_aspect_x,
        render.pixel_aspect_y,
    )
    at_render, at_capture = camera_intrinsics(camera.data, render, size)
    return at_render, at_capture, blender_to_opencv_pose(np.array(camera.matrix_world))


def plan_from_settings(context, settings, world: World | None = None, camera_first: bool = False) -> CapturePlan:
    """The panel's capture settings -> which views to render (see core.framing for the default).
    `camera_first`: the camera's own view is frame 0 whatever the source orbits (a box drawn over
    it is lifted on that frame); the animation source keeps its own frames."""
    source = settings.capture_source
    if source == "CAMERA":
        return _animation_plan(context, settings)
    meshes = scene_meshes(context)
    boxes = object_boxes(meshes)
    selected = [o.name for o in context.selected_objects if o.name in boxes]
    if source == "AUTO" and context.scene.camera is not None:
        _, intrinsics, pose = camera_view(context, settings)
        world = world or World(context, meshes)
        counts = np.bincount(world.cast(intrinsics, pose)[1].ravel(), minlength=len(world.names) + 1)
        pixels = {n: int(counts[k]) for k, n in enumerate(world.names, 1)}
        if selected:
            names, what = selected, "the camera's view, then around the selection"
        else:
            names, what = seen_objects(pixels, boxes), "the camera's view, then around what it sees"
        centre, size = target_bounds(names, boxes)
        description = describe(names, what, small_objects(pixels, names))
        return camera_orbit(pose, intrinsics, centre, size, settings.frames, settings.fps, description)
    if source == "SELECTION" and selected:
        names, what = selected, "around the selection"
    else:
        names, what = sorted(boxes), "around every visible mesh"
    centre, size = target_bounds(names, boxes)
    if camera_first and context.scene.camera is not None:
        _, intrinsics, pose = camera_view(context, settings)
        description = describe(names, "the camera's view, then " + what)
        return camera_orbit(pose, intrinsics, centre, size, settings.frames, settings.fps, description)
    return _orbit(centre, size, settings, describe(names, what))


def _orbit(centre, size, settings, description: str) -> CapturePlan:
    from .core.capture import orbit_plan

    plan = orbit_plan(
        centre, size, frames=settings.frames, width=settings.width, height=settings.height, fps=settings.fps
    )
    return CapturePlan(plan.poses, plan.timestamps, plan.intrinsics, None, description)


def _animation_plan(context, settings) -> CapturePlan:
    scene = context.scene
    _, intrinsics, _ = camera_view(context, settings)
    frames = animation_frames(scene.frame_start, scene.frame_end, settings.frames)
    poses, times = [], []
    for number in frames:
        scene.frame_set(number)
        poses.append(blender_to_opencv_pose(np.array(scene.camera.matrix_world)))
        times.append((number - frames[0]) / (scene.render.fps / scene.render.fps_base))
    return CapturePlan(np.array(poses), np.array(times), intrinsics, None, "the camera's animation")


class World:
    """All visible meshes, evaluated, in one world-space BVH, with each triangle's object."""

    def __init__(self, context, objects):
        depsgraph = context.evaluated_depsgraph_get()
        vertices, polygons, owners = [], [], []
        self.names = []
        for number, obj in enumerate(objects, 1):
            evaluated = obj.evaluated_get(depsgraph)
            mesh = evaluated.to_mesh()
            try:
                matrix = evaluated.matrix_world
                base = len(vertices)
                vertices.extend(matrix @ v.co for v in mesh.vertices)
                for polygon in mesh.polygons:
                    polygons.append([base + i for i in polygon.vertices])
                    owners.append(number)
            finally:
                evaluated.to_mesh_clear()
            self.names.append(obj.name)
        self.owners = np.array(owners, np.int32)
        self.tree = BVHTree.FromPolygons(vertices, polygons) if polygons else None

    def cast(self, intrinsics, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Planar depth (0 = no hit) and object index for every pixel centre."""
        width, height = intrinsics.size
        depth = np.zeros((height, width), np.float32)
        index = np.zeros((height, width), np.int32)
        if self.tree is None:
            return depth, index
        u, v = np.meshgrid(np.arange(width), np.arange(height))
        rays = np.stack(
            [(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones_like(u, float)], -1
        )
        norms = np.linalg.norm(rays, axis=-1)
        directions = ((rays / norms[..., None]) @ pose[:3, :3].T).tolist()
        origin = Vector(pose[:3, 3])
        cast = self.tree.ray_cast
        for row in range(height):
            for column, direction in enumerate(directions[row]):
                _, _, face, distance = cast(origin, Vector(direction))
                if face is not None:
                    depth[row, column] = distance / norms[row, column]  # along the ray -> along the optical axis
                    index[row, column] = self.owners[face]
        return depth, index


def object_facts(obj) -> ObjectFacts:
    """What the candidate table says of an object: name, material names, base colour, bounds."""
    materials = [slot.material for slot in obj.material_slots if slot.material is not None]
    return ObjectFacts(obj.name, _corners(obj), tuple(m.name for m in materials), _base_colour(materials))


def _base_colour(materials) -> tuple[float, ...] | None:
    """The first material's base colour: its Principled BSDF's Base Color, else its viewport colour."""
    if not materials:
        return None
    material = materials[0]
    nodes = material.node_tree.nodes if material.node_tree is not None else []
    for node in nodes:
        if node.type == "BSDF_PRINCIPLED" and not node.inputs["Base Color"].is_linked:
            return tuple(node.inputs["Base Color"].default_value)
    return tuple(material.diffuse_color)


def index_maps(context, plan: CapturePlan) -> tuple[list[np.ndarray], list[str]]:
    """The object-index maps of a plan's views without rendering colour (benches and tests)."""
    world = World(context, scene_meshes(context))
    return [world.cast(plan.intrinsics_at(i), pose)[1] for i, pose in enumerate(plan.poses)], world.names


def _saved_render(scene) -> dict:
    render = scene.render
    return {
        "camera": scene.camera,
        "engine": render.engine,
        "x": render.resolution_x,
        "y": render.resolution_y,
        "percentage": render.resolution_percentage,
        "filepath": render.filepath,
        "transparent": render.film_transparent,
        "format": render.image_settings.file_format,
        "color_mode": render.image_settings.color_mode,
        "samples": scene.cycles.samples,
        "device": scene.cycles.device,
        "denoise": scene.cycles.use_denoising,
        "aspect": (render.pixel_aspect_x, render.pixel_aspect_y),
        "frame": scene.frame_current,
        "render_result": "Render Result" in bpy.data.images,
    }


def _restore_render(scene, saved: dict) -> None:
    render = scene.render
    scene.camera = saved["camera"]
    render.engine, render.resolution_x, render.resolution_y = saved["engine"], saved["x"], saved["y"]
    render.resolution_percentage, render.filepath = saved["percentage"], saved["filepath"]
    render.film_transparent = saved["transparent"]
    render.image_settings.file_format, render.image_settings.color_mode = saved["format"], saved["color_mode"]
    scene.cycles.samples, scene.cycles.device, scene.cycles.use_denoising = (
        saved["samples"],
        saved["device"],
        saved["denoise"],
    )
    render.pixel_aspect_x, render.pixel_aspect_y = saved["aspect"]
    if scene.frame_current != saved["frame"]:
        scene.frame_set(saved["frame"])
    if not saved["render_result"] and "Render Result" in bpy.data.images:
        bpy.data.images.remove(bpy.data.images["Render Result"])


def capture_frames(context, plan: CapturePlan, samples: int = 8, name: str = "blender-scene"):
    """A generator: yields (done, total) after each frame, and finally returns the Capture
    (StopIteration.value). Render settings, the temporary camera and images are restored even
    when the caller stops early."""
    scene = context.scene
    render = scene.render
    saved = _saved_render(scene)
    camera_data = bpy.data.cameras.new("Scene-R1 capture")
    camera = bpy.data.objects.new("Scene-R1 capture", camera_data)
    scene.collection.objects.link(camera)
    folder = tempfile.mkdtemp(prefix="scene-r1-capture-")
    world = World(context, scene_meshes(context))
    width, height = plan.intrinsics.size
    rgbs, depths, indices = [], [], []
    try:
        camera_data.clip_start, camera_data.clip_end = 0.01, 1000.0
        scene.camera = camera
        render.engine = "CYCLES"
        scene.cycles.samples, scene.cycles.device, scene.cycles.use_denoising = samples, "CPU", False
        render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
        render.pixel_aspect_x = render.pixel_aspect_y = 1.0
        render.film_transparent = False
        render.image_settings.file_format, render.image_settings.color_mode = "PNG", "RGB"
        matrices = plan.blender_matrices()
        for number, pose in enumerate(plan.poses):
            intrinsics = plan.intrinsics_at(number)
            for key, value in blender_camera_for(intrinsics).items():  # exactly the plan's intrinsics
                setattr(camera_data, key, value)
            camera.matrix_world = Matrix(matrices[number].tolist())
            path = os.path.join(folder, f"frame-{number:05d}.png")
            render.filepath = path
            bpy.ops.render.render(write_still=True)
            rgbs.append(_read_png(path))
            depth, index = world.cast(intrinsics, pose)
            depths.append(depth)
            indices.append(index)
            yield number + 1, len(plan.poses)
    finally:
        _restore_render(scene, saved)
        bpy.data.objects.remove(camera)
        bpy.data.cameras.remove(camera_data)
        for leftover in os.listdir(folder):
            os.remove(os.path.join(folder, leftover))
        os.rmdir(folder)
    # The scene knows its objects: the candidate table, numbered as the index maps are (issue 18).
    table = capture_table([object_facts(bpy.data.objects[n]) for n in world.names], world.names, plan.poses[0])
    captured = Scene.from_arrays(
        rgbs,
        depths,
        plan.all_intrinsics(),
        plan.poses,
        plan.timestamps,
        instance=indices,
        name=name,
        cache_frames=len(rgbs),
        candidates=table if len(table) else None,
    )
    return Capture(captured, indices, world.names)


def capture(context, plan: CapturePlan, samples: int = 8, name: str = "blender-scene") -> Capture:
    """capture_frames run to the end (scripts and tests)."""
    frames = capture_frames(context, plan, samples, name)
    while True:
        try:
            next(frames)
        except StopIteration as done:
            return done.value


def _read_png(path: str) -> np.ndarray:
    image = bpy.data.images.load(path, check_existing=False)
    try:
        width, height = image.size
        pixels = np.empty(width * height * image.channels, np.float32)
        image.pixels.foreach_get(pixels)
        rgb = pixels.reshape(height, width, image.channels)[::-1, :, :3]  # Blender's rows run bottom-up
        return np.ascontiguousarray(np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8))
    finally:
        bpy.data.images.remove(image)
