"""Rooms the Blender tests build (never the sample room the add-on ships, which the code was tried on).

The study: a floor and a wall much larger than anything on them, a desk whose legs are its children
(one thing of several parts), and small and large things on and around it, seen by a camera at the
render's default 16:9 aspect."""

import math

import bpy
from mathutils import Vector


def _add(kind: str, name: str, location, scale=(1, 1, 1), rotation=(0, 0, 0), parent=None, **size):
    getattr(bpy.ops.mesh, f"primitive_{kind}_add")(location=location, rotation=rotation, **size)
    obj = bpy.context.active_object
    obj.name = obj.data.name = name
    obj.scale = scale
    if parent is not None:
        obj.parent = parent
        obj.matrix_parent_inverse = parent.matrix_world.inverted()
    return obj


def build_study(context) -> dict[str, list[str]]:
    """Builds the study; returns each thing's parts (a top object and its children), by thing name."""
    scene = context.scene
    _add("plane", "Floor", (0, 0, 0), size=9)
    _add("plane", "Wall", (0, 2.2, 1.5), rotation=(math.radians(90), 0, 0), size=9)
    desk = _add("cube", "Desk", (0.2, 0.9, 0.74), scale=(0.8, 0.4, 0.02), size=2)
    bpy.context.view_layer.update()
    for number, (x, y) in enumerate([(-0.5, 0.6), (0.9, 0.6), (-0.5, 1.2), (0.9, 1.2)], 1):
        _add("cube", f"Desk leg {number}", (x, y, 0.36), scale=(0.03, 0.03, 0.36), size=2, parent=desk)
    _add("cube", "Monitor", (0.35, 1.1, 1.0), scale=(0.3, 0.02, 0.2), size=2)
    _add("cylinder", "Cup", (-0.3, 0.75, 0.81), radius=0.045, depth=0.12)
    _add("cube", "Book", (0.75, 0.75, 0.78), scale=(0.12, 0.09, 0.025), rotation=(0, 0, 0.3), size=2)
    _add("cylinder", "Stool", (-1.1, 0.3, 0.25), radius=0.22, depth=0.5)
    _add("cone", "Lamp", (1.5, 1.4, 0.45), radius1=0.2, depth=0.9)
    _add("torus", "Ring", (-0.6, -0.4, 0.06), major_radius=0.22, minor_radius=0.06)
    _add("uv_sphere", "Globe", (1.2, -0.2, 0.18), radius=0.18)
    for name, colour in (("Floor", (0.35, 0.3, 0.25)), ("Wall", (0.55, 0.6, 0.65)), ("Desk", (0.45, 0.3, 0.18))):
        material = bpy.data.materials.new(f"{name} paint")
        material.diffuse_color = (*colour, 1.0)
        if bpy.app.version < (5, 0, 0):
            material.use_nodes = True
        material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (*colour, 1.0)
        bpy.data.objects[name].data.materials.append(material)
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.rotation_euler = (math.radians(40), 0, math.radians(30))
    scene.collection.objects.link(sun)
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    camera.location = (0.6, -3.4, 1.9)
    direction = Vector((0.15, 0.8, 0.55)) - camera.location
    camera.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    scene.camera = camera
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 1920, 1080, 100
    bpy.context.view_layer.update()
    things = {"Desk": ["Desk"] + [f"Desk leg {n}" for n in range(1, 5)]}
    for name in ("Monitor", "Cup", "Book", "Stool", "Lamp", "Ring", "Globe"):
        things[name] = [name]
    return things
