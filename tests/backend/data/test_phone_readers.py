"""Phone apps' exports: a synthetic room (exact depth) and the real 7-Scenes sequence (real noise)
written in each app's layout, read back through auto-detection, compared with what was written."""

import json
import shutil
import zipfile

import cv2
import numpy as np
import pytest
from phone_writers import WRITERS, Capture

from scene_r1.backend.data import detect_format, open_scene
from scene_r1.backend.data.synth import SynthConfig, build_synthetic
from scene_r1.shared.camera import Intrinsics
from scene_r1.shared.geometry import backproject_depth, project_points
from scene_r1.shared.scene import SceneError

FORMATS = sorted(WRITERS)


@pytest.fixture(scope="module")
def synthetic_capture() -> Capture:
    synthetic = build_synthetic(SynthConfig(seed=5, frames=4, width=256, height=192, fps=10.0))
    scene, intrinsics = synthetic.scene, synthetic.scene.intrinsics_at(0)
    depth_intrinsics = intrinsics.scaled(128, 96)  # phones record depth below the colour resolution
    rng = np.random.default_rng(0)
    rgb, depth, confidence = [], [], []
    for i in range(len(scene)):
        rgb.append(scene.frame(i).rgb)
        depth.append(synthetic.renderer.render(depth_intrinsics, scene.poses[i])[1])
        levels = rng.choice(np.array([1, 2], np.uint8), size=(96, 128))
        levels[:12, :20] = 0  # a low-confidence patch: must come back invalid
        confidence.append(levels)
    return Capture(rgb, depth, confidence, intrinsics.as_array(), scene.poses.copy(), scene.timestamps.copy())


@pytest.mark.parametrize("name", FORMATS)
def test_synthetic_round_trip(name, synthetic_capture, tmp_path):
    capture = synthetic_capture
    path = WRITERS[name](capture, tmp_path / name)
    assert detect_format(path) == name
    scene = open_scene(path)
    assert len(scene) == len(capture.poses) and scene.format == name
    assert scene.color_size == capture.color_size and scene.depth_size == capture.depth_size
    k = Intrinsics(*capture.k, *capture.color_size)
    for i in range(len(scene)):
        assert np.allclose(scene.intrinsics_at(i).as_array(), capture.k, atol=1e-6)
        assert np.allclose(scene.depth_intrinsics_at(i).as_array(), k.scaled(128, 96).as_array(), atol=1e-6)
    assert np.allclose(scene.poses, capture.poses, atol=1e-6)
    expected_times = np.arange(len(scene)) / 30 if name == "nerfstudio" else capture.times - capture.times[0]
    assert np.allclose(scene.timestamps, expected_times, atol=1e-6)
    for i in range(len(scene)):
        frame = scene.frame(i)
        truth, confident = capture.depth[i], capture.confidence[i] > 0
        check = confident & (truth > 0)
        assert np.abs(frame.depth[check] - truth[check]).max() <= 0.0005 + 1e-6  # within half a millimetre
        assert (frame.depth[~confident] == 0).all()  # low confidence -> invalid
        assert np.abs(frame.rgb.astype(int) - capture.rgb[i]).mean() < 8  # JPEG / H.264 colour


def test_arkit_axes_become_opencv_axes(tmp_path):
    """Written by hand: an ARKit camera with identity orientation looks down world -z with +y up;
    turned 90 degrees about +y (Stray's quaternion), it looks down world -x."""
    root = tmp_path / "scan"
    root.mkdir()
    s = np.sqrt(0.5)
    for n, pose in enumerate((np.eye(4), np.array([[s * 0 + 0, 0, 1, 0], [0, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 1]]))):
        (root / f"frame_{n:05d}.json").write_text(
            json.dumps(
                {
                    "cameraPoseARFrame": pose.reshape(-1).tolist(),
                    "intrinsics": [50, 0, 31.5, 0, 50, 23.5, 0, 0, 1],
                    "time": 10.0 + n,
                }
            )
        )
        cv2.imwrite(str(root / f"frame_{n:05d}.jpg"), np.zeros((48, 64, 3), np.uint8))
        cv2.imwrite(str(root / f"depth_{n:05d}.png"), np.full((24, 32), 2000, np.uint16))
    scene = open_scene(root)
    assert np.allclose(scene.poses[0][:3, 2], [0, 0, -1]) and np.allclose(scene.poses[0][:3, 1], [0, -1, 0])
    assert np.allclose(scene.poses[1][:3, 2], [-1, 0, 0])
    assert np.allclose(scene.timestamps, [0, 1])
    frame = scene.frame(0)
    points, pixels = backproject_depth(frame.depth, frame.depth_intrinsics, frame.pose)
    assert np.allclose(points[:, 2], -2.0)  # 2 m in front of a camera looking down -z


# ---- malformed input: one-line errors ------------------------------------------------------------
def _break_polycam(path):
    camera = next((path / "keyframes" / "cameras").iterdir())
    camera.write_text(json.dumps({k: v for k, v in json.loads(camera.read_text()).items() if k != "t_13"}))
    return "not a Polycam camera"


def _break_stray(path):
    rows = (path / "odometry.csv").read_text().splitlines()
    (path / "odometry.csv").write_text("\n".join(rows[:2] + ["1.0, 000001, x, y"] + rows[3:]))
    return "line 3"


def _break_scanner3d(path):
    frame = path / "frame_00001.json"
    data = json.loads(frame.read_text())
    frame.write_text(json.dumps(data | {"cameraPoseARFrame": data["cameraPoseARFrame"][:15]}))
    return "holds 15 numbers"


def _break_r3d(path):
    archive = path
    with zipfile.ZipFile(archive) as source:
        members = {name: source.read(name) for name in source.namelist() if name != "rgbd/2.depth"}
    with zipfile.ZipFile(archive, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    return "rgbd/2.depth"


def _break_nerfstudio(path):
    data = json.loads((path / "transforms.json").read_text())
    del data["frames"][1]["depth_file_path"]
    (path / "transforms.json").write_text(json.dumps(data))
    return "depth_file_path"


BREAKERS = {
    "polycam": _break_polycam,
    "stray": _break_stray,
    "3dscanner": _break_scanner3d,
    "r3d": _break_r3d,
    "nerfstudio": _break_nerfstudio,
}


@pytest.mark.parametrize("name", FORMATS)
def test_malformed_input_is_a_one_line_error(name, synthetic_capture, tmp_path):
    path = WRITERS[name](synthetic_capture, tmp_path / name)
    expected = BREAKERS[name](path)
    with pytest.raises(SceneError, match=expected) as error:
        open_scene(path)
    assert "\n" not in str(error.value)


def test_a_file_that_is_not_an_r3d_archive(tmp_path):
    fake = tmp_path / "broken.r3d"
    fake.write_bytes(b"not a zip")
    with pytest.raises(SceneError, match="not a Record3D"):
        open_scene(fake)
    with pytest.raises(SceneError, match="is a file"):
        open_scene(tmp_path.joinpath("x.txt").write_text("x") and tmp_path / "x.txt")


# ---- real-looking fixtures, from the real 7-Scenes sequence ------------------------------------------
@pytest.fixture(scope="module")
def real_capture(real_sequence) -> tuple[Capture, object]:
    scene = open_scene(real_sequence)
    rgb, depth, confidence = [], [], []
    for i in range(3):
        frame = scene.frame(i)
        rgb.append(frame.rgb)
        small = cv2.resize(frame.depth, (256, 192), interpolation=cv2.INTER_NEAREST)  # LiDAR-like 256x192
        depth.append(small)
        confidence.append(np.where(small > 0, 2, 0).astype(np.uint8))
    return Capture(rgb, depth, confidence, scene.intrinsics[0], scene.poses[:3].copy(), scene.timestamps[:3]), scene


@pytest.mark.parametrize("name", FORMATS)
def test_real_looking_fixture(name, real_capture, tmp_path):
    capture, real = real_capture
    scene = open_scene(WRITERS[name](capture, tmp_path / name))
    assert scene.format == name and scene.depth_size == (256, 192) and scene.color_size == (640, 480)
    # Quaternion formats re-orthonormalise 7-Scenes' rotations (which are off by up to 1e-4).
    assert np.allclose(scene.poses, real.poses[:3], atol=1e-3 if name in ("r3d", "stray") else 1e-6)
    assert np.allclose(scene.intrinsics, real.intrinsics[:3], atol=1e-6)
    first, second = scene.frame(0), scene.frame(1)
    assert np.abs(first.depth - capture.depth[0]).max() <= 0.0005 + 1e-6
    # Real geometry survives the app's layout: frame 0's points, seen from frame 1, land where frame 1
    # measures them (depth intrinsics scaled to 256x192, poses back in OpenCV axes).
    points, _ = backproject_depth(first.depth, first.depth_intrinsics, first.pose)
    uv, z = project_points(points, second.depth_intrinsics, second.pose)
    inside = (uv[:, 0] >= 0) & (uv[:, 0] <= 255) & (uv[:, 1] >= 0) & (uv[:, 1] <= 191) & (z > 0)
    u, v = np.rint(uv[inside]).astype(int).T
    measured = second.depth[v, u]
    ok = measured > 0
    assert ok.sum() > 1000 and np.median(np.abs(measured[ok] - z[inside][ok])) < 0.05


def test_video_frames_in_any_order(synthetic_capture, tmp_path):
    """Stray's video: frames asked for out of order (a seek back to the key frame) decode to the same
    pictures as reading it in order."""
    from scene_r1.backend.data.phone.video import VideoFrames

    path = WRITERS["stray"](synthetic_capture, tmp_path / "stray") / "rgb.mp4"
    in_order = [VideoFrames(path).frame(i) for i in range(4)]
    video = VideoFrames(path)
    assert video.frame_count == 4 and video.size == (256, 192)
    for i in (3, 1, 2, 0, 3):
        assert np.array_equal(video.frame(i), in_order[i])
    with pytest.raises(SceneError, match="frame 4"):
        video.frame(4)


def test_an_unzipped_r3d_reads_like_the_file(synthetic_capture, tmp_path):
    archive = WRITERS["r3d"](synthetic_capture, tmp_path)
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(archive).extractall(folder)
    assert detect_format(folder) == "r3d" and detect_format(archive) == "r3d"
    from_file, from_folder = open_scene(archive), open_scene(folder)
    assert np.array_equal(from_file.poses, from_folder.poses)
    assert np.array_equal(from_file.frame(2).depth, from_folder.frame(2).depth)


def test_polycam_prefers_corrected_cameras(synthetic_capture, tmp_path):
    root = WRITERS["polycam"](synthetic_capture, tmp_path / "polycam")
    keyframes = root / "keyframes"
    shutil.copytree(keyframes / "images", keyframes / "corrected_images")
    shutil.copytree(keyframes / "cameras", keyframes / "corrected_cameras")
    for camera in (keyframes / "corrected_cameras").iterdir():
        data = json.loads(camera.read_text())
        camera.write_text(json.dumps(data | {"t_03": data["t_03"] + 0.25}))  # bundle adjustment moved it
    scene = open_scene(root)
    assert np.allclose(scene.poses[:, 0, 3], synthetic_capture.poses[:, 0, 3] + 0.25)
    assert any("corrected" in note for note in scene.notes)


def test_zero_rates_are_refused(synthetic_capture, tmp_path):
    archive = WRITERS["r3d"](synthetic_capture, tmp_path)
    with zipfile.ZipFile(archive) as source:
        members = {name: source.read(name) for name in source.namelist()}
    meta = json.loads(members["metadata"])
    del meta["frameTimestamps"]
    members["metadata"] = json.dumps(meta | {"fps": 0}).encode()
    with zipfile.ZipFile(archive, "w") as target:
        for name, data in members.items():
            target.writestr(name, data)
    with pytest.raises(SceneError, match="fps must be a positive number"):
        open_scene(archive)
    root = WRITERS["nerfstudio"](synthetic_capture, tmp_path / "ns")
    data = json.loads((root / "transforms.json").read_text())
    (root / "transforms.json").write_text(json.dumps(data | {"fps": 0}))
    with pytest.raises(SceneError, match="must be positive"):
        open_scene(root)
