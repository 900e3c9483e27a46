"""The scene's own geometry: RGB-D frames fused with Open3D's TSDF (VoxelBlockGrid) into a point
cloud and a mesh, so a 3D mask can also be given as indices of the scene's points or mesh
vertices (what annotators export), not only as free points.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import open3d as o3d

from ..shared.geometry import invert_pose, valid_depth
from .lifting import near_points
from ..shared.scene import Scene, SceneError


@dataclass(frozen=True)
class FusionSettings:
    voxel: float = 0.02  # metres
    depth_max: float = 6.0  # metres: farther depth is noise on consumer sensors
    block_resolution: int = 8
    block_count: int = 40_000  # grows on demand; this is the initial hash-map size
    frame_stride: int = 1  # fuse every n-th frame (a 30 fps scan repeats itself)
    device: str = "CPU:0"  # an Open3D device string, "CUDA:0" where Open3D was built with CUDA


@dataclass
class FusedScene:
    """The scene's surface in its world frame."""

    points: np.ndarray  # (N, 3) float32
    colors: np.ndarray  # (N, 3) float32 in 0..1
    mesh_vertices: np.ndarray  # (V, 3) float32
    mesh_triangles: np.ndarray  # (T, 3) int32
    mesh_colors: np.ndarray  # (V, 3) float32
    frames_fused: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def point_cloud(self) -> o3d.geometry.PointCloud:
        cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(self.points.astype(np.float64)))
        cloud.colors = o3d.utility.Vector3dVector(self.colors.astype(np.float64))
        return cloud

    def triangle_mesh(self) -> o3d.geometry.TriangleMesh:
        mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(self.mesh_vertices.astype(np.float64)), o3d.utility.Vector3iVector(self.mesh_triangles))
        mesh.vertex_colors = o3d.utility.Vector3dVector(self.mesh_colors.astype(np.float64))
        return mesh


def _open3d_matrix(intrinsics) -> np.ndarray:
    # Open3D's TSDF integration truncates projected coordinates to pick a pixel, i.e. it puts
    # pixel centres at +0.5; ours are at integer coordinates (camera.py). Without this shift,
    # surfaces seen at a grazing angle (floors) fuse up to a voxel too far away.
    matrix = intrinsics.matrix.copy()
    matrix[:2, 2] += 0.5
    return matrix


def fuse_scene(scene: Scene, settings: FusionSettings = FusionSettings(), frames=None, progress=None) -> FusedScene:
    """TSDF-fuse the scene's frames. `progress(done, total)` is called after each frame."""
    device = o3d.core.Device(settings.device)
    indices = list(range(0, len(scene), settings.frame_stride) if frames is None else frames)
    if not indices:
        raise SceneError("no frames to fuse")
    grid = o3d.t.geometry.VoxelBlockGrid(
        attr_names=("tsdf", "weight", "color"),
        attr_dtypes=(o3d.core.float32, o3d.core.float32, o3d.core.float32),
        attr_channels=((1), (1), (3)),
        voxel_size=settings.voxel,
        block_resolution=settings.block_resolution,
        block_count=settings.block_count,
        device=device,
    )
    start = time.perf_counter()
    for done, index in enumerate(indices, 1):
        frame = scene.frame(index)
        depth = np.where(valid_depth(frame.depth), frame.depth, 0).astype(np.float32)
        depth_image = o3d.t.geometry.Image(o3d.core.Tensor(np.ascontiguousarray(depth), device=device))
        color_image = o3d.t.geometry.Image(o3d.core.Tensor(np.ascontiguousarray(frame.rgb.astype(np.float32) / 255.0), device=device))
        depth_k = o3d.core.Tensor(_open3d_matrix(frame.depth_intrinsics), o3d.core.float64)
        color_k = o3d.core.Tensor(_open3d_matrix(frame.intrinsics), o3d.core.float64)
        extrinsic = o3d.core.Tensor(invert_pose(frame.pose), o3d.core.float64)
        blocks = grid.compute_unique_block_coordinates(depth_image, depth_k, extrinsic, 1.0, settings.depth_max)
        grid.integrate(blocks, depth_image, color_image, depth_k, color_k, extrinsic, 1.0, settings.depth_max)
        if progress is not None:
            progress(done, len(indices))
    fused = time.perf_counter()
    cloud = grid.extract_point_cloud()
    mesh = grid.extract_triangle_mesh()
    extracted = time.perf_counter()

    def array(geometry, key, dtype, width=3):
        attributes = geometry.point if hasattr(geometry, "point") else geometry.vertex
        if key not in attributes:
            return np.zeros((0, width), dtype)
        return attributes[key].cpu().numpy().astype(dtype).reshape(-1, width)

    triangles = mesh.triangle["indices"].cpu().numpy().astype(np.int32) if "indices" in mesh.triangle else np.zeros((0, 3), np.int32)
    return FusedScene(
        points=array(cloud, "positions", np.float32),
        colors=array(cloud, "colors", np.float32).clip(0, 1),
        mesh_vertices=array(mesh, "positions", np.float32),
        mesh_triangles=triangles,
        mesh_colors=array(mesh, "colors", np.float32).clip(0, 1),
        frames_fused=len(indices),
        timings={"integrate": fused - start, "extract": extracted - fused},
    )


def indices_near(scene_points: np.ndarray, mask_points: np.ndarray, radius: float) -> np.ndarray:
    """Indices of `scene_points` within `radius` of any mask point: a 3D mask as the scene's own
    points or mesh vertices (sorted, int64)."""
    return np.flatnonzero(near_points(scene_points, mask_points, radius)).astype(np.int64)
