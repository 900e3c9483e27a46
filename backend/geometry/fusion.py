"""The scene's own geometry: RGB-D frames fused with Open3D's TSDF (VoxelBlockGrid) into a point
cloud and a mesh, so a 3D mask can also be given as indices of the scene's points or mesh
vertices (what annotators export), not only as free points.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import open3d as o3d

from ...shared.camera import Intrinsics
from ...shared.geometry import invert_pose, valid_depth
from ...shared.scene import Scene, SceneError


@dataclass(frozen=True)
class FusionSettings:
    voxel: float = 0.02  # metres
    # metres: the far end of Kinect-class sensors' range (farther depth is noise, and half the blocks)
    depth_max: float = 4.0
    block_resolution: int = 8
    # Truncation band in voxels either side of the surface: 4 x 2 cm covers consumer depth noise
    # (about 1% of depth) and touches a quarter fewer blocks per frame than Open3D's default 8.
    trunc_voxels: float = 4.0
    block_count: int = 10_000  # the initial hash-map size (it grows on demand); a room needs a few thousand
    frame_stride: int = 1  # fuse every n-th frame (a 30 fps scan repeats itself)
    # Frames wider than this are read at every k-th pixel: a 2 cm voxel 3 m away spans about two
    # pixels of a 320-wide depth map, so more pixels only repeat each voxel's measurement.
    max_width: int | None = 320
    device: str = "CPU:0"  # an Open3D device string, "CUDA:0" where Open3D was built with CUDA


@dataclass
class FusedScene:
    """The scene's surface in its world frame. Its points are the mesh's vertices: Open3D's
    TSDF point cloud is the same zero crossings on the voxel edges, so it is not extracted twice."""

    mesh_vertices: np.ndarray  # (V, 3) float32
    mesh_triangles: np.ndarray  # (T, 3) int32
    mesh_colors: np.ndarray  # (V, 3) float32
    frames_fused: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    def triangle_mesh(self) -> o3d.geometry.TriangleMesh:
        mesh = o3d.geometry.TriangleMesh(
            o3d.utility.Vector3dVector(self.mesh_vertices.astype(np.float64)),
            o3d.utility.Vector3iVector(self.mesh_triangles),
        )
        mesh.vertex_colors = o3d.utility.Vector3dVector(self.mesh_colors.astype(np.float64))
        return mesh


def _open3d_matrix(intrinsics) -> np.ndarray:
    # Open3D's TSDF integration truncates projected coordinates to pick a pixel, i.e. it puts
    # pixel centres at +0.5; ours are at integer coordinates (camera.py). Without this shift,
    # surfaces seen at a grazing angle (floors) fuse up to a voxel too far away.
    matrix = intrinsics.matrix.copy()
    matrix[:2, 2] += 0.5
    return matrix


def _every_kth_pixel(image: np.ndarray, intrinsics: Intrinsics, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(image[::k, ::k], its Open3D intrinsic matrix). Plain subsampling, not interpolation:
    pixel j of the result is pixel k*j of the original, and depth is never blended across edges."""
    matrix = _open3d_matrix(intrinsics)
    if k == 1:
        return image, matrix
    small = Intrinsics(
        intrinsics.fx / k,
        intrinsics.fy / k,
        intrinsics.cx / k,
        intrinsics.cy / k,
        -(-intrinsics.width // k),
        -(-intrinsics.height // k),
    )
    return np.ascontiguousarray(image[::k, ::k]), _open3d_matrix(small)


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
    fused_any = False
    for done, index in enumerate(indices, 1):
        fused_any |= _integrate(grid, scene.frame(index), settings, device)
        if progress is not None:
            progress(done, len(indices))
    if not fused_any:
        raise SceneError(f"no frame has valid depth within {settings.depth_max:g} m: nothing to fuse")
    fused = time.perf_counter()
    # Open3D keeps voxels of weight above 3 by default, i.e. seen in 4+ frames: a capture of 1-3
    # frames (or a lift's few views) would fuse to nothing, and on a short capture an object seen
    # in a few of its frames would be missing. Long scans keep the default's filtering of noise.
    mesh = grid.extract_triangle_mesh(weight_threshold=float(np.clip(len(indices) / 8, 0.5, 3.0)))
    extracted = time.perf_counter()

    def vertex_array(key):
        if key not in mesh.vertex:
            return np.zeros((0, 3), np.float32)
        return mesh.vertex[key].cpu().numpy().astype(np.float32).reshape(-1, 3)

    triangles = (
        mesh.triangle["indices"].cpu().numpy().astype(np.int32)
        if "indices" in mesh.triangle
        else np.zeros((0, 3), np.int32)
    )
    return FusedScene(
        mesh_vertices=vertex_array("positions"),
        mesh_triangles=triangles,
        mesh_colors=vertex_array("colors").clip(0, 1),
        frames_fused=len(indices),
        timings={"integrate": fused - start, "extract": extracted - fused},
    )


def _integrate(grid, frame, settings: FusionSettings, device) -> bool:
    """One frame into the grid, read at every k-th pixel so that it is at most `max_width` wide;
    False when it has no depth to fuse."""
    k = 1 if settings.max_width is None else max(1, -(-frame.depth_intrinsics.width // settings.max_width))
    depth, depth_matrix = _every_kth_pixel(frame.depth, frame.depth_intrinsics, k)
    rgb, color_matrix = _every_kth_pixel(
        frame.rgb, frame.intrinsics, max(1, round(k * frame.intrinsics.width / frame.depth_intrinsics.width))
    )
    depth = np.where(valid_depth(depth), depth, 0).astype(np.float32)
    if not ((depth > 0) & (depth <= settings.depth_max)).any():
        return False  # nothing to fuse (a covered lens, a view out of range): Open3D would abort on it
    depth_image = o3d.t.geometry.Image(o3d.core.Tensor(depth, device=device))
    color_image = o3d.t.geometry.Image(
        o3d.core.Tensor(np.ascontiguousarray(rgb, dtype=np.float32) / 255.0, device=device)
    )
    depth_k = o3d.core.Tensor(depth_matrix, o3d.core.float64)
    color_k = o3d.core.Tensor(color_matrix, o3d.core.float64)
    extrinsic = o3d.core.Tensor(invert_pose(frame.pose), o3d.core.float64)
    band = (1.0, settings.depth_max, settings.trunc_voxels)
    blocks = grid.compute_unique_block_coordinates(depth_image, depth_k, extrinsic, *band)
    grid.integrate(blocks, depth_image, color_image, depth_k, color_k, extrinsic, *band)
    return True
