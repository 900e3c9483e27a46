"""Unseen Blender rooms for the add-on's candidate grounding (issue 18), and the queries that refer
to exactly one object in each. bpy only (Blender's Python).

A room is a floor, a table and household things made of primitives, laid out from a seed, each
with a coloured material. Names are either meaningful ("Coffee_Mug", "Floor_Lamp") or as Blender
leaves them ("Cylinder.003", material "Material.002"); the queries are the same words either way
("the red mug", "the ball on the floor"), so a generic room must be grounded by colour, size and
relations alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import bpy
import numpy as np
from mathutils import Vector

COLOURS = {
    "red": (0.8, 0.05, 0.05),
    "green": (0.1, 0.6, 0.1),
    "blue": (0.05, 0.15, 0.8),
    "yellow": (0.85, 0.75, 0.05),
    "white": (0.9, 0.9, 0.9),
    "black": (0.03, 0.03, 0.03),
    "purple": (0.45, 0.1, 0.7),
    "orange": (0.9, 0.4, 0.05),
}
# word -> (primitive, size arguments, scale, where it goes, meaningful name)
KINDS = {
    "mug": ("cylinder", {"radius": 0.05, "depth": 0.11}, (1, 1, 1), "table", "Coffee_Mug"),
    "bottle": ("cylinder", {"radius": 0.035, "depth": 0.26}, (1, 1, 1), "table", "Water_Bottle"),
    "book": ("cube", {"size": 1.0}, (0.24, 0.17, 0.04), "table", "Book"),
    "ball": ("uv_sphere", {"radius": 0.12}, (1, 1, 1), "floor", "Beach_Ball"),
    "lamp": ("cone", {"radius1": 0.18, "depth": 0.7}, (1, 1, 1), "floor", "Floor_Lamp"),
    "box": ("cube", {"size": 1.0}, (0.35, 0.3, 0.3), "floor", "Storage_Box"),
    "chair": ("cube", {"size": 1.0}, (0.45, 0.45, 0.5), "floor", "Chair"),
}
GENERIC = {"cylinder": "Cylinder", "cube": "Cube", "uv_sphere": "Sphere", "cone": "Cone"}


@dataclass(frozen=True)
class Query:
    text: str
    referred: tuple[str, ...]  # the Blender objects it refers to, exactly


def _material(name: str, rgb) -> bpy.types.Material:
    material = bpy.data.materials.new(name)
    material.diffuse_color = (*rgb, 1.0)
    if bpy.app.version < (5, 0, 0):
        material.use_nodes = True
    material.node_tree.nodes["Principled BSDF"].inputs["Base Color"].default_value = (*rgb, 1.0)
    return material


class _Namer:
    def __init__(self, generic: bool):
        self.generic, self.used, self.materials = generic, {}, 0

    def object_name(self, primitive: str, meaningful: str) -> str:
        base = GENERIC[primitive] if self.generic else meaningful
        count = self.used.get(base, 0)
        self.used[base] = count + 1
        if self.generic:
            return f"{base}.{count:03d}" if count else base
        return f"{base}_{count + 1}" if count else base

    def material_name(self, colour: str, meaningful: str) -> str:
        self.materials += 1
        return f"Material.{self.materials:03d}" if self.generic else f"{meaningful} {colour}"


def _add(primitive: str, name: str, location, scale, material, **size) -> bpy.types.Object:
    getattr(bpy.ops.mesh, f"primitive_{primitive}_add")(location=location, **size)
    obj = bpy.context.active_object
    obj.name = obj.data.name = name
    obj.scale = scale
    obj.data.materials.append(material)
    return obj


def _spots(rng, count: int, low, high, gap: float, taken=()) -> list[np.ndarray]:
    """`count` xy spots in a rectangle, at least `gap` apart (and from `taken`)."""
    spots = list(taken)
    chosen = []
    for _ in range(400):
        if len(chosen) == count:
            break
        spot = rng.uniform(low, high)
        if all(np.linalg.norm(spot - s) >= gap for s in spots):
            spots.append(spot)
            chosen.append(spot)
    if len(chosen) < count:
        raise ValueError(f"could not place {count} things {gap} m apart in {low}..{high}")
    return chosen


def build_room(seed: int, generic: bool) -> list[Query]:
    """Builds room `seed` in the current (empty) scene; returns its queries."""
    rng = np.random.default_rng(seed)
    namer = _Namer(generic)
    _add(
        "plane",
        "Plane" if generic else "Floor",
        (0, 0, 0),
        (1, 1, 1),
        _material(namer.material_name("gray", "Floor"), (0.35, 0.33, 0.3)),
        size=8,
    )
    table_xy = np.array([rng.uniform(-0.6, 0.6), rng.uniform(0.6, 1.2)])
    table_name = namer.object_name("cube", "Table")
    table = _add(
        "cube",
        table_name,
        (*table_xy, 0.7),
        (1.4, 0.8, 0.06),
        _material(namer.material_name("brown", "Table"), (0.4, 0.25, 0.12)),
        size=1.0,
    )
    on_table = list(rng.choice(["mug", "mug", "bottle", "book"], size=3, replace=False))
    on_floor = list(rng.choice(["ball", "ball", "lamp", "box", "chair"], size=3, replace=False))
    things = []  # (word, colour, place, object)
    table_spots = _spots(rng, len(on_table), table_xy - [0.55, 0.25], table_xy + [0.55, 0.25], 0.28)
    floor_spots = _spots(
        rng,
        len(on_floor),
        np.array([-2.0, -1.0]),
        np.array([2.0, 1.6]),
        0.9,
        taken=[table_xy + [dx, dy] for dx in (-0.6, 0, 0.6) for dy in (-0.3, 0.3)],
    )
    colours = list(rng.permutation(list(COLOURS)))
    for number, (word, spot) in enumerate(zip(on_table + on_floor, table_spots + floor_spots)):
        primitive, size, scale, place, meaningful = KINDS[word]
        colour = colours[number % len(colours)]
        height = size.get("depth", 2 * size.get("radius", 0.5)) * (scale[2] if primitive == "cube" else 1)
        base = 0.73 if place == "table" else 0.0
        obj = _add(
            primitive,
            namer.object_name(primitive, meaningful),
            (*spot, base + height / 2),
            scale,
            _material(namer.material_name(colour, meaningful), COLOURS[colour]),
            **size,
        )
        things.append((word, colour, place, obj.name))
    _light_and_camera(table_xy, rng)
    return _queries(things, table.name)


def _light_and_camera(table_xy, rng) -> None:
    scene = bpy.context.scene
    sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
    sun.rotation_euler = (math.radians(35), 0, math.radians(25))
    scene.collection.objects.link(sun)
    world = bpy.data.worlds.new("World") if scene.world is None else scene.world
    scene.world = world
    camera = bpy.data.objects.new("Camera", bpy.data.cameras.new("Camera"))
    scene.collection.objects.link(camera)
    camera.location = (float(rng.uniform(-0.8, 0.8)), -4.2, 2.6)
    target = Vector((float(table_xy[0]) * 0.5, 0.4, 0.45))
    camera.rotation_euler = (target - camera.location).to_track_quat("-Z", "Y").to_euler()
    camera.data.lens = 28
    scene.camera = camera
    scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 1920, 1080, 100
    bpy.context.view_layer.update()


def _queries(things, table: str) -> list[Query]:
    """One query per thing that words can single out: its class alone, its colour and class, or its
    class and where it stands (on the table / on the floor)."""
    queries = []
    for word, colour, place, name in things:
        same = [t for t in things if t[0] == word]
        if len(same) == 1:
            queries.append(Query(f"the {word}", (name,)))
        elif sum(t[1] == colour for t in same) == 1:
            queries.append(Query(f"the {colour} {word}", (name,)))
        elif sum(t[2] == place for t in same) == 1:
            queries.append(Query(f"the {word} on the {place}", (name,)))
    queries.append(Query("the table", (table,)))
    return queries
