import numpy as np
import pytest

from scene_r1.shared.camera import (
    CameraError,
    Intrinsics,
    blender_to_opencv_pose,
    intrinsics_from_blender,
    look_at,
    opencv_to_blender_pose,
)
from scene_r1.shared.geometry import backproject_depth, invert_pose, project_points, radial_to_planar_depth


def random_pose(rng):
    q = rng.normal(size=4)
    q /= np.linalg.norm(q)
    w, x, y, z = q
    rotation = np.array(
        [
            [1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
            [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
            [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)],
        ]
    )
    pose = np.eye(4)
    pose[:3, :3], pose[:3, 3] = rotation, rng.normal(size=3)
    return pose


def test_blender_opencv_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pose = random_pose(rng)
        assert np.allclose(opencv_to_blender_pose(blender_to_opencv_pose(pose)), pose)
        assert np.allclose(blender_to_opencv_pose(opencv_to_blender_pose(pose)), pose)


def test_blender_camera_looks_down_minus_z():
    # A Blender camera at the origin with identity rotation looks down world -Z with +Y up.
    pose = blender_to_opencv_pose(np.eye(4))
    assert np.allclose(pose[:3, 2], [0, 0, -1])  # OpenCV forward
    assert np.allclose(pose[:3, 1], [0, -1, 0])  # OpenCV down = -(Blender up)
    assert np.allclose(pose[:3, 0], [1, 0, 0])


def test_look_at_points_the_camera():
    pose = look_at([1.0, 2.0, 1.5], [3.0, 2.0, 0.5])
    intrinsics = Intrinsics(100, 100, 63.5, 47.5, 128, 96)
    uv, z = project_points(np.array([[3.0, 2.0, 0.5], [3.0, 2.0, 1.5]]), intrinsics, pose)
    assert np.allclose(uv[0], [63.5, 47.5]) and z[0] > 0
    assert uv[1, 1] < uv[0, 1]  # a higher point appears higher in the image (smaller v)
    assert np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3))


def test_intrinsics_from_blender_default_camera():
    k = intrinsics_from_blender(50, 36, 24, "AUTO", 1920, 1080)
    assert k.fx == pytest.approx(50 / 36 * 1920) and k.fy == pytest.approx(k.fx)
    assert (k.cx, k.cy) == (959.5, 539.5)


def test_intrinsics_from_blender_shift_and_vertical_fit():
    k = intrinsics_from_blender(35, 36, 24, "VERTICAL", 640, 480, shift_x=0.1, shift_y=-0.05)
    assert k.fy == pytest.approx(35 / 24 * 480)
    assert k.cx == pytest.approx(320 - 0.1 * 480 - 0.5)
    assert k.cy == pytest.approx(240 - 0.05 * 480 - 0.5)
    # AUTO on a portrait image fits the sensor width to the image height.
    portrait = intrinsics_from_blender(50, 36, 24, "AUTO", 480, 640)
    assert portrait.fy == pytest.approx(50 / 36 * 640)


def test_intrinsics_scaled_keeps_the_field_of_view():
    k = Intrinsics(585, 585, 319.5, 239.5, 640, 480)
    half = k.scaled(320, 240)
    assert (half.fx, half.cx, half.cy) == (292.5, 159.5, 119.5)
    assert k.scaled(320, 240).scaled(640, 480) == k


def test_a_cropped_window_sees_each_point_at_the_same_pixel_shifted_by_its_corner():
    k = Intrinsics(585, 585, 319.5, 239.5, 640, 480)
    window = k.cropped(100, 50, 200, 120)
    point = np.array([[0.3, -0.2, 2.0]])
    full, _ = project_points(point, k, np.eye(4))
    inside, _ = project_points(point, window, np.eye(4))
    assert np.allclose(inside, full - [100, 50]) and window.size == (200, 120)


@pytest.mark.parametrize("bad", [dict(fx=0), dict(fy=-1), dict(cx=float("nan")), dict(width=0)])
def test_bad_intrinsics_are_refused(bad):
    values = dict(fx=500, fy=500, cx=320, cy=240, width=640, height=480) | bad
    with pytest.raises(CameraError):
        Intrinsics(**values)


def test_backproject_then_project_is_identity():
    rng = np.random.default_rng(1)
    intrinsics = Intrinsics(200, 210, 80.3, 59.1, 160, 120)
    pose = random_pose(rng)
    depth = rng.uniform(0.5, 4.0, size=(120, 160)).astype(np.float32)
    depth[::7, ::5] = 0
    depth[3, 3] = np.nan
    points, pixels = backproject_depth(depth, intrinsics, pose)
    assert len(points) == np.count_nonzero(np.isfinite(depth) & (depth > 0))
    uv, z = project_points(points, intrinsics, pose)
    assert np.allclose(uv, pixels, atol=1e-6)
    assert np.allclose(z, depth[pixels[:, 1], pixels[:, 0]], atol=1e-6)
    assert np.allclose(invert_pose(pose) @ pose, np.eye(4))


def test_backproject_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="intrinsics are for"):
        backproject_depth(np.ones((10, 10), np.float32), Intrinsics(5, 5, 5, 5, 20, 10))


def test_radial_to_planar():
    k = Intrinsics(50, 50, 31.5, 23.5, 64, 48)
    planar = np.full((48, 64), 2.0, np.float32)
    u, v = np.meshgrid((np.arange(64) - k.cx) / k.fx, (np.arange(48) - k.cy) / k.fy)
    radial = planar * np.sqrt(1 + u**2 + v**2)
    assert np.allclose(radial_to_planar_depth(radial, k), planar, atol=1e-6)


def test_backprojection_with_a_stride_keeps_every_nth_pixel_of_the_full_result():
    k = Intrinsics(100, 100, 31.5, 23.5, 64, 48)
    depth = np.random.default_rng(0).uniform(0.5, 3, (48, 64)).astype(np.float32)
    depth[::7, ::5] = 0  # invalid pixels are skipped before thinning
    mask = np.zeros_like(depth, bool)
    mask[10:30, 5:50] = True
    points, pixels = backproject_depth(depth, k, np.eye(4), mask)
    thinned, thinned_pixels = backproject_depth(depth, k, np.eye(4), mask, stride=3)
    assert np.array_equal(thinned, points[::3]) and np.array_equal(thinned_pixels, pixels[::3])
