"""Household rooms: objects composed of primitives (mug, book, chair, sofa, monitor...), with
synonyms, colours, sizes and names as artists leave them, meaningful ("Coffee_Mug.001",
"Red_Ceramic") in some rooms and generic ("Cylinder.003", "Material.002") in others.

The room is a layout.Room (rendered by render.RoomRenderer): each object one instance id and one
base colour. World frame: z up, metres, floor at z = 0 over [0, width] x [0, depth].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from .layout import WALL_HEIGHT, Room, _box, _footprint, _overlaps, _place

# Base colours (linear 0..1), each mapping back to its word through shared.candidates.colour_word.
PALETTE = {
    "red": (0.80, 0.12, 0.10),
    "orange": (0.95, 0.50, 0.08),
    "yellow": (0.92, 0.82, 0.12),
    "green": (0.15, 0.62, 0.20),
    "blue": (0.12, 0.25, 0.80),
    "purple": (0.50, 0.18, 0.65),
    "pink": (0.95, 0.55, 0.70),
    "white": (0.92, 0.92, 0.90),
    "gray": (0.50, 0.50, 0.52),
    "black": (0.08, 0.08, 0.09),
    "brown": (0.45, 0.28, 0.15),
}
SMALL_COLOURS = ("red", "orange", "yellow", "green", "blue", "purple", "pink", "white", "black")
FURNITURE_COLOURS = ("brown", "gray", "white", "black", "blue", "green")


@dataclass(frozen=True)
class Kind:
    """One class of household object: its words, where it goes, what it is made of."""

    word: str
    synonyms: tuple[str, ...]
    plural: str
    place: str  # "surface" (on tables, desks, cabinets), "floor", "wall" (against a wall), "centre"
    materials: tuple[str, ...]
    primitive: str  # the Blender primitive an artist would start from (generic names)


KINDS = {
    k.word: k
    for k in (
        Kind("mug", ("mug", "coffee mug"), "mugs", "surface", ("Ceramic",), "Cylinder"),
        Kind("cup", ("cup", "teacup"), "cups", "surface", ("Porcelain",), "Cylinder"),
        Kind("bowl", ("bowl",), "bowls", "surface", ("Ceramic",), "Sphere"),
        Kind("bottle", ("bottle",), "bottles", "surface", ("Glass", "Plastic"), "Cylinder"),
        Kind("book", ("book",), "books", "surface", ("Paper",), "Cube"),
        Kind("box", ("box", "carton"), "boxes", "surface", ("Cardboard",), "Cube"),
        Kind("ball", ("ball",), "balls", "floor", ("Rubber",), "Sphere"),
        Kind("laptop", ("laptop",), "laptops", "surface", ("Aluminium",), "Cube"),
        Kind("monitor", ("monitor", "screen"), "monitors", "surface", ("Plastic",), "Cube"),
        Kind("plant", ("plant", "potted plant"), "plants", "floor", ("Leaves",), "Cylinder"),
        Kind("lamp", ("lamp", "floor lamp"), "lamps", "floor", ("Metal",), "Cylinder"),
        Kind("chair", ("chair",), "chairs", "floor", ("Wood",), "Cube"),
        Kind("stool", ("stool",), "stools", "floor", ("Wood",), "Cylinder"),
        Kind("table", ("table",), "tables", "centre", ("Wood",), "Cube"),
        Kind("desk", ("desk",), "desks", "centre", ("Wood",), "Cube"),
        Kind("shelf", ("shelf", "bookshelf"), "shelves", "wall", ("Wood",), "Cube"),
        Kind("cabinet", ("cabinet", "cupboard"), "cabinets", "wall", ("Wood",), "Cube"),
        Kind("sofa", ("sofa", "couch"), "sofas", "wall", ("Fabric",), "Cube"),
        Kind("bed", ("bed",), "beds", "wall", ("Fabric",), "Cube"),
    )
}
SURFACE_KINDS = tuple(w for w, k in KINDS.items() if k.place == "surface")
FURNITURE = ("chair", "stool", "table", "desk", "shelf", "cabinet", "sofa", "bed", "lamp", "plant")
SURFACE_HEIGHT = {"table": 0.74, "desk": 0.74, "cabinet": 0.9}


def _cylinder(radius, height, z=0.0, xy=(0.0, 0.0)) -> o3d.geometry.TriangleMesh:
    mesh = o3d.geometry.TriangleMesh.create_cylinder(radius=radius, height=height, resolution=24)
    return mesh.translate((xy[0], xy[1], z + height / 2))


def _sphere(radius, z=0.0, squash=1.0) -> o3d.geometry.TriangleMesh:
    mesh = o3d.geometry.TriangleMesh.create_sphere(radius=radius, resolution=16)
    vertices = np.asarray(mesh.vertices) * [1, 1, squash]
    mesh.vertices = o3d.utility.Vector3dVector(vertices + [0, 0, z + radius * squash])
    return mesh


def _legs(length, width, height, thickness=0.04):
    legs = o3d.geometry.TriangleMesh()
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * (length / 2 - thickness), sy * (width / 2 - thickness)
            legs += _box((x - thickness / 2, y - thickness / 2, 0), (x + thickness / 2, y + thickness / 2, height))
    return legs


def build_mesh(word: str, scale: float, rng: np.random.Generator) -> o3d.geometry.TriangleMesh:
    """The object's mesh in local coordinates (footprint centred on the origin, bottom at z = 0);
    `scale` (about 0.8..1.25) makes some instances larger than others."""
    mesh = _small_mesh(word, scale, rng)
    return mesh if mesh is not None else _furniture_mesh(word, scale, rng)


def _small_mesh(word: str, s: float, rng: np.random.Generator) -> o3d.geometry.TriangleMesh | None:
    if word == "mug":
        body = _cylinder(0.045 * s, 0.10 * s)
        handle = o3d.geometry.TriangleMesh.create_torus(0.03 * s, 0.008 * s, 16, 8)
        handle.rotate(o3d.geometry.get_rotation_matrix_from_xyz((np.pi / 2, 0, 0)), center=(0, 0, 0))
        return body + handle.translate((0.05 * s, 0, 0.05 * s))
    if word == "cup":
        return _cylinder(0.07 * s, 0.01 * s) + _cylinder(0.035 * s, 0.065 * s, z=0.01 * s)
    if word == "bowl":
        return _sphere(0.08 * s, squash=0.45)
    if word == "bottle":
        return _cylinder(0.035 * s, 0.19 * s) + _cylinder(0.013 * s, 0.07 * s, z=0.19 * s)
    if word == "book":
        return _box((-0.11 * s, -0.075 * s, 0), (0.11 * s, 0.075 * s, 0.035 * s))
    if word == "box":
        w, d, h = rng.uniform(0.18, 0.32, size=3) * s
        return _box((-w / 2, -d / 2, 0), (w / 2, d / 2, h))
    if word == "ball":
        return _sphere(0.11 * s)
    if word == "laptop":
        base = _box((-0.165 * s, -0.115 * s, 0), (0.165 * s, 0.115 * s, 0.02 * s))
        return base + _box((-0.165 * s, 0.105 * s, 0.02 * s), (0.165 * s, 0.115 * s, 0.23 * s))
    if word == "monitor":
        screen = _box((-0.28 * s, -0.02 * s, 0.12), (0.28 * s, 0.02 * s, 0.12 + 0.34 * s))
        return _box((-0.1, -0.08, 0), (0.1, 0.08, 0.015)) + _cylinder(0.015, 0.13) + screen
    return None


def _furniture_mesh(word: str, s: float, rng: np.random.Generator) -> o3d.geometry.TriangleMesh:
    if word == "plant":
        return _cylinder(0.12 * s, 0.28 * s) + _sphere(0.22 * s, z=0.24 * s)
    if word == "lamp":
        shade = o3d.geometry.TriangleMesh.create_cone(radius=0.2 * s, height=0.25 * s, resolution=24)
        shade.rotate(o3d.geometry.get_rotation_matrix_from_xyz((np.pi, 0, 0)), center=(0, 0, 0))
        return _cylinder(0.14 * s, 0.03) + _cylinder(0.015, 1.35 * s) + shade.translate((0, 0, 1.55 * s))
    if word == "chair":
        seat, back = 0.45 * s, 0.45 * s
        mesh = _legs(seat, seat, 0.43) + _box((-seat / 2, -seat / 2, 0.43), (seat / 2, seat / 2, 0.48))
        return mesh + _box((-seat / 2, seat / 2 - 0.05, 0.48), (seat / 2, seat / 2, 0.48 + back))
    if word == "stool":
        legs = o3d.geometry.TriangleMesh()
        for angle in (0, 2 * np.pi / 3, 4 * np.pi / 3):
            legs += _cylinder(0.018, 0.46 * s, xy=(0.12 * s * np.cos(angle), 0.12 * s * np.sin(angle)))
        return legs + _cylinder(0.17 * s, 0.04, z=0.46 * s)
    if word in ("table", "desk"):
        length, width = (rng.uniform(1.0, 1.4), rng.uniform(0.6, 0.8)) if word == "table" else (1.2, 0.6)
        top = _box((-length / 2, -width / 2, 0.70), (length / 2, width / 2, 0.74))
        if word == "table":
            return top + _legs(length, width, 0.70, 0.05)
        sides = _box((-length / 2, -width / 2, 0), (-length / 2 + 0.04, width / 2, 0.70))
        return top + sides + _box((length / 2 - 0.04, -width / 2, 0), (length / 2, width / 2, 0.70))
    if word == "shelf":
        w, d, h = 0.8 * s, 0.3, 1.6
        mesh = _box((-w / 2, -d / 2, 0), (-w / 2 + 0.03, d / 2, h)) + _box((w / 2 - 0.03, -d / 2, 0), (w / 2, d / 2, h))
        for z in np.linspace(0.05, h - 0.03, 4):
            mesh += _box((-w / 2, -d / 2, z), (w / 2, d / 2, z + 0.03))
        return mesh
    if word == "cabinet":
        w = rng.uniform(0.8, 1.1)
        return _box((-w / 2, -0.22, 0), (w / 2, 0.22, 0.9))
    if word == "sofa":
        w = 1.8 * s
        base = _box((-w / 2, -0.42, 0), (w / 2, 0.42, 0.42)) + _box((-w / 2, 0.22, 0.42), (w / 2, 0.42, 0.85))
        return (
            base
            + _box((-w / 2, -0.42, 0.42), (-w / 2 + 0.15, 0.22, 0.6))
            + _box((w / 2 - 0.15, -0.42, 0.42), (w / 2, 0.22, 0.6))
        )
    if word == "bed":
        return _box((-0.75, -1.0, 0), (0.75, 1.0, 0.45)) + _box((-0.75, 0.94, 0), (0.75, 1.0, 0.95))
    raise ValueError(f"unknown household object {word!r}; known: {', '.join(KINDS)}")


@dataclass
class HouseObject:
    """One object of a household room (render.RoomRenderer reads id, mesh and albedo)."""

    id: int
    word: str  # the class (a KINDS key)
    colour: str
    albedo: tuple[float, float, float]
    mesh: o3d.geometry.TriangleMesh
    support: int = 0  # id of the object it stands on (0: the floor)
    name: str = ""  # as an artist left it
    material: str = ""

    @property
    def aabb(self) -> np.ndarray:
        vertices = np.asarray(self.mesh.vertices)
        return np.stack([vertices.min(axis=0), vertices.max(axis=0)])

    @property
    def center(self) -> np.ndarray:
        return self.aabb.mean(axis=0)


class _Placer:
    """Puts meshes on the floor or on surfaces without overlaps; numbers the objects."""

    def __init__(self, room: Room, rng: np.random.Generator):
        self.room, self.rng = room, rng
        self.footprints: dict[int, list[np.ndarray]] = {0: []}

    def add(self, word, mesh, colour, support=0, margin=0.05) -> HouseObject | None:
        box = _footprint(mesh, margin)
        if any(_overlaps(box, other) for other in self.footprints.setdefault(support, [])):
            return None
        self.footprints[support].append(box)
        obj = HouseObject(len(self.room.objects) + 1, word, colour, PALETTE[colour], mesh, support)
        self.room.objects.append(obj)
        return obj

    def against_wall(self, word, colour) -> HouseObject | None:
        w, d = self.room.width, self.room.depth
        for _attempt in range(30):
            mesh = build_mesh(word, self.rng.uniform(0.9, 1.15), self.rng)
            wall = int(self.rng.integers(4))
            half_depth = (np.asarray(mesh.vertices)[:, 1].max() - np.asarray(mesh.vertices)[:, 1].min()) / 2
            along = self.rng.uniform(1.0, (w if wall >= 2 else d) - 1.0)
            xy = {
                0: (half_depth + 0.03, along),
                1: (w - half_depth - 0.03, along),
                2: (along, half_depth + 0.03),
                3: (along, d - half_depth - 0.03),
            }[wall]
            yaw = {0: np.pi / 2, 1: -np.pi / 2, 2: np.pi, 3: 0.0}[wall]  # the back (local +y) to the wall
            placed = self.add(word, _place(mesh, xy, 0.0, yaw), colour, margin=0.1)
            if placed is not None:
                return placed
        return None

    def on_floor(self, word, colour, low=0.6, margin=0.08) -> HouseObject | None:
        w, d = self.room.width, self.room.depth
        for _attempt in range(30):
            mesh = build_mesh(word, self.rng.uniform(0.85, 1.2), self.rng)
            xy = (self.rng.uniform(low, w - low), self.rng.uniform(low, d - low))
            yaw = self.rng.integers(4) * np.pi / 2
            placed = self.add(word, _place(mesh, xy, 0.0, yaw), colour, margin=margin)
            if placed is not None:
                return placed
        return None

    def on_surface(self, word, colour, surface: HouseObject) -> HouseObject | None:
        low, high = surface.aabb
        top = SURFACE_HEIGHT[surface.word]
        for _attempt in range(20):
            scale = self.rng.choice([0.85, 1.0, 1.25])
            mesh = build_mesh(word, float(scale), self.rng)
            xy = (self.rng.uniform(low[0] + 0.15, high[0] - 0.15), self.rng.uniform(low[1] + 0.15, high[1] - 0.15))
            mesh = _place(mesh, xy, top, self.rng.integers(4) * np.pi / 2)
            corners = np.asarray(mesh.vertices)[:, :2]
            if (corners < low[:2] + 0.02).any() or (corners > high[:2] - 0.02).any():
                continue
            placed = self.add(word, mesh, colour, support=surface.id, margin=0.03)
            if placed is not None:
                return placed
        return None


def generate_household(rng: np.random.Generator, small_objects: int = 8) -> Room:
    """A room: furniture against the walls, a table or desk (with chairs) in the middle, and small
    objects of a few classes and colours (so classes repeat) on the surfaces and the floor."""
    room = Room(width=float(rng.uniform(4.5, 6.0)), depth=float(rng.uniform(4.0, 5.5)), height=WALL_HEIGHT)
    w, d, h, t = room.width, room.depth, room.height, 0.1
    room.structure = [
        _box((-t, -t, -t), (w + t, d + t, 0.0)),
        _box((-t, -t, h), (w + t, d + t, h + t)),
        _box((-t, -t, 0.0), (0.0, d + t, h)),
        _box((w, -t, 0.0), (w + t, d + t, h)),
        _box((-t, -t, 0.0), (w + t, 0.0, h)),
        _box((-t, d, 0.0), (w + t, d + t, h)),
    ]
    placer = _Placer(room, rng)
    furniture_colour = lambda: str(rng.choice(FURNITURE_COLOURS))  # noqa: E731
    surfaces = []
    for word in rng.choice(["shelf", "cabinet", "sofa", "bed", "cabinet"], size=int(rng.integers(2, 4)), replace=False):
        obj = placer.against_wall(str(word), furniture_colour())
        if obj is not None and obj.word == "cabinet":
            surfaces.append(obj)
    for _ in range(int(rng.integers(1, 3))):
        obj = placer.on_floor(str(rng.choice(["table", "table", "desk"])), furniture_colour(), low=1.4, margin=0.5)
        if obj is not None:
            surfaces.append(obj)
    seat = str(rng.choice(["chair", "stool"]))
    for _ in range(int(rng.integers(1, 4))):
        placer.on_floor(seat if rng.random() < 0.8 else "chair", furniture_colour())
    for word in rng.choice(["lamp", "plant", "plant", "ball"], size=int(rng.integers(1, 3)), replace=False):
        placer.on_floor(str(word), str(rng.choice(SMALL_COLOURS)) if word == "ball" else furniture_colour())
    kinds = list(rng.choice(SURFACE_KINDS, size=3, replace=False))
    colours = list(rng.choice(SMALL_COLOURS, size=3, replace=False))
    placed = 0
    for _attempt in range(small_objects * 10):
        if placed == small_objects or not surfaces:
            break
        word, colour = str(rng.choice(kinds)), str(rng.choice(colours))
        if word in ("laptop", "monitor") and rng.random() < 0.5:
            colour = str(rng.choice(["black", "gray", "white"]))
        if placer.on_surface(word, colour, surfaces[int(rng.integers(len(surfaces)))]) is not None:
            placed += 1
    for obj in room.objects:
        obj.mesh.compute_triangle_normals()
    return room
