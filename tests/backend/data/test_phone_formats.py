"""Each app's export written by hand the way the app writes it (its own field names, layout, units and
encodings, from the sources cited in docs/scans.md), independently of phone_writers.py, with poses
chosen so the expected OpenCV pose is known without any conversion code: what is read back must be
those poses, intrinsics and depths."""

import json
import zipfile

import cv2
import numpy as np
import pytest
from PIL import Image

from scene_r1.backend.cli.main import main
from scene_r1.backend.data import detect_format, open_scene
from scene_r1.shared.scene import SceneError

# A camera at (1, 2, 3) looking down world +x, its image's "down" along world -y. In OpenCV's axes
# (x right, y down, z forwards): x -> world +z, y -> world -y, z -> world +x, a half turn about
# (1, 0, 1)/sqrt2. In ARKit's axes (x right, y up, z backwards): x -> +z, y -> +y, z -> -x, a quarter
# turn about -y. Quaternions (qx, qy, qz, qw) worked out by hand, checked by the textbook formula below.
OPENCV_POSE = np.array([[0, 0, 1, 1.0], [0, -1, 0, 2], [1, 0, 0, 3], [0, 0, 0, 1]])
ARKIT_POSE = np.array([[0, 0, -1, 1.0], [0, 1, 0, 2], [1, 0, 0, 3], [0, 0, 0, 1]])
S = np.sqrt(0.5)
OPENCV_QUAT = (S, 0.0, S, 0.0)
ARKIT_QUAT = (0.0, -S, 0.0, S)


def _quat_matrix(qx, qy, qz, qw):
    """Rotation of a unit quaternion, from the textbook formula (not the reader's Open3D call)."""
    return np.array(
        [
            [1 - 2 * (qy * qy + qz * qz), 2 * (qx * qy - qz * qw), 2 * (qx * qz + qy * qw)],
            [2 * (qx * qy + qz * qw), 1 - 2 * (qx * qx + qz * qz), 2 * (qy * qz - qx * qw)],
            [2 * (qx * qz - qy * qw), 2 * (qy * qz + qx * qw), 1 - 2 * (qx * qx + qy * qy)],
        ]
    )


def test_the_hand_quaternions_are_the_hand_poses():
    assert np.allclose(_quat_matrix(*OPENCV_QUAT), OPENCV_POSE[:3, :3])
    assert np.allclose(_quat_matrix(*ARKIT_QUAT), ARKIT_POSE[:3, :3])
    assert np.allclose(ARKIT_POSE[:3, :3] @ [0, 0, -1], [1, 0, 0])  # ARKit cameras look down their -z


def _png16(path, value_mm, size=(8, 6)):
    cv2.imwrite(str(path), np.full((size[1], size[0]), value_mm, np.uint16))


def _jpg(path, size=(64, 48), colour=(200, 30, 30)):
    cv2.imwrite(str(path), np.full((size[1], size[0], 3), colour[::-1], np.uint8))


# ---- Stray Scanner -------------------------------------------------------------------------------
def _stray(root, rows, header=True, depth_ext="png", frames=3, colours=((250, 0, 0), (0, 250, 0), (0, 0, 250))):
    import av

    (root / "depth").mkdir(parents=True)
    (root / "confidence").mkdir()
    with av.open(str(root / "rgb.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=60, options={"crf": "0"})
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for colour in colours[:frames]:
            picture = av.VideoFrame.from_ndarray(np.full((48, 64, 3), colour, np.uint8), format="rgb24")
            container.mux(stream.encode(picture))
        container.mux(stream.encode())
    # DatasetEncoder.writeIntrinsics: "\(row.x), \(row.y), \(row.z)" per row.
    (root / "camera_matrix.csv").write_text("50.0, 0.0, 31.5\n0.0, 50.0, 23.5\n0.0, 0.0, 1.0")
    lines = ["timestamp, frame, x, y, z, qx, qy, qz, qw"] if header else []
    (root / "odometry.csv").write_text("\n".join(lines + rows) + "\n")
    for number in range(20):
        if depth_ext == "png":
            _png16(root / "depth" / f"{number:06d}.png", 2000)
        else:
            np.save(root / "depth" / f"{number:06d}.npy", np.full((6, 8), 2000, np.uint16))
        confidence = np.full((6, 8), 2, np.uint8)
        confidence[0, 0] = 0
        cv2.imwrite(str(root / "confidence" / f"{number:06d}.png"), confidence)
    return root


def test_stray_poses_are_already_opencv(tmp_path):
    """OdometryEncoder writes q_WA * q_AC (q_AC a half turn about x): the quaternion in odometry.csv
    is the camera in OpenCV's axes, taken as it is (as StrayVisualizer hands it to Open3D)."""
    qx, qy, qz, qw = OPENCV_QUAT
    rows = [
        f"81234.5, 000000, 1.0, 2.0, 3.0, {qx}, {qy}, {qz}, {qw}",
        "81234.516666, 000001, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0",
    ]
    root = _stray(tmp_path / "scan", rows)
    assert detect_format(root) == "stray"
    scene = open_scene(root)
    assert np.allclose(scene.poses[0], OPENCV_POSE, atol=1e-9) and np.allclose(scene.poses[1], np.eye(4))
    assert np.allclose(scene.intrinsics[0], [50, 50, 31.5, 23.5]) and scene.depth_size == (8, 6)
    assert np.allclose(scene.timestamps, [0, 0.016666], atol=1e-9)
    frame = scene.frame(1)  # identity: the camera looks down world +z, so depth 2 m lies at z = 2
    assert frame.depth[0, 0] == 0 and np.allclose(frame.depth[1:, 1:], 2.0)
    assert frame.rgb[..., 1].mean() > 200  # the second picture of the video


def test_stray_early_versions(tmp_path):
    """The first app versions: odometry rows `x, y, z, qx, qy, qz, qw` without header, time or frame,
    and depth as .npy of uint16 millimetres."""
    root = _stray(
        tmp_path / "old",
        ["0, 0, 0, 0, 0, 0, 1", "1, 2, 3, " + ", ".join(map(str, OPENCV_QUAT))],
        header=False,
        depth_ext="npy",
    )
    scene = open_scene(root)
    assert np.allclose(scene.poses[1], OPENCV_POSE, atol=1e-9) and scene.frame_numbers == [0, 1]
    assert np.allclose(scene.timestamps, [0, 1 / 60]) and any("no timestamps" in note for note in scene.notes)
    assert np.allclose(scene.frame(0).depth[1:, 1:], 2.0)


def test_stray_video_follows_the_odometry_rows(tmp_path):
    """A recording resumed at frame 10: depth files are named by frame number, the video holds the
    saved frames in order, so row i of odometry.csv is picture i."""
    rows = [f"{t}, {n:06d}, 0, 0, 0, 0, 0, 0, 1" for t, n in ((5.0, 10), (5.1, 11), (5.2, 12))]
    scene = open_scene(_stray(tmp_path / "resumed", rows))
    assert scene.frame_numbers == [10, 11, 12]
    assert [int(np.argmax(scene.frame(i).rgb.reshape(-1, 3).mean(0))) for i in range(3)] == [0, 1, 2]


def test_stray_rows_without_depth_are_skipped(tmp_path):
    """DatasetEncoder writes no depth (nor confidence) for a frame ARKit gave none: that row is left
    out and the others keep their own pictures."""
    rows = [f"{t}, {n:06d}, {n}, 0, 0, 0, 0, 0, 1" for t, n in ((5.0, 0), (5.1, 1), (5.2, 2))]
    root = _stray(tmp_path / "gap", rows)
    (root / "depth" / "000001.png").unlink()
    (root / "confidence" / "000002.png").unlink()
    scene = open_scene(root)
    assert scene.frame_numbers == [0, 2] and np.allclose(scene.poses[:, 0, 3], [0, 2])
    assert np.allclose(scene.timestamps, [0, 0.2]) and any("skipped 1" in note for note in scene.notes)
    assert int(np.argmax(scene.frame(1).rgb.reshape(-1, 3).mean(0))) == 2  # the third picture
    assert scene.frame(1).depth[0, 0] == 2.0  # no confidence map: unfiltered


def test_stray_refuses_more_rows_than_pictures(tmp_path):
    rows = [f"{i}.0, {i:06d}, 0, 0, 0, 0, 0, 0, 1" for i in range(4)]
    with pytest.raises(SceneError, match="4 frames but rgb.mp4 holds 3"):
        open_scene(_stray(tmp_path / "short", rows))


# ---- 3D Scanner App ------------------------------------------------------------------------------
def _scanner3d(root, pose_values, intrinsics, exif_orientation=None, depth=True):
    root.mkdir(parents=True, exist_ok=True)
    frame = {
        "cameraPoseARFrame": pose_values,
        "intrinsics": intrinsics,
        "projectionMatrix": [1.0] * 16,
        "time": 1234.5,
        "frame_index": 0,
        "motionQuality": 1,
        "averageAngularVelocity": 0.1,
        "averageVelocity": 0.1,
        "exposureDuration": 0.01,
    }
    (root / "frame_00000.json").write_text(json.dumps(frame))
    (root / "frame_00001.json").write_text(json.dumps(frame | {"time": 1234.6}))  # metadata without a JPEG
    picture = Image.fromarray(np.full((48, 64, 3), (10, 200, 10), np.uint8))
    exif = picture.getexif()
    if exif_orientation:
        exif[274] = exif_orientation  # the app tags its landscape JPEGs "rotate 90 degrees clockwise"
    picture.save(root / "frame_00000.jpg", exif=exif.tobytes())
    if depth:
        for n in (0, 1):
            _png16(root / f"depth_{n:05d}.png", 1500)
            cv2.imwrite(str(root / f"conf_{n:05d}.png"), np.full((6, 8), 1, np.uint8))
    (root / "info.json").write_text("{}")
    return root


def test_scanner3d_row_major_pose_and_landscape_jpeg_with_exif(tmp_path):
    root = _scanner3d(tmp_path / "a", ARKIT_POSE.reshape(-1).tolist(), [50, 0, 31.5, 0, 50, 23.5, 0, 0, 1], 6)
    assert detect_format(root) == "3dscanner"
    scene = open_scene(root)
    assert len(scene) == 1 and np.allclose(scene.poses[0], OPENCV_POSE)
    assert np.allclose(scene.intrinsics[0], [50, 50, 31.5, 23.5])
    frame = scene.frame(0)  # the stored landscape grid, not turned upright by the EXIF tag
    assert frame.rgb.shape == (48, 64, 3) and np.allclose(frame.depth, 1.5)


def test_scanner3d_column_major_variants_read_the_same(tmp_path):
    root = _scanner3d(tmp_path / "b", ARKIT_POSE.T.reshape(-1).tolist(), [50, 0, 0, 0, 50, 0, 31.5, 23.5, 1])
    scene = open_scene(root)
    assert np.allclose(scene.poses[0], OPENCV_POSE) and np.allclose(scene.intrinsics[0], [50, 50, 31.5, 23.5])


def test_scanner3d_without_depth_or_with_foreign_intrinsics(tmp_path):
    root = _scanner3d(tmp_path / "c", ARKIT_POSE.reshape(-1).tolist(), [50, 0, 31.5, 0, 50, 23.5, 0, 0, 1], depth=False)
    assert detect_format(root) == "3dscanner"
    with pytest.raises(SceneError, match="no depth_N.png"):
        open_scene(root)
    root = _scanner3d(tmp_path / "d", ARKIT_POSE.reshape(-1).tolist(), [1400, 0, 960, 0, 1400, 720, 0, 0, 1])
    with pytest.raises(SceneError, match="principal point"):
        open_scene(root)


# ---- Polycam -------------------------------------------------------------------------------------
def _polycam_camera(stamp, pose=ARKIT_POSE, **extra):
    camera = {"fx": 50.0, "fy": 51.0, "cx": 31.5, "cy": 23.5, "width": 64, "height": 48}
    camera |= {"blur_score": 115.28, "timestamp": stamp} | extra
    return camera | {f"t_{r}{c}": float(pose[r, c]) for r in range(3) for c in range(4)}


def test_polycam_raw_export_as_polyform_describes_it(tmp_path):
    """Inside the zip's own top folder; names are microsecond timestamps; confidence 0/127/255; a
    keyframe without its depth map is skipped; corrected_* preferred, completed from cameras/."""
    keyframes = tmp_path / "export" / "scan-2024" / "keyframes"
    stamps = [638443502, 638943502, 639443502]
    for sub in ("images", "corrected_images", "cameras", "corrected_cameras", "depth", "confidence"):
        (keyframes / sub).mkdir(parents=True)
    for i, stamp in enumerate(stamps):
        for sub in ("images", "corrected_images"):
            _jpg(keyframes / sub / f"{stamp}.jpg")
        (keyframes / "cameras" / f"{stamp}.json").write_text(json.dumps(_polycam_camera(stamp, np.eye(4))))
        corrected = {k: v for k, v in _polycam_camera(stamp).items() if k not in ("width", "height", "blur_score")}
        (keyframes / "corrected_cameras" / f"{stamp}.json").write_text(json.dumps(corrected))
        if i < 2:
            _png16(keyframes / "depth" / f"{stamp}.png", 1250)
            confidence = np.full((6, 8), 255, np.uint8)
            confidence[0, :2] = (0, 127)  # low, medium
            cv2.imwrite(str(keyframes / "confidence" / f"{stamp}.png"), confidence)
    (tmp_path / "export" / "scan-2024" / "mesh_info.json").write_text("{}")
    root = tmp_path / "export"
    assert detect_format(root) == "polycam"
    scene = open_scene(root)
    assert len(scene) == 2 and scene.frame_numbers == stamps[:2]
    assert np.allclose(scene.poses, OPENCV_POSE) and np.allclose(scene.intrinsics, [50, 51, 31.5, 23.5])
    assert np.allclose(scene.timestamps, [0, 0.5]) and any("skipped 1" in note for note in scene.notes)
    depth = scene.frame(0).depth
    assert depth[0, 0] == 0 and (depth.ravel()[1:] == 1.25).all()  # low dropped, medium and high kept


# ---- Record3D ------------------------------------------------------------------------------------
def _r3d(path, meta, depth_shape=(8, 6), frames=2):
    import lzfse

    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("metadata", json.dumps(meta))
        for i in range(frames):
            archive.writestr(f"rgbd/{i}.jpg", cv2.imencode(".jpg", np.full((8, 6, 3), 90, np.uint8))[1].tobytes())
            depth = np.full(depth_shape[::-1], 0.75, np.float32)
            depth[0, 0] = np.nan
            archive.writestr(f"rgbd/{i}.depth", lzfse.compress(depth.tobytes()))
    return path


def test_r3d_per_frame_intrinsics_and_files_without_depth_size(tmp_path):
    """Portrait 6x8 colour as Record3D stores it, K column-major, perFrameIntrinsicCoeffs per frame,
    poses [qx, qy, qz, qw, x, y, z] in ARKit's axes; an older file without dw/dh."""
    pose = [*ARKIT_QUAT, 1.0, 2.0, 3.0]
    meta = {"w": 6, "h": 8, "K": [5.0, 0, 0, 0, 5.0, 0, 2.5, 3.5, 1], "fps": 60, "poses": [pose, pose]}
    meta |= {"perFrameIntrinsicCoeffs": [[5.0, 5.0, 2.5, 3.5], [5.5, 5.4, 2.4, 3.6]], "initPose": pose}
    scene = open_scene(_r3d(tmp_path / "old.r3d", meta, depth_shape=(3, 4)))
    assert scene.depth_size == (3, 4) and scene.color_size == (6, 8)
    assert np.allclose(scene.poses, OPENCV_POSE) and np.allclose(scene.intrinsics[1], [5.5, 5.4, 2.4, 3.6])
    depth = scene.frame(1).depth
    assert depth[0, 0] == 0 and np.allclose(depth[1:], 0.75)
    del meta["perFrameIntrinsicCoeffs"]
    scene = open_scene(_r3d(tmp_path / "k.r3d", meta | {"dw": 3, "dh": 4}, depth_shape=(3, 4)))
    assert np.allclose(scene.intrinsics, [5, 5, 2.5, 3.5])


def test_record3d_exr_export_as_nerfstudio_reads_it(tmp_path):
    """`metadata.json` beside `rgb/N.jpg` and `depth/N.exr` (nerfstudio's ns-process-data record3d)."""
    from scene_r1.backend.data.images import write_exr_depth

    root = tmp_path / "exr"
    (root / "rgb").mkdir(parents=True)
    (root / "depth").mkdir()
    pose = [*ARKIT_QUAT, 1.0, 2.0, 3.0]
    meta = {"w": 6, "h": 8, "K": [5.0, 0, 0, 0, 5.0, 0, 2.5, 3.5, 1], "fps": 30, "poses": [pose]}
    (root / "metadata.json").write_text(json.dumps(meta | {"perFrameIntrinsicCoeffs": [[5.2, 5.1, 2.5, 3.5]]}))
    cv2.imwrite(str(root / "rgb" / "0.jpg"), np.full((8, 6, 3), 90, np.uint8))
    write_exr_depth(root / "depth" / "0.exr", np.full((4, 3), 0.9, np.float32))
    assert detect_format(root) == "record3d"
    scene = open_scene(root)
    assert np.allclose(scene.poses[0], OPENCV_POSE) and np.allclose(scene.intrinsics[0], [5.2, 5.1, 2.5, 3.5])
    assert scene.depth_size == (3, 4) and np.allclose(scene.frame(0).depth, 0.9)


# ---- nerfstudio ----------------------------------------------------------------------------------
def _nerfstudio(root, meta, names=("frame_10.jpg", "frame_2.jpg")):
    (root / "images").mkdir(parents=True)
    (root / "depth").mkdir()
    frames = []
    for i, name in enumerate(names):
        _jpg(root / "images" / name)
        _png16(root / "depth" / name.replace(".jpg", ".png"), 1000 * (i + 1))
        pose = ARKIT_POSE.copy()
        pose[0, 3] = i
        frames.append({"file_path": f"images/{name}", "depth_file_path": f"depth/{name[:-4]}.png"})
        frames[-1]["transform_matrix"] = pose.tolist()
    (root / "transforms.json").write_text(json.dumps(meta | {"frames": frames}))
    return root


def test_nerfstudio_sorted_frames_and_instant_ngp_intrinsics(tmp_path):
    """Frames sorted by file_path as nerfstudio's dataparser sorts them (numbers as numbers); the
    focal length from camera_angle_x, cx/cy and w/h defaulted to the image's."""
    angle = 2 * np.arctan(32 / 50)
    scene = open_scene(_nerfstudio(tmp_path / "ns", {"camera_angle_x": angle, "camera_model": "PINHOLE"}))
    assert np.allclose(scene.poses[:, 0, 3], [1, 0])  # frame_2 (written second) first
    assert np.allclose(scene.poses[0][:3, :3], OPENCV_POSE[:3, :3])
    assert np.allclose(scene.intrinsics[0], [50, 50, 31.5, 23.5])
    assert np.allclose(scene.frame(0).depth, 2.0)
    with pytest.raises(SceneError, match="EQUIRECTANGULAR is not a pinhole"):
        open_scene(_nerfstudio(tmp_path / "pano", {"fl_x": 50, "fl_y": 50, "camera_model": "EQUIRECTANGULAR"}))


# ---- the CLI sees them -----------------------------------------------------------------------------
def test_info_detects_a_real_layout_and_refuses_a_broken_one(tmp_path, capsys):
    root = _stray(tmp_path / "scan", ["1.0, 000000, 0, 0, 0, 0, 0, 0, 1"])
    assert main(["info", str(root)]) == 0
    assert "stray" in capsys.readouterr().out
    (root / "odometry.csv").write_text("timestamp, frame, x, y, z, qx, qy, qz\n1.0, 0, 0, 0, 0, 0, 0, 0\n")
    assert main(["info", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert "lacks column(s) qw" in err and "\n" not in err


def test_an_app_folder_missing_a_file_is_named_as_that_app(tmp_path):
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "rgb.mp4").write_bytes(b"")
    (stray / "camera_matrix.csv").write_text("1,0,1\n0,1,1\n0,0,1\n")
    with pytest.raises(SceneError, match="Stray Scanner capture but lacks odometry.csv$"):
        open_scene(stray)
    polycam = tmp_path / "polycam" / "keyframes"
    for part in ("corrected_images", "corrected_cameras"):
        (polycam / part).mkdir(parents=True)
    with pytest.raises(SceneError, match="Polycam raw data but lacks keyframes/depth$"):
        open_scene(polycam.parent)
