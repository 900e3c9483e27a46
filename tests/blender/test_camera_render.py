"""Blender's camera against shared/'s conventions, checked on what Cycles actually renders."""

import math

import bpy
import numpy as np
import pytest

from scene_r1.shared.camera import blender_to_opencv_pose, intrinsics_from_blender

OpenEXR = pytest.importorskip("OpenEXR")


def render_cube(scene, tmp_path, shift_x=0.0, sensor_fit="AUTO", resolution=(80, 60)):
    bpy.ops.mesh.primitive_cube_add(size=2, location=(0.2, 0.3, 0.0), rotation=(0.0, 0.0, math.radians(25)))
    cube = bpy.context.active_object
    camera = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(camera)
    camera.location = (0.9, -6.0, 1.4)
    camera.rotation_euler = (math.radians(78), math.radians(4), math.radians(6))
    camera.data.lens, camera.data.sensor_fit, camera.data.shift_x = 35.0, sensor_fit, shift_x
    scene.camera = camera
    scene.render.engine = "CYCLES"
    scene.cycles.samples, scene.cycles.device = 1, "CPU"
    scene.render.resolution_x, scene.render.resolution_y = resolution
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = True
    scene.render.filter_size = 0.01  # no pixel filter blur: alpha is the pixel centre's coverage
    layer = scene.view_layers[0]
    layer.use_pass_z = True
    settings = scene.render.image_settings
    if hasattr(settings, "media_type"):  # Blender 5.0
        settings.media_type = "MULTI_LAYER_IMAGE"
    else:
        settings.file_format = "OPEN_EXR_MULTILAYER"
    settings.color_depth = "32"
    scene.render.filepath = str(tmp_path / "render.exr")
    bpy.ops.render.render(write_still=True)
    with OpenEXR.File(str(tmp_path / "render.exr"), separate_channels=True) as exr:
        channels = {name: np.array(channel.pixels) for name, channel in exr.channels().items()}
    alpha = channels["ViewLayer.Combined.A"]
    depth = channels.get("ViewLayer.Depth.Z")
    return cube, camera, alpha, depth


def ray_cast_cube(cube, intrinsics, pose):
    """Our own prediction: planar depth where pixel-centre rays hit the cube, else inf."""
    w, h = intrinsics.size
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    directions = np.stack(
        [(u - intrinsics.cx) / intrinsics.fx, (v - intrinsics.cy) / intrinsics.fy, np.ones_like(u, float)], -1
    )
    world_dirs = directions @ pose[:3, :3].T
    to_local = np.linalg.inv(np.array(cube.matrix_world))
    origin = to_local[:3, :3] @ pose[:3, 3] + to_local[:3, 3]
    local_dirs = world_dirs @ to_local[:3, :3].T
    with np.errstate(divide="ignore", invalid="ignore"):
        t1, t2 = (-1 - origin) / local_dirs, (1 - origin) / local_dirs
    near = np.nanmax(np.minimum(t1, t2), axis=-1)
    far = np.nanmin(np.maximum(t1, t2), axis=-1)
    return np.where((near <= far) & (near > 0), near, np.inf)  # t along z=1 directions = planar depth


@pytest.mark.parametrize("shift_x, sensor_fit, resolution", [(0.0, "AUTO", (80, 60)), (0.08, "VERTICAL", (60, 80))])
def test_rendered_cube_matches_our_intrinsics_and_pose(empty_blend, tmp_path, shift_x, sensor_fit, resolution):
    scene = empty_blend
    cube, camera, alpha, depth = render_cube(scene, tmp_path, shift_x, sensor_fit, resolution)
    data = camera.data
    intrinsics = intrinsics_from_blender(
        data.lens,
        data.sensor_width,
        data.sensor_height,
        data.sensor_fit,
        scene.render.resolution_x,
        scene.render.resolution_y,
        data.shift_x,
        data.shift_y,
    )
    pose = blender_to_opencv_pose(np.array(camera.matrix_world))
    predicted = ray_cast_cube(cube, intrinsics, pose)
    # OpenEXR rows run top to bottom, like image rows.
    rendered_mask, predicted_mask = alpha > 0.5, np.isfinite(predicted)
    assert predicted_mask.sum() > 200
    union = (rendered_mask | predicted_mask).sum()
    assert (rendered_mask & predicted_mask).sum() / union > 0.97
    if depth is None:
        pytest.skip(
            f"bpy {bpy.app.version_string} writes only the Combined pass to multilayer EXR in background mode;"
            " depth checked on 4.2"
        )
    inside = predicted_mask & rendered_mask
    # The Depth pass is planar z in metres: the same convention as ours.
    assert np.abs(depth[inside] - predicted[inside]).max() < 1e-3
