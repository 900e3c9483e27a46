"""A CPU renderer for procedural rooms on Open3D's RaycastingScene: shaded RGB, exact planar
depth and per-pixel instance ids, in the OpenCV camera convention.
"""

from __future__ import annotations

import numpy as np
import open3d as o3d

from ....shared.camera import Intrinsics
from .layout import Room

# Two lights in the world frame (z up): a warm key from above and a dim fill, plus ambient.
KEY_LIGHT = np.array([0.5, 0.35, 0.8]) / np.linalg.norm([0.5, 0.35, 0.8])
FILL_LIGHT = np.array([-0.6, -0.7, 0.4]) / np.linalg.norm([-0.6, -0.7, 0.4])


def camera_rays(intrinsics: Intrinsics, pose: np.ndarray) -> np.ndarray:
    """(H, W, 6) ray origins and directions through pixel centres.

    Directions have unit z in the camera frame, so a ray's hit distance t is planar depth.
    """
    w, h = intrinsics.size
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    directions = np.stack(
        [(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones_like(u)], axis=-1
    )
    rays = np.empty((h, w, 6), dtype=np.float32)
    rays[..., :3] = pose[:3, 3]
    rays[..., 3:] = directions @ pose[:3, :3].T
    return rays


class RoomRenderer:
    """Renders one Room; instance id 0 is the room's structure (floor, walls, ceiling)."""

    def __init__(self, room: Room):
        self.room = room
        self.raycaster = o3d.t.geometry.RaycastingScene()
        instance_of_geometry, _albedo = [], [(0.0, 0.0, 0.0)]
        for mesh in room.structure:
            self.raycaster.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
            instance_of_geometry.append(0)
        for obj in room.objects:
            self.raycaster.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(obj.mesh))
            instance_of_geometry.append(obj.id)
        # Lookup tables indexed by geometry id (and by instance id for albedo).
        self.instance_of_geometry = np.array(instance_of_geometry + [0], dtype=np.int32)  # last: miss
        max_id = max([o.id for o in room.objects], default=0)
        self.albedo = np.zeros((max_id + 1, 3), dtype=np.float32)
        for obj in room.objects:
            self.albedo[obj.id] = obj.albedo

    def cast(self, rays: np.ndarray) -> dict[str, np.ndarray]:
        """Raw Open3D ray casting (the renderer's baseline cost)."""
        return {k: v.numpy() for k, v in self.raycaster.cast_rays(o3d.core.Tensor(rays)).items()}

    def render(self, intrinsics: Intrinsics, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(rgb uint8 HxWx3, depth float32 HxW metres with 0 = no hit, instance int32 HxW)."""
        rays = camera_rays(intrinsics, pose)
        hits = self.cast(rays)
        t = hits["t_hit"]
        hit = np.isfinite(t)
        geometry = np.where(hit, hits["geometry_ids"], len(self.instance_of_geometry) - 1).astype(np.int64)
        geometry = np.minimum(geometry, len(self.instance_of_geometry) - 1)
        instance = self.instance_of_geometry[geometry]
        depth = np.where(hit, t, 0.0).astype(np.float32)

        directions = rays[..., 3:]
        normals = hits["primitive_normals"]
        facing = np.sum(normals * directions, axis=-1, keepdims=True) > 0
        normals = np.where(facing, -normals, normals)
        points = rays[..., :3] + directions * np.where(hit, t, 0.0)[..., None]
        albedo = self._albedo(instance, points, normals)
        light = 0.40 + 0.50 * np.clip(normals @ KEY_LIGHT, 0, None) + 0.20 * np.clip(normals @ FILL_LIGHT, 0, None)
        # Light falls off gently with distance from the camera, like a room lit from the viewer's side.
        light = light * (1.0 / (1.0 + 0.03 * depth**2))
        rgb = np.clip(albedo * light[..., None] * 255.0, 0, 255).astype(np.uint8)
        rgb[~hit] = 0
        return rgb, depth, instance.astype(np.int32)

    def _albedo(self, instance: np.ndarray, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
        albedo = self.albedo[instance]
        room = instance == 0
        floor = room & (normals[..., 2] > 0.9)
        ceiling = room & (normals[..., 2] < -0.9)
        wall = room & ~floor & ~ceiling
        # Floor: 0.5 m wooden tiles; walls: a soft vertical gradient; ceiling: off-white.
        tile = ((np.floor(points[..., 0] / 0.5) + np.floor(points[..., 1] / 0.5)) % 2)[..., None]
        albedo = np.where(floor[..., None], np.array([0.62, 0.50, 0.36]) * (0.85 + 0.15 * tile), albedo)
        height = np.clip(points[..., 2] / self.room.height, 0, 1)[..., None]
        albedo = np.where(wall[..., None], np.array([0.78, 0.80, 0.76]) * (0.85 + 0.15 * height), albedo)
        albedo = np.where(ceiling[..., None], np.array([0.9, 0.9, 0.88]), albedo)
        return albedo.astype(np.float32)

    def distance_to_surfaces(self, points: np.ndarray) -> np.ndarray:
        """Unsigned distance of world points to the nearest surface of the room."""
        return self.raycaster.compute_distance(o3d.core.Tensor(np.asarray(points, dtype=np.float32))).numpy()

    def instance_of_points(self, points: np.ndarray) -> np.ndarray:
        """Instance id of the surface nearest each world point (0 = the room's structure)."""
        closest = self.raycaster.compute_closest_points(o3d.core.Tensor(np.asarray(points, dtype=np.float32)))
        geometry = np.minimum(closest["geometry_ids"].numpy().astype(np.int64), len(self.instance_of_geometry) - 1)
        return self.instance_of_geometry[geometry]
