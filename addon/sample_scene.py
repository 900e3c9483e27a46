"""A small sample room to try the extension on (and the one the tests and the Blender demo use)."""

import math

import bpy
import numpy as np
from mathutils import Matrix

from ..shared.camera import look_at, opencv_to_blender_pose


def build_sample_room(context) -> bpy.types.Object:
    """A floor, a cube and a sphere, a sun, and a camera looking at them; returns the camera."""
    scene = context.scene
    bpy.ops.mesh.primitive_plane_add(size=6, location=(0, 0, 0))
    context.active_object.name = "Floor"
    bpy.ops.mesh.primitive_cube_add(size=0.8, location=(-0.6, 0.2, 0.4))
    context.active_object.name = "Cube"
    bpy.ops.mesh.primitive_uv_sphere_add(radius=0.35, location=(0.8, -0.3, 0.35))
    context.active_object.name = "Sphere"
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.rotation_euler = (math.radians(40), 0, math.radians(30))
    scene.collection.objects.link(sun)
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    camera.matrix_world = Matrix(
        opencv_to_blender_pose(look_at(np.array([0.2, -3.2, 2.0]), np.array([0.0, 0.0, 0.3]))).tolist()
    )
    scene.camera = camera
    return camera


class SCENE_R1_OT_sample_room(bpy.types.Operator):
    bl_idname = "scene_r1.sample_room"
    bl_label = "Add sample room"
    bl_description = "Add a floor, a cube, a sphere, a sun and a camera to try Scene-R1 on"
    bl_options = {"REGISTER", "UNDO"}

    def execute(self, context):
        build_sample_room(context)
        return {"FINISHED"}


def register() -> None:
    bpy.utils.register_class(SCENE_R1_OT_sample_room)


def unregister() -> None:
    bpy.utils.unregister_class(SCENE_R1_OT_sample_room)
