import json
import shutil

import cv2
import numpy as np
import pytest

from scene_r1.backend.data import detect_format, images, open_scene, write_scene
from scene_r1.shared.camera import Intrinsics
from scene_r1.shared.geometry import backproject_depth
from scene_r1.shared.scene import Scene, SceneError


def write_jpg(path, rgb):
    cv2.imwrite(str(path), np.ascontiguousarray(rgb[..., ::-1]))


def write_png16(path, values):
    cv2.imwrite(str(path), values.astype(np.uint16))


# ---- 7-Scenes, on the real sequence -----------------------------------------------------------
def test_seven_scenes_reader_on_the_real_sequence(real_sequence):
    assert detect_format(real_sequence) == "7scenes"
    scene = open_scene(real_sequence)
    assert len(scene) == 50 and scene.color_size == (640, 480) and scene.depth_size == (640, 480)
    assert scene.intrinsics_at(0) == Intrinsics(585, 585, 320, 240, 640, 480)
    assert scene.timestamps[1] == pytest.approx(20 / 30)  # every 20th frame of a 30 Hz recording
    frame = scene.frame(10)
    valid = frame.depth[frame.depth > 0]
    assert 0.3 < np.median(valid) < 5.0 and valid.max() < 10.0  # metres, 65535 'no reading' dropped
    assert 0.5 < (frame.depth > 0).mean() < 1.0
    # Consecutive views of a static kitchen: back-projected points of frame 10, seen from frame 11,
    # land where frame 11 measures them (poses are camera-to-world, depth is planar metres).
    other = scene.frame(11)
    points, _ = backproject_depth(frame.depth, frame.depth_intrinsics, frame.pose)
    from scene_r1.shared.geometry import project_points

    uv, z = project_points(points, other.depth_intrinsics, other.pose)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] <= 639) & (uv[:, 1] >= 0) & (uv[:, 1] <= 479) & (z > 0)
    u, v = np.rint(uv[inside]).astype(int).T
    measured = other.depth[v, u]
    ok = measured > 0
    assert np.median(np.abs(measured[ok] - z[inside][ok])) < 0.05


def test_a_2000_frame_scan_opens_without_decoding(tmp_path, monkeypatch):
    color = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))[1].tobytes()
    depth = cv2.imencode(".png", np.full((48, 64), 1000, np.uint16))[1].tobytes()
    pose = "1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n"
    for i in range(2000):
        (tmp_path / f"frame-{i:06d}.color.jpg").write_bytes(color)
        (tmp_path / f"frame-{i:06d}.depth.png").write_bytes(depth)
        (tmp_path / f"frame-{i:06d}.pose.txt").write_text(pose)
    decoded = []
    real_read_color = images.read_color
    monkeypatch.setattr(images, "read_color", lambda p, *size: decoded.append(p) or real_read_color(p, *size))
    scene = open_scene(tmp_path)
    assert len(scene) == 2000 and decoded == []
    assert scene.frame(1999).depth[0, 0] == pytest.approx(1.0)
    assert len(decoded) == 1


# ---- ScanNet export -------------------------------------------------------------------------------
@pytest.fixture
def scannet_folder(tmp_path):
    root = tmp_path / "scene0000_00"
    for sub in ("color", "depth", "pose", "intrinsic"):
        (root / sub).mkdir(parents=True)
    k_color = np.array([[100.0, 0, 39.5, 0], [0, 100.0, 29.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    k_depth = np.array([[50.0, 0, 19.5, 0], [0, 50.0, 14.5, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    np.savetxt(root / "intrinsic" / "intrinsic_color.txt", k_color)
    np.savetxt(root / "intrinsic" / "intrinsic_depth.txt", k_depth)
    for n in (0, 10, 20, 30):
        write_jpg(root / "color" / f"{n}.jpg", np.full((60, 80, 3), n, np.uint8))
        write_png16(root / "depth" / f"{n}.png", np.full((30, 40), 1500 + n, np.uint16))
        pose = np.eye(4)
        pose[0, 3] = n / 10
        if n == 20:
            pose[:] = -np.inf  # how ScanNet marks a frame where tracking was lost
        np.savetxt(root / "pose" / f"{n}.txt", pose)
    return root


def test_scannet_reader(scannet_folder):
    assert detect_format(scannet_folder) == "scannet"
    scene = open_scene(scannet_folder)
    assert len(scene) == 3 and any("dropped 1" in note for note in scene.notes)
    assert scene.color_size == (80, 60) and scene.depth_size == (40, 30)
    assert scene.intrinsics_at(0) == Intrinsics(100, 100, 39.5, 29.5, 80, 60)
    assert scene.depth_intrinsics_at(0) == Intrinsics(50, 50, 19.5, 14.5, 40, 30)
    assert np.allclose(scene.timestamps, [0, 10 / 30, 1.0])
    frame = scene.frame(2)
    assert frame.depth[0, 0] == pytest.approx(1.530) and frame.pose[0, 3] == 3.0


def test_scannet_missing_depth_is_a_clear_error(scannet_folder):
    (scannet_folder / "depth" / "10.png").unlink()
    with pytest.raises(SceneError, match="frame 10"):
        open_scene(scannet_folder)


# ---- Record3D export ----------------------------------------------------------------------------
@pytest.fixture
def record3d_folder(tmp_path):
    root = tmp_path / "record3d"
    (root / "rgbd").mkdir(parents=True)
    # Frame 0: identity orientation; frame 1: turned 90 degrees left about world +y (ARKit's up).
    s = np.sqrt(0.5)
    meta = {
        "w": 80,
        "h": 60,
        "K": [100.0, 0, 0, 0, 100.0, 0, 39.5, 29.5, 1],
        "fps": 30,
        "dw": 40,
        "dh": 30,
        "poses": [[0, 0, 0, 1, 0.5, 1.0, 2.0], [0, s, 0, s, 0.5, 1.0, 2.0]],
    }
    (root / "metadata").write_text(json.dumps(meta))
    for i in range(2):
        write_jpg(root / "rgbd" / f"{i}.jpg", np.full((60, 80, 3), 100, np.uint8))
        depth = np.full((30, 40), 2.0, np.float32)
        depth[0, 0] = np.nan
        images.write_exr_depth(root / "rgbd" / f"{i}.exr", depth, channel="R")
    return root


def test_record3d_reader_converts_arkit_poses(record3d_folder):
    assert detect_format(record3d_folder) == "record3d"
    scene = open_scene(record3d_folder)
    assert len(scene) == 2 and scene.depth_size == (40, 30) and scene.fps == pytest.approx(30)
    frame = scene.frame(0)
    assert np.isnan(frame.depth[0, 0]) and frame.depth[15, 20] == 2.0
    # An ARKit camera with identity orientation looks down world -z with +y up.
    points, pixels = backproject_depth(frame.depth, frame.depth_intrinsics, frame.pose)
    centre = points[(pixels[:, 0] == 20) & (pixels[:, 1] == 15)][0]
    # Half a pixel right of and below the principal point, 2 m away: image down is world -y.
    assert np.allclose(centre, [0.5 + 0.5 / 50 * 2, 1.0 - 0.5 / 50 * 2, 0.0], atol=1e-6)
    assert np.allclose(frame.pose[:3, 1], [0, -1, 0])  # image down = world down
    # Turned 90 degrees about +y, the camera looks down world -x.
    assert np.allclose(scene.frame(1).pose[:3, 2], [-1, 0, 0], atol=1e-9)


def test_record3d_missing_frame(record3d_folder):
    (record3d_folder / "rgbd" / "1.exr").unlink()
    with pytest.raises(SceneError, match="1.exr"):
        open_scene(record3d_folder)


# ---- the canonical folder ------------------------------------------------------------------------
def test_canonical_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    rgb = [rng.integers(0, 255, (24, 32, 3), dtype=np.uint8) for _ in range(3)]
    depth = [rng.uniform(0.5, 5, (12, 16)).astype(np.float32) for _ in range(3)]
    depth[1][0, 0] = np.nan
    poses = np.repeat(np.eye(4)[None], 3, 0)
    poses[:, 2, 3] = [0, 1, 2]
    scene = Scene.from_arrays(rgb, depth, Intrinsics(30, 30, 15.5, 11.5, 32, 24), poses, [0, 0.1, 0.2], name="cube")
    write_scene(scene, tmp_path / "out", rgb_format="png")
    back = open_scene(tmp_path / "out")
    assert back.format == "scene-r1" and back.name == "cube" and len(back) == 3
    assert np.allclose(back.poses, poses) and np.allclose(back.timestamps, [0, 0.1, 0.2])
    assert back.depth_intrinsics_at(0) == scene.depth_intrinsics_at(0)
    for i in range(3):
        assert np.array_equal(back.frame(i).rgb, rgb[i])
        assert np.allclose(np.nan_to_num(back.frame(i).depth), np.nan_to_num(depth[i]), atol=5e-4)
    assert back.frame(1).depth[0, 0] == 0  # invalid stays invalid


def test_canonical_copy_of_the_real_sequence(real_sequence, tmp_path):
    scene = open_scene(real_sequence)
    subset = Scene.from_arrays(
        [scene.frame(i).rgb for i in range(3)],
        [scene.frame(i).depth for i in range(3)],
        scene.intrinsics[:3],
        scene.poses[:3],
        scene.timestamps[:3],
    )
    write_scene(subset, tmp_path / "copy")
    copy = open_scene(tmp_path / "copy")
    assert np.array_equal(copy.frame(2).depth, scene.frame(2).depth)  # millimetres survive exactly


# ---- bad folders and files ----------------------------------------------------------------------
def test_bad_folders_give_clear_errors(tmp_path):
    with pytest.raises(SceneError, match="no such folder"):
        open_scene(tmp_path / "nowhere")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(SceneError, match="is a file"):
        open_scene(tmp_path / "file.txt")
    with pytest.raises(SceneError, match="not a capture folder"):
        open_scene(tmp_path)
    (tmp_path / "seq-01").mkdir()
    with pytest.raises(SceneError, match="pass one sequence folder"):
        open_scene(tmp_path)
    with pytest.raises(SceneError, match="unknown scene format"):
        open_scene(tmp_path, format="kinect")


def test_bad_files_give_clear_errors(real_sequence, tmp_path):
    copy = tmp_path / "seq"
    shutil.copytree(real_sequence, copy)
    (copy / "frame-000020.color.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    (copy / "frame-000040.depth.png").write_bytes(b"")
    scene = open_scene(copy)
    with pytest.raises(SceneError, match="cannot decode colour image|readable header"):
        scene.frame(1)
    with pytest.raises(SceneError, match="empty file"):
        scene.frame(2)
    scene.frame(3)  # the rest of the scene is still usable
    (copy / "frame-000060.pose.txt").write_text("not numbers\n")
    with pytest.raises(SceneError, match="numeric matrix"):
        open_scene(copy)
    (copy / "frame-000060.pose.txt").unlink()
    with pytest.raises(SceneError, match="lacks 1 file"):
        open_scene(copy)


def test_malformed_canonical_metadata(tmp_path):
    (tmp_path / "scene.json").write_bytes(b'{"format": "scene-r1", "frames": [{"rgb": 1}]}')
    with pytest.raises(SceneError, match="malformed"):
        open_scene(tmp_path)
    (tmp_path / "scene.json").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(SceneError, match="UTF-8"):
        open_scene(tmp_path)
