"""Procedural rooms: floor, walls and ceiling, furniture-like boxes, and small objects drawn from a
vocabulary of shapes, colours and sizes, placed without overlap. Deterministic for a seed.

World frame: z up, metres, the floor at z = 0 spanning [0, width] x [0, depth].
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import open3d as o3d

SHAPES = ("cube", "sphere", "cylinder", "cone", "torus")
COLOURS = {
    "red": (0.80, 0.12, 0.10),
    "green": (0.15, 0.62, 0.20),
    "blue": (0.12, 0.25, 0.80),
    "yellow": (0.92, 0.80, 0.12),
    "orange": (0.95, 0.48, 0.08),
    "purple": (0.50, 0.18, 0.65),
    "white": (0.92, 0.92, 0.90),
    "black": (0.08, 0.08, 0.09),
}
SIZES = {"small": (0.12, 0.18), "large": (0.30, 0.42)}
FURNITURE_COLOURS = {"brown": (0.45, 0.30, 0.18), "gray": (0.50, 0.50, 0.52), "white": (0.85, 0.85, 0.82)}
TABLE_HEIGHT = 0.74
WALL_HEIGHT = 2.7


@dataclass
class SceneObject:
    """One instance in the room, with its ground truth. id 0 is reserved for the room itself."""

    id: int
    shape: str  # "cube" ... for objects; "table" / "cabinet" for furniture
    colour: str
    size: str  # "small" / "large"; "" for furniture
    albedo: tuple[float, float, float]
    mesh: o3d.geometry.TriangleMesh
    support: int = 0  # id of what it stands on (0 = the floor)

    @property
    def is_furniture(self) -> bool:
        return self.shape in ("table", "cabinet")

    @property
    def name(self) -> str:
        return " ".join(w for w in (self.size, self.colour, self.shape) if w)

    @property
    def aabb(self) -> np.ndarray:
        vertices = np.asarray(self.mesh.vertices)
        return np.stack([vertices.min(axis=0), vertices.max(axis=0)])

    @property
    def center(self) -> np.ndarray:
        return self.aabb.mean(axis=0)


@dataclass
class Room:
    width: float
    depth: float
    height: float
    structure: list[o3d.geometry.TriangleMesh] = field(default_factory=list)  # floor, walls, ceiling
    objects: list[SceneObject] = field(default_factory=list)

    def by_id(self, object_id: int) -> SceneObject:
        return next(o for o in self.objects if o.id == object_id)


def _box(min_corner, max_corner) -> o3d.geometry.TriangleMesh:
    size = np.asarray(max_corner, dtype=float) - np.asarray(min_corner, dtype=float)
    return o3d.geometry.TriangleMesh.create_box(*size).translate(np.asarray(min_corner, dtype=float))


def _shape_mesh(shape: str, extent: float) -> o3d.geometry.TriangleMesh:
    r = extent / 2
    if shape == "cube":
        mesh = o3d.geometry.TriangleMesh.create_box(extent, extent, extent)
    elif shape == "sphere":
        mesh = o3d.geometry.TriangleMesh.create_sphere(radius=r, resolution=24)
    elif shape == "cylinder":
        mesh = o3d.geometry.TriangleMesh.create_cylinder(radius=r * 0.8, height=extent, resolution=32)
    elif shape == "cone":
        mesh = o3d.geometry.TriangleMesh.create_cone(radius=r, height=extent * 1.1, resolution=32)
    elif shape == "torus":
        mesh = o3d.geometry.TriangleMesh.create_torus(
            torus_radius=r * 0.7, tube_radius=r * 0.3, radial_resolution=32, tubular_resolution=16
        )
    else:
        raise ValueError(f"unknown shape {shape!r}; known: {', '.join(SHAPES)}")
    return mesh


def _place(mesh: o3d.geometry.TriangleMesh, xy, z_bottom: float, yaw: float) -> o3d.geometry.TriangleMesh:
    """Rotate about z, then put the mesh's footprint centre at xy with its bottom at z_bottom."""
    mesh.rotate(o3d.geometry.get_rotation_matrix_from_xyz((0.0, 0.0, yaw)), center=(0, 0, 0))
    vertices = np.asarray(mesh.vertices)
    low, high = vertices.min(axis=0), vertices.max(axis=0)
    offset = np.array([xy[0] - (low[0] + high[0]) / 2, xy[1] - (low[1] + high[1]) / 2, z_bottom - low[2]])
    return mesh.translate(offset)


def _footprint(mesh: o3d.geometry.TriangleMesh, margin: float) -> np.ndarray:
    vertices = np.asarray(mesh.vertices)
    return np.array(
        [
            vertices[:, 0].min() - margin,
            vertices[:, 1].min() - margin,
            vertices[:, 0].max() + margin,
            vertices[:, 1].max() + margin,
        ]
    )


def _overlaps(a: np.ndarray, b: np.ndarray) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _table(rng: np.random.Generator, xy, yaw: float) -> o3d.geometry.TriangleMesh:
    length, width = rng.uniform(1.0, 1.4), rng.uniform(0.6, 0.8)
    top = _box((-length / 2, -width / 2, TABLE_HEIGHT - 0.04), (length / 2, width / 2, TABLE_HEIGHT))
    for sx in (-1, 1):
        for sy in (-1, 1):
            x, y = sx * (length / 2 - 0.06), sy * (width / 2 - 0.06)
            top += _box((x - 0.025, y - 0.025, 0.0), (x + 0.025, y + 0.025, TABLE_HEIGHT - 0.04))
    return _place(top, xy, 0.0, yaw)


def generate_room(rng: np.random.Generator, n_objects: int = 8) -> Room:
    """A room with 1-2 tables, a cabinet against a wall and `n_objects` small objects."""
    room = Room(width=float(rng.uniform(4.5, 6.0)), depth=float(rng.uniform(4.0, 5.5)), height=WALL_HEIGHT)
    w, d, h, t = room.width, room.depth, room.height, 0.1
    room.structure = [
        _box((-t, -t, -t), (w + t, d + t, 0.0)),  # floor
        _box((-t, -t, h), (w + t, d + t, h + t)),  # ceiling
        _box((-t, -t, 0.0), (0.0, d + t, h)),
        _box((w, -t, 0.0), (w + t, d + t, h)),
        _box((-t, -t, 0.0), (w + t, 0.0, h)),
        _box((-t, d, 0.0), (w + t, d + t, h)),
    ]
    placer = _Placer(room)
    _add_cabinet(rng, room, placer)
    tables = _add_tables(rng, room, placer)
    _add_small_objects(rng, room, placer, tables, n_objects)
    for obj in room.objects:
        obj.mesh.compute_triangle_normals()
    return room


class _Placer:
    """Adds objects to a room where their footprint overlaps nothing on the same support."""

    def __init__(self, room: Room):
        self.room = room
        self.footprints: dict[int, list[np.ndarray]] = {0: []}  # per support surface
        self.next_id = 1

    def add(self, obj_mesh, shape, colour, albedo, size="", support=0, margin=0.08) -> SceneObject | None:
        box = _footprint(obj_mesh, margin)
        if any(_overlaps(box, other) for other in self.footprints[support]):
            return None
        self.footprints[support].append(box)
        obj = SceneObject(self.next_id, shape, colour, size, albedo, obj_mesh, support)
        self.room.objects.append(obj)
        self.next_id += 1
        return obj


def _add_cabinet(rng, room: Room, placer: _Placer) -> None:
    """A cabinet against a random wall."""
    w, d = room.width, room.depth
    colour = rng.choice(list(FURNITURE_COLOURS))
    wall = int(rng.integers(4))
    cw, cd = rng.uniform(0.8, 1.2), 0.45
    along = rng.uniform(0.8, (w if wall < 2 else d) - 0.8)
    xy = {
        0: (cd / 2 + 0.02, along),
        1: (w - cd / 2 - 0.02, along),
        2: (along, cd / 2 + 0.02),
        3: (along, d - cd / 2 - 0.02),
    }[wall]
    yaw = np.pi / 2 if wall < 2 else 0.0
    cabinet = _place(_box((-cw / 2, -cd / 2, 0), (cw / 2, cd / 2, 0.9)), xy, 0.0, yaw)
    placer.add(cabinet, "cabinet", colour, FURNITURE_COLOURS[colour])


def _add_tables(rng, room: Room, placer: _Placer) -> list[SceneObject]:
    """One or two tables in the middle part of the room."""
    w, d = room.width, room.depth
    tables = []
    for _ in range(int(rng.integers(1, 3))):
        for _attempt in range(50):
            colour = rng.choice(list(FURNITURE_COLOURS))
            xy = (rng.uniform(1.3, w - 1.3), rng.uniform(1.3, d - 1.3))
            mesh = _table(rng, xy, rng.uniform(0, np.pi))
            table = placer.add(mesh, "table", colour, FURNITURE_COLOURS[colour], margin=0.4)
            if table is not None:
                placer.footprints[table.id] = []
                tables.append(table)
                break
    return tables


def _add_small_objects(rng, room: Room, placer: _Placer, tables: list[SceneObject], n_objects: int) -> None:
    """Objects from a per-scene subset of the vocabulary, so shapes and colours repeat (counting
    questions and referring expressions that need more than one attribute)."""
    w, d = room.width, room.depth
    shapes = list(rng.choice(SHAPES, size=3, replace=False))
    colours = list(rng.choice(list(COLOURS), size=4, replace=False))
    placed = 0
    for _attempt in range(n_objects * 60):
        if placed == n_objects:
            break
        shape, colour = str(rng.choice(shapes)), str(rng.choice(colours))
        size = "small" if rng.random() < 0.6 else "large"
        extent = float(rng.uniform(*SIZES[size]))
        on_table = tables and size == "small" and rng.random() < 0.6
        if on_table:
            table = tables[int(rng.integers(len(tables)))]
            low, high = table.aabb
            xy = (rng.uniform(low[0] + 0.15, high[0] - 0.15), rng.uniform(low[1] + 0.15, high[1] - 0.15))
            mesh = _place(_shape_mesh(shape, extent), xy, TABLE_HEIGHT, rng.uniform(0, np.pi))
            # Keep it on the table top (the top is a rotated rectangle; test the corners).
            if not _inside_table(np.asarray(mesh.vertices)[:, :2], table):
                continue
            support = table.id
        else:
            xy = (rng.uniform(0.5, w - 0.5), rng.uniform(0.5, d - 0.5))
            mesh = _place(_shape_mesh(shape, extent), xy, 0.0, rng.uniform(0, np.pi))
            support = 0
        if placer.add(mesh, shape, colour, COLOURS[colour], size, support) is not None:
            placed += 1


def _inside_table(points_xy: np.ndarray, table: SceneObject) -> bool:
    """Whether xy points lie on the table top (the top is the table's highest vertices)."""
    vertices = np.asarray(table.mesh.vertices)
    top = vertices[vertices[:, 2] > TABLE_HEIGHT - 1e-6][:, :2]
    centre = top.mean(axis=0)
    # The top's edges: principal axes of its corners.
    axes = np.linalg.svd(top - centre)[2]
    local_top = (top - centre) @ axes.T
    local = (points_xy - centre) @ axes.T
    half = np.abs(local_top).max(axis=0) - 0.03
    return bool((np.abs(local) <= half).all())
