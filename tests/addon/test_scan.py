"""addon/core/scan.py without Blender: a scan's camera path and lens, its mesh buffers, and clicks."""

import numpy as np
import pytest

from scene_r1.addon.core.scan import (
    MAX_POINTS,
    PointClicks,
    camera_keyframes,
    camera_settings,
    lift_options,
    mesh_buffers,
    prompt_point,
    quaternion_matrix,
    recorded_frames,
    scan_fps,
    scan_frame_at,
)
from scene_r1.shared.camera import Intrinsics, intrinsics_from_blender, look_at, opencv_to_blender_pose
from scene_r1.shared.geometry import project_points


@pytest.mark.parametrize(
    "intrinsics, size",
    [
        ((585.0, 585.0, 320.0, 240.0), (640, 480)),  # 7-Scenes
        ((1169.6, 1167.1, 646.3, 489.9), (1296, 968)),  # ScanNet colour: fx != fy, off-centre
        ((200.0, 210.0, 60.5, 50.0), (128, 96)),
    ],
)
def test_the_blender_camera_sees_what_the_recorded_camera_saw(intrinsics, size):
    settings = camera_settings(np.array([intrinsics]), size)
    back = intrinsics_from_blender(
        settings["lens"],
        settings["sensor_width"],
        24.0,
        settings["sensor_fit"],
        settings["resolution_x"],
        settings["resolution_y"],
        settings["shift_x"],
        settings["shift_y"],
        settings["pixel_aspect_x"],
        settings["pixel_aspect_y"],
    )
    assert back.as_array() == pytest.approx(np.array(intrinsics), abs=1e-9)
    assert back.size == size


def test_keyframes_put_the_blender_camera_where_the_recording_was_and_turn_the_short_way():
    rng = np.random.default_rng(1)
    eyes = np.cumsum(rng.normal(0, 0.1, (40, 3)), axis=0) + [0, -3, 1.5]
    poses = np.array([look_at(eye, np.array([np.sin(i / 5.0), 0, 0.5])) for i, eye in enumerate(eyes)])
    keys = camera_keyframes(poses, frame_start=10)
    assert keys["frames"][0] == 10 and keys["frames"][-1] == 49
    for pose, location, quaternion in zip(poses, keys["location"], keys["rotation_quaternion"]):
        blender = opencv_to_blender_pose(pose)
        assert np.allclose(location, blender[:3, 3]) and np.allclose(quaternion_matrix(quaternion), blender[:3, :3])
    signs = np.einsum("ij,ij->i", keys["rotation_quaternion"][1:], keys["rotation_quaternion"][:-1])
    assert (signs > 0).all()
    # A point the recorded camera saw in front of it is in front of the Blender camera (-z) too.
    intrinsics = Intrinsics(100, 100, 63.5, 47.5, 128, 96)
    target = np.array([[0.0, 0.0, 0.5]])
    pixels, depth = project_points(target, intrinsics, poses[0])
    local = np.linalg.inv(opencv_to_blender_pose(poses[0])) @ np.append(target[0], 1.0)
    assert depth[0] > 0 and local[2] == pytest.approx(-depth[0])


def test_frames_rates_and_mesh_buffers():
    assert scan_fps(np.arange(10) / 30.0) == 30 and scan_fps(np.arange(50) * 20 / 30.0) == 2 and scan_fps([0.0]) == 30
    assert scan_frame_at(12, 10, 5) == 2
    with pytest.raises(ValueError, match="outside the scan's recording"):
        scan_frame_at(15, 10, 5)
    buffers = mesh_buffers(np.zeros((4, 3)), [[0, 1, 2], [0, 2, 3]], np.full((4, 3), 255, np.uint8))
    assert buffers["vertex_index"].tolist() == [0, 1, 2, 0, 2, 3] and buffers["loop_start"].tolist() == [0, 3]
    assert buffers["color"].reshape(-1, 4).max() == 1.0 and len(buffers["co"]) == 12
    with pytest.raises(ValueError, match="index vertices"):
        mesh_buffers(np.zeros((2, 3)), [[0, 1, 2]], np.zeros((2, 3), np.uint8))
    generator = recorded_frames("a" * 32)
    with pytest.raises(StopIteration) as stopped:
        next(generator)
    assert stopped.value.value.scene_hash == "a" * 32 and stopped.value.value.scene is None


def test_clicks_become_positive_and_negative_points_of_the_lift_query():
    clicks = PointClicks()
    gestures = [
        clicks.feed("LEFTMOUSE", "PRESS", 10, 20),
        clicks.feed("LEFTMOUSE", "RELEASE", 10, 20),
        clicks.feed("MOUSEMOVE", "NOTHING", 30, 30),
        clicks.feed("LEFTMOUSE", "PRESS", 30, 30, ctrl=True),
        clicks.feed("LEFTMOUSE", "RELEASE", 30, 30, ctrl=True),
        clicks.feed("BACK_SPACE", "PRESS", 0, 0),
        clicks.feed("RET", "PRESS", 0, 0),
    ]
    assert gestures == [None, ("point", (10, 20), 1), None, None, ("point", (30, 30), 0), "undo", "done"]
    assert PointClicks().feed("ESC", "PRESS", 0, 0) == "cancel"
    assert prompt_point(4, 7, 1) == [4.5, 7.5, 1]
    points = [prompt_point(4, 7, 1), prompt_point(9, 9, 0)]
    assert lift_options(3, [0, 0, 0, 0], points) == {"frame": 3, "points": [[4.5, 7.5, 1], [9.5, 9.5, 0]]}
    assert lift_options(0, [1, 2, 30, 40], []) == {"frame": 0, "box": [1.0, 2.0, 30.0, 40.0]}
    assert lift_options(0, [1, 2, 30, 40], points[1:])["points"] == [[9.5, 9.5, 0]]
    for box, clicked, words in (
        ([0, 0, 0, 0], [], "draw a box"),
        ([0, 0, 0, 0], points[1:], "draw a box"),  # a negative click alone says nothing about where it is
        ([1, 2, 30, 40], [prompt_point(1, 1, 1)] * (MAX_POINTS + 1), "at most"),
    ):
        with pytest.raises(ValueError, match=words):
            lift_options(0, box, clicked)
    with pytest.raises(ValueError, match="label"):
        prompt_point(1, 1, 2)


class ScanPeer:
    """A ZeroMQ ROUTER answering scan.open as the protocol says (accepted, progress, scan.opened or
    an error); the real backend answers it in tests/backend/service and tests/blender."""

    def __init__(self, reply):
        import socket
        import threading

        import zmq

        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
        self.reply, self.seen = reply, []
        self._socket = zmq.Context.instance().socket(zmq.ROUTER)
        self._socket.bind(self.address)
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self):
        from scene_r1.shared.protocol import Message, decode, encode

        if not self._socket.poll(20_000):
            return
        route, *frames = self._socket.recv_multipart()
        request = decode(frames)
        self.seen.append(request)
        for message in (
            Message("accepted", request.id),
            Message("progress", request.id, {"stage": "fusion", "done": 1, "total": 2}),
        ):
            self._socket.send_multipart([route] + encode(message))
        if self.reply is not None:
            self.reply.id = request.id
            self._socket.send_multipart([route] + encode(self.reply))

    def close(self):
        self._thread.join(10)
        self._socket.close(linger=0)


def test_a_scan_is_opened_off_the_main_thread_and_arrives_checked():
    from scene_r1.addon.core.scan import ScanOpener
    from scene_r1.shared.client import Client
    from scene_r1.shared.protocol import Message, error_message
    from scene_r1.shared.scan import ScanReply, scan_to_wire

    poses = np.array([look_at(np.array([0.0, -2.0, 1.0 + i]), np.zeros(3)) for i in range(3)])
    scan = ScanReply(
        "ab" * 16,
        "room",
        "7scenes",
        (64, 48),
        np.zeros((3, 3), np.float32),
        np.array([[0, 1, 2]], np.int32),
        np.full((3, 3), 200, np.uint8),
        poses,
        np.tile([50.0, 50.0, 31.5, 23.5], (3, 1)),
        np.arange(3) / 30.0,
    )
    peer = ScanPeer(Message("scan.opened", "x", *scan_to_wire(scan)))
    opener = ScanOpener("/data/room", lambda: Client(peer.address, timeout=10, retries=0), {"voxel": 0.01})
    opener.wait(30)
    peer.close()
    assert opener.state == opener.DONE, opener.error
    assert opener.scan.hash == scan.hash and np.allclose(opener.scan.poses, poses)
    assert opener.scan.color_size == (64, 48) and opener.stage == "fusion"  # the progress reached the main thread
    assert peer.seen[0].type == "scan.open" and peer.seen[0].payload == {"path": "/data/room", "voxel": 0.01}
    refused = ScanPeer(error_message("x", "bad-scan", "no folder /data/room on the backend's machine"))
    opener = ScanOpener("/data/room", lambda: Client(refused.address, timeout=10, retries=0))
    opener.wait(30)
    refused.close()
    assert opener.state == opener.FAILED and opener.error == "no folder /data/room on the backend's machine"
    silent = ScanPeer(None)  # accepts, then says nothing: the opener's own deadline stops it
    opener = ScanOpener("/data/room", lambda: Client(silent.address, timeout=60, retries=0), deadline=1.0)
    opener.wait()
    silent.close()
    assert opener.state == opener.FAILED and "within 1 s" in opener.error
    with pytest.raises(ValueError, match="path"):
        ScanOpener("  ", lambda: None)
