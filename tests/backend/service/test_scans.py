"""scan.open: a capture folder on the backend's machine opened, named, fused and queried over real
ZeroMQ sockets, with nothing uploaded."""

import threading

import numpy as np
import open3d as o3d
import pytest

from scene_r1.backend.data.readers import open_scene
from scene_r1.backend.data.synth import SynthConfig, build_synthetic, write_synthetic
from scene_r1.backend.data.synth.generate import visible_boxes
from scene_r1.backend.pipeline.pipeline import Pipeline
from scene_r1.backend.pipeline.settings import PipelineSettings
from scene_r1.backend.service.scans import BYTES_PER_TRIANGLE, decimate, triangle_cap
from scene_r1.backend.service.server import Server, ServerSettings
from scene_r1.shared.client import BackendError, Client
from scene_r1.shared.protocol import Message, ProtocolError
from scene_r1.shared.scan import MAX_TRIANGLES, check_scan_request
from scene_r1.shared.scene_wire import scene_to_wire

CONFIG = SynthConfig(seed=5, frames=8, width=128, height=96, fps=4.0)


@pytest.fixture(scope="module")
def scan_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scans") / "room"
    write_synthetic(CONFIG, folder)
    return folder


@pytest.fixture(scope="module")
def server(scan_folder):
    settings = ServerSettings(bind="tcp://127.0.0.1:*", scan_roots=(scan_folder.parent,))
    server = Server(settings, pipeline=Pipeline(PipelineSettings(tracker="geometric")))
    thread = threading.Thread(target=server.serve, daemon=True)
    thread.start()
    assert server.ready.wait(10)
    yield server
    server.stop()
    thread.join(10)


def distance_to_room(points: np.ndarray) -> np.ndarray:
    room = build_synthetic(CONFIG).room
    raycast = o3d.t.geometry.RaycastingScene()
    for mesh in room.structure + [o.mesh for o in room.objects]:
        raycast.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    return raycast.compute_distance(o3d.core.Tensor(points.astype(np.float32))).numpy()


def test_a_scan_opens_as_its_fused_mesh_and_camera_path_named_as_an_upload_would_be(server, scan_folder):
    stages = []
    with Client(server.endpoint, timeout=60) as client:
        scan = client.open_scan(str(scan_folder), on_progress=lambda p: stages.append(p["stage"]))
        meta, _ = scene_to_wire(open_scene(scan_folder))
        assert scan.hash == meta["hash"]  # the hash an upload of the same frames carries
        assert client.request(Message("scene.has", payload={"hash": scan.hash})).payload["have"]
        assert {"read", "fusion"} <= set(stages) and not scan.cached
        disk = open_scene(scan_folder)
        assert np.allclose(scan.poses, disk.poses) and np.allclose(scan.intrinsics, disk.intrinsics)
        assert np.allclose(scan.timestamps, disk.timestamps) and scan.color_size == (CONFIG.width, CONFIG.height)
        assert len(scan.triangles) > 1000 and scan.colors.dtype == np.uint8 and scan.colors.max() > 0
        # The fused surface lies on the room that was rendered (2 cm voxels).
        assert np.median(distance_to_room(scan.vertices)) < 0.02
        again = client.open_scan(str(scan_folder))
        assert again.cached and (again.vertices == scan.vertices).all() and (again.triangles == scan.triangles).all()


def test_a_query_on_an_opened_scan_runs_on_its_recorded_frames(server, scan_folder):
    synthetic = build_synthetic(CONFIG)
    boxes = [visible_boxes(synthetic.scene.instance(i), 30) for i in range(CONFIG.frames)]
    pixels, frame, box = max((b[1], i, b[0]) for i, found in enumerate(boxes) for b in found.values())
    with Client(server.endpoint, timeout=60) as client:
        scan = client.open_scan(str(scan_folder))
        result = client.query(scan.hash, "lift", frame=frame, box=list(box))
    points = result.instances[0].mask3d.points
    assert len(points) > 0 and np.median(distance_to_room(points)) < 0.03


def test_a_huge_mesh_is_decimated_with_its_colours(server, scan_folder):
    with Client(server.endpoint, timeout=60) as client:
        small = client.open_scan(str(scan_folder), max_triangles=1000)
    assert 0 < len(small.triangles) <= 1000 and small.triangles_fused > 1000
    assert small.triangles.max() < len(small.vertices) == len(small.colors)
    assert np.median(distance_to_room(small.vertices)) < 0.05
    cap = triangle_cap(None, 16 << 20, 1000)  # a server run with --max-message-mb 16
    assert 1000 < cap < MAX_TRIANGLES and cap * BYTES_PER_TRIANGLE < 16 << 20  # the message cap bounds the mesh
    vertices = np.random.default_rng(0).random((10, 3))
    same = decimate(vertices, np.array([[0, 1, 2]], np.int32), vertices, 5)
    assert same[0] is vertices  # under the cap: untouched


@pytest.mark.parametrize(
    "make_path, words",
    [
        (lambda folder: "relative/path", "absolute"),
        (lambda folder: str(folder.parent / "missing"), "no folder"),
        (lambda folder: str(folder / "scene.json"), "is a file"),
        (lambda folder: str(folder / "rgb"), "not a capture folder"),
        (lambda folder: "/tmp", "outside the folders"),
    ],
)
def test_a_path_that_is_not_a_capture_folder_is_refused_in_one_line(server, scan_folder, make_path, words):
    with Client(server.endpoint, timeout=20) as client:
        with pytest.raises(BackendError, match=words) as caught:
            client.open_scan(make_path(scan_folder))
        assert caught.value.code == "bad-scan" and "\n" not in str(caught.value)
        assert client.health()["ok"]  # and the server keeps serving


def test_scan_requests_are_checked_before_sending():
    for payload in (
        {},
        {"path": ""},
        {"path": 3},
        {"path": "/x", "voxel": 9.0},
        {"path": "/x", "max_triangles": 5},
        {"path": "/x", "extra": 1},
        {"path": "/x\x00y"},
        {"path": "\ud800"},
    ):
        with pytest.raises(ProtocolError) as caught:
            check_scan_request(payload)
        assert caught.value.code == "bad-payload"
    check_scan_request({"path": "/data/scan", "voxel": 0.01, "max_triangles": 5000, "no_cache": True})


def test_an_unchanged_folder_is_known_again_and_an_edited_one_is_read_again(server, scan_folder):
    import shutil

    import cv2

    copy = scan_folder.parent / "room-copy"
    shutil.copytree(scan_folder, copy)
    with Client(server.endpoint, timeout=60) as client:
        first = client.open_scan(str(copy))
        assert client.open_scan(str(copy)).cached
        depth_file = sorted((copy / "depth").iterdir())[0]
        depth = cv2.imread(str(depth_file), cv2.IMREAD_UNCHANGED)
        depth[:10, :10] = 0  # the recording edited: different frames, a different scene
        cv2.imwrite(str(depth_file), depth)
        edited = client.open_scan(str(copy))
    assert edited.hash != first.hash and not edited.cached
    assert edited.hash == scene_to_wire(open_scene(copy))[0]["hash"]


def test_behind_a_broker_a_scans_queries_go_to_the_worker_that_opened_it(scan_folder):
    import time

    from scene_r1.backend.service.broker import Broker

    broker = Broker("tcp://127.0.0.1:*", "tcp://127.0.0.1:*", expiry_s=2.0)
    ready = threading.Event()
    threads = [threading.Thread(target=broker.serve, args=(ready,), daemon=True)]
    threads[0].start()
    assert ready.wait(10)
    frontend, backend = broker.endpoints
    geometric = PipelineSettings(tracker="geometric")
    settings = [ServerSettings(broker=backend, name=name, keepalive_s=0.2, pipeline=geometric) for name in ("w0", "w1")]
    workers = [Server(worker_settings) for worker_settings in settings]
    threads += [threading.Thread(target=worker.serve, daemon=True) for worker in workers]
    for thread in threads[1:]:
        thread.start()
    try:
        deadline = time.monotonic() + 10
        while len(broker.workers) < 2:
            assert time.monotonic() < deadline, "the workers did not join the broker within 10 s"
            time.sleep(0.02)
        with Client(frontend, timeout=60) as client:
            scan = client.open_scan(str(scan_folder))
            box = [10, 10, 60, 60]
            names = {client.query(scan.hash, "lift", frame=0, box=box, no_cache=True).worker for _ in range(3)}
        assert scan.worker in ("w0", "w1") and names == {scan.worker}
    finally:
        for worker in workers:
            worker.stop()
        broker.stop()
        for thread in threads:
            thread.join(10)


def test_a_phone_apps_r3d_archive_opens_with_its_lower_resolution_depth(server, scan_folder):
    """Record3D's .r3d file (a file, not a folder; depth at a quarter of the colour size)."""
    import sys
    from pathlib import Path

    pytest.importorskip("liblzfse", reason="the .r3d reader needs liblzfse (backend extra)")
    sys.path.insert(0, str(Path(__file__).parents[1] / "data"))
    from phone_writers import Capture, write_r3d

    synthetic = build_synthetic(CONFIG)
    scene, intrinsics = synthetic.scene, synthetic.scene.intrinsics_at(0)
    small = intrinsics.scaled(64, 48)
    depth = [synthetic.renderer.render(small, pose)[1] for pose in scene.poses]
    confidence = [np.full((48, 64), 2, np.uint8) for _ in depth]
    capture = Capture(
        [scene.frame(i).rgb for i in range(len(scene))],
        depth,
        confidence,
        intrinsics.as_array(),
        scene.poses.copy(),
        scene.timestamps.copy(),
    )
    path = write_r3d(capture, scan_folder.parent / "room.r3d")
    with Client(server.endpoint, timeout=60) as client:
        scan = client.open_scan(str(path))
    assert scan.format == "r3d"
    assert np.allclose(scan.poses, scene.poses, atol=1e-5) and scan.color_size == (CONFIG.width, CONFIG.height)
    assert len(scan.triangles) > 1000 and np.median(distance_to_room(scan.vertices)) < 0.03


def test_a_folder_that_knows_its_objects_is_named_as_its_upload_would_be(server, scan_folder):
    """A capture with instance maps and candidates.json: those travel (and are hashed) too."""
    from scene_r1.backend.data.synth.household_scene import HouseholdConfig, write_household
    from scene_r1.shared.scene_wire import knows_objects

    folder = scan_folder.parent / "household"
    write_household(HouseholdConfig(seed=3, frames=4, width=96, height=72, small_objects=2), folder)
    assert knows_objects(open_scene(folder))
    with Client(server.endpoint, timeout=60) as client:
        scan = client.open_scan(str(folder))
    assert scan.hash == scene_to_wire(open_scene(folder))[0]["hash"] and len(scan.triangles) > 0
