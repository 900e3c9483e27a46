"""Capturing a Blender scene as an RGB-D video for the backend.

Colour comes from Cycles. Depth and object index come from ray casting the evaluated meshes
through mathutils' BVH: exact planar depth on every Blender from 4.2 to 5.0 (Blender 5.0 in
background mode writes only the Combined pass to multilayer EXR, so render passes are not a
portable source of depth), and the object index scores results against Blender's own truth.
Everything the capture touches (render settings, a temporary camera, images) is restored.
"""
from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field

import bpy
import numpy as np
from mathutils import Matrix, Vector
from mathutils.bvhtree import BVHTree

from ..shared.capture import CapturePlan, animation_frames, bounds_of, orbit_plan
from ..shared.camera import blender_to_opencv_pose, intrinsics_from_blender
from ..shared.scene import Scene

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


def plan_from_settings(context, settings) -> CapturePlan:
    """The panel's capture settings -> which views to render."""
    if settings.capture_source == "CAMERA":
        camera = context.scene.camera
        if camera is None:
            raise ValueError("the scene has no active camera to capture from")
        scene = context.scene
        frames = animation_frames(scene.frame_start, scene.frame_end, settings.frames)
        poses, times = [], []
        for number in frames:
            scene.frame_set(number)
            poses.append(blender_to_opencv_pose(np.array(camera.matrix_world)))
            times.append((number - frames[0]) / (scene.render.fps / scene.render.fps_base))
        data = camera.data
        intrinsics = intrinsics_from_blender(data.lens, data.sensor_width, data.sensor_height, data.sensor_fit,
                                             settings.width, settings.height, data.shift_x, data.shift_y)
        return CapturePlan(np.array(poses), np.array(times), intrinsics)
    centre, size = capture_bounds(context, settings)
    return orbit_plan(centre, size, frames=settings.frames, width=settings.width, height=settings.height, fps=settings.fps)


def capture_bounds(context, settings) -> tuple[np.ndarray, np.ndarray]:
    """(centre, size) of the selected meshes (Orbit the selection) or of all visible meshes."""
    objects = [o for o in context.selected_objects if o.type == "MESH"] if settings.capture_source == "SELECTION" else []
    objects = objects or scene_meshes(context)
    corners = [np.array(o.matrix_world) @ np.append(np.array(c), 1.0) for o in objects for c in o.bound_box]
    return bounds_of(np.array(corners)[:, :3] if corners else np.zeros((0, 3)))


class _World:
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

    def cast(self, plan: CapturePlan, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Planar depth (0 = no hit) and object index for every pixel centre."""
        intrinsics = plan.intrinsics
        width, height = intrinsics.size
        depth = np.zeros((height, width), np.float32)
        index = np.zeros((height, width), np.int32)
        if self.tree is None:
            return depth, index
        u, v = np.meshgrid(np.arange(width), np.arange(height))
        rays = np.stack([(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones_like(u, float)], -1)
        norms = np.linalg.norm(rays, axis=-1)
        directions = (rays / norms[..., None]) @ pose[:3, :3].T
        origin = Vector(pose[:3, 3])
        cast = self.tree.ray_cast
        for row in range(height):
            for column in range(width):
                _, _, face, distance = cast(origin, Vector(directions[row, column]))
                if face is not None:
                    depth[row, column] = distance / norms[row, column]  # along the ray -> along the optical axis
                    index[row, column] = self.owners[face]
        return depth, index


def capture_frames(context, plan: CapturePlan, samples: int = 8, name: str = "blender-scene"):
    """A generator: yields (done, total) after each frame, and finally returns the Capture
    (StopIteration.value). Render settings, the temporary camera and images are restored even
    when the caller stops early."""
    scene = context.scene
    render = scene.render
    saved = {
        "camera": scene.camera, "engine": render.engine, "x": render.resolution_x, "y": render.resolution_y,
        "percentage": render.resolution_percentage, "filepath": render.filepath, "transparent": render.film_transparent,
        "format": render.image_settings.file_format, "color_mode": render.image_settings.color_mode,
        "samples": scene.cycles.samples, "device": scene.cycles.device, "denoise": scene.cycles.use_denoising,
        "frame": scene.frame_current, "render_result": "Render Result" in bpy.data.images,
    }
    camera_data = bpy.data.cameras.new("Scene-R1 capture")
    camera = bpy.data.objects.new("Scene-R1 capture", camera_data)
    scene.collection.objects.link(camera)
    folder = tempfile.mkdtemp(prefix="scene-r1-capture-")
    world = _World(context, scene_meshes(context))
    width, height = plan.intrinsics.size
    rgbs, depths, indices = [], [], []
    try:
        # A camera whose intrinsics are the plan's: square pixels, horizontal fit, no shift.
        camera_data.sensor_fit, camera_data.sensor_width = "HORIZONTAL", 36.0
        camera_data.lens = plan.intrinsics.fx * 36.0 / width
        camera_data.clip_start, camera_data.clip_end = 0.01, 1000.0
        scene.camera = camera
        render.engine = "CYCLES"
        scene.cycles.samples, scene.cycles.device, scene.cycles.use_denoising = samples, "CPU", False
        render.resolution_x, render.resolution_y, render.resolution_percentage = width, height, 100
        render.film_transparent = False
        render.image_settings.file_format, render.image_settings.color_mode = "PNG", "RGB"
        for number, pose in enumerate(plan.poses):
            camera.matrix_world = Matrix(plan.blender_matrices()[number].tolist())
            path = os.path.join(folder, f"frame-{number:05d}.png")
            render.filepath = path
            bpy.ops.render.render(write_still=True)
            rgbs.append(_read_png(path))
            depth, index = world.cast(plan, pose)
            depths.append(depth)
            indices.append(index)
            yield number + 1, len(plan.poses)
    finally:
        scene.camera = saved["camera"]
        bpy.data.objects.remove(camera)
        bpy.data.cameras.remove(camera_data)
        render.engine, render.resolution_x, render.resolution_y = saved["engine"], saved["x"], saved["y"]
        render.resolution_percentage, render.filepath, render.film_transparent = saved["percentage"], saved["filepath"], saved["transparent"]
        render.image_settings.file_format, render.image_settings.color_mode = saved["format"], saved["color_mode"]
        scene.cycles.samples, scene.cycles.device, scene.cycles.use_denoising = saved["samples"], saved["device"], saved["denoise"]
        if scene.frame_current != saved["frame"]:
            scene.frame_set(saved["frame"])
        if not saved["render_result"] and "Render Result" in bpy.data.images:
            bpy.data.images.remove(bpy.data.images["Render Result"])
        for leftover in os.listdir(folder):
            os.remove(os.path.join(folder, leftover))
        os.rmdir(folder)
    captured = Scene.from_arrays(rgbs, depths, plan.intrinsics, plan.poses, plan.timestamps, name=name, cache_frames=len(rgbs))
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
