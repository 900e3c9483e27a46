"""The Blender extension, headless: install, capture, a query against a real backend process,
selection, and a failed query that leaves the .blend as it was."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import bpy
import numpy as np
import pytest

import scene_r1
from scene_r1.shared.camera import Intrinsics, blender_to_opencv_pose, intrinsics_from_blender, look_at
from scene_r1.shared.capture import CapturePlan
from scene_r1.shared.geometry import project_points

ROOT = Path(scene_r1.__file__).resolve().parent
BACKEND = ROOT / ".venv" / "bin" / "scene-r1"
ARTIFACTS = ROOT / "out" / "test-artifacts"


@pytest.fixture
def addon(empty_blend):
    """Enabled as an add-on (so its preferences exist), from the checkout."""
    import addon_utils

    addon_utils.enable("scene_r1", default_set=True)
    yield empty_blend
    addon_utils.disable("scene_r1", default_set=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def backend():
    if not BACKEND.exists():
        pytest.skip(f"the backend environment is not built ({BACKEND}); scripts/test.sh builds it first")
    address = f"tcp://127.0.0.1:{free_port()}"
    process = subprocess.Popen(
        [str(BACKEND), "serve", "--bind", address, "--tracker", "geometric"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    from scene_r1.shared.client import Client

    with Client(address, timeout=60, retries=0) as client:
        client.health()
    yield address, process
    process.kill()
    process.wait(10)


def build_room(scene):
    from scene_r1.addon.sample_scene import build_sample_room

    return build_sample_room(bpy.context)


def cube_box(scene, settings):
    """The cube's bounding box in the camera's captured image (our intrinsics and pose)."""
    camera = scene.camera
    data = camera.data
    intrinsics = intrinsics_from_blender(
        data.lens, data.sensor_width, data.sensor_height, data.sensor_fit, settings.width, settings.height
    )
    cube = bpy.data.objects["Cube"]
    corners = np.array([np.array(cube.matrix_world) @ np.append(np.array(c), 1) for c in cube.bound_box])[:, :3]
    uv, _ = project_points(corners, intrinsics, blender_to_opencv_pose(np.array(camera.matrix_world)))
    return [float(uv[:, 0].min()), float(uv[:, 1].min()), float(uv[:, 0].max()), float(uv[:, 1].max())]


def snapshot(scene):
    render = scene.render
    return {
        "objects": sorted(o.name for o in bpy.data.objects),
        "meshes": sorted(m.name for m in bpy.data.meshes),
        "materials": sorted(m.name for m in bpy.data.materials),
        "collections": sorted(c.name for c in bpy.data.collections),
        "cameras": sorted(c.name for c in bpy.data.cameras),
        "images": sorted(i.name for i in bpy.data.images),
        "render": (
            render.engine,
            render.resolution_x,
            render.resolution_y,
            render.filepath,
            render.image_settings.file_format,
        ),
        "camera": scene.camera.name if scene.camera else None,
        "selected": sorted(o.name for o in bpy.context.selected_objects),
    }


def test_capture_gives_exact_depth_intrinsics_and_poses(empty_blend):
    from scene_r1.addon.capture import capture

    bpy.ops.mesh.primitive_cube_add(size=2, location=(0, 0, 0))
    intrinsics = Intrinsics(80, 80, 39.5, 29.5, 80, 60)
    poses = np.array([look_at(np.array([0, -5.0, 0]), np.zeros(3)), look_at(np.array([3.0, -3.0, 2.0]), np.zeros(3))])
    captured = capture(bpy.context, CapturePlan(poses, np.array([0.0, 0.5]), intrinsics), samples=2)
    frame = captured.scene.frame(0)
    assert frame.rgb.shape == (60, 80, 3) and frame.rgb.dtype == np.uint8
    # The cube's near face is 4 m in front of a camera 5 m from its centre.
    assert np.allclose(frame.depth[25:35, 35:45], 4.0, atol=1e-4)
    assert np.allclose(captured.scene.poses, poses) and captured.scene.intrinsics_at(1).as_array() == pytest.approx(
        intrinsics.as_array()
    )
    assert captured.object_names == ["Cube"] and set(np.unique(captured.object_index[0])) == {0, 1}
    # Depth back-projects onto the cube's surface from the oblique view too.
    oblique = captured.scene.frame(1)
    from scene_r1.shared.geometry import backproject_depth

    points, _ = backproject_depth(oblique.depth, oblique.depth_intrinsics, oblique.pose)
    assert np.abs(points).max() < 1.0 + 1e-3 and (np.abs(points).max(axis=1) > 1.0 - 1e-3).all()
    # nothing of the capture is left behind
    assert [o.name for o in bpy.data.objects] == ["Cube"] and not bpy.data.cameras and not bpy.data.images


def test_a_box_query_creates_the_result_and_selects_the_right_object(addon, backend):
    scene = addon
    build_room(scene)
    prefs = bpy.context.preferences.addons[scene_r1.addon.preferences.package_name()].preferences
    prefs.backend_address, prefs.timeout = backend[0], 60
    settings = scene.scene_r1
    settings.mode, settings.capture_source, settings.frames, settings.width, settings.height, settings.samples = (
        "lift",
        "SCENE",
        10,
        128,
        96,
        4,
    )
    settings.box = cube_box(scene, settings)
    from scene_r1.addon.operators import finish_query, start_query
    from scene_r1.addon.results import select_covered

    runner = start_query(bpy.context)
    runner.wait(240)
    assert runner.state == runner.DONE, runner.error
    created = finish_query(bpy.context, runner)
    assert len(created) == 1
    result = created[0]
    assert result.users_collection[0].name == "Scene-R1" and len(result.data.vertices) > 50
    assert (
        result["scene_r1_mode"] == "lift" and result["scene_r1_key_frame"] == 0 and len(result["scene_r1_box_3d"]) == 6
    )
    low, high = np.array(result["scene_r1_box_3d"]).reshape(2, 3)
    cube = bpy.data.objects["Cube"]
    assert np.allclose(low, np.array(cube.location) - 0.4, atol=0.08) and np.allclose(
        high, np.array(cube.location) + 0.4, atol=0.08
    )
    assert [o.name for o in select_covered(bpy.context, result)] == ["Cube"]
    assert settings.history[-1].status == "done"
    render_result_picture(scene, f"blender-result-{bpy.app.version_string.split()[0]}.png")


def render_result_picture(scene, name):
    """The test scene with the result's glowing box, from the user's camera (looked at by a person)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    render = scene.render
    render.engine = "CYCLES"
    scene.cycles.samples, scene.cycles.device = 16, "CPU"
    render.resolution_x, render.resolution_y, render.resolution_percentage = 320, 240, 100
    render.image_settings.file_format = "PNG"
    render.filepath = str(ARTIFACTS / name)
    bpy.ops.render.render(write_still=True)
    assert (ARTIFACTS / name).stat().st_size > 1000


def test_separating_the_covered_faces_of_a_scan(addon, backend):
    scene = addon
    build_room(scene)
    # a "scan": floor, cube and sphere joined into one mesh
    for obj in bpy.data.objects:
        obj.select_set(obj.type == "MESH")
    bpy.context.view_layer.objects.active = bpy.data.objects["Floor"]
    bpy.ops.object.join()
    scan = bpy.context.active_object
    faces_before = len(scan.data.polygons)
    prefs = bpy.context.preferences.addons[scene_r1.addon.preferences.package_name()].preferences
    prefs.backend_address = backend[0]
    settings = scene.scene_r1
    settings.mode, settings.frames, settings.width, settings.height, settings.samples = "lift", 10, 128, 96, 4
    from scene_r1.addon.operators import finish_query, start_query
    from scene_r1.addon.results import separate_covered_faces

    settings.box = cube_box_of_points(scene, settings)
    runner = start_query(bpy.context)
    runner.wait(240)
    assert runner.state == runner.DONE, runner.error
    result = finish_query(bpy.context, runner)[0]
    part = separate_covered_faces(bpy.context, scan, result, radius=0.05)
    assert part is not None
    assert len(part.data.polygons) + len(scan.data.polygons) == faces_before
    vertices = np.array([part.matrix_world @ v.co for v in part.data.vertices])
    assert np.abs(vertices.mean(axis=0) - np.array([-0.6, 0.2, 0.4])).max() < 0.15  # the cube's faces went with it


def cube_box_of_points(scene, settings):
    camera = scene.camera
    data = camera.data
    intrinsics = intrinsics_from_blender(
        data.lens, data.sensor_width, data.sensor_height, data.sensor_fit, settings.width, settings.height
    )
    corners = np.array([[x, y, z] for x in (-1.0, -0.2) for y in (-0.2, 0.6) for z in (0.0, 0.8)])
    uv, _ = project_points(corners, intrinsics, blender_to_opencv_pose(np.array(camera.matrix_world)))
    return [float(uv[:, 0].min()), float(uv[:, 1].min()), float(uv[:, 0].max()), float(uv[:, 1].max())]


def test_a_backend_killed_mid_query_leaves_the_blend_unchanged(addon, backend):
    scene = addon
    build_room(scene)
    prefs = bpy.context.preferences.addons[scene_r1.addon.preferences.package_name()].preferences
    prefs.backend_address, prefs.timeout = backend[0], 3
    settings = scene.scene_r1
    settings.mode, settings.frames, settings.width, settings.height, settings.samples = "lift", 40, 128, 96, 1
    settings.box = cube_box(scene, settings)
    before = snapshot(scene)
    from scene_r1.addon.operators import finish_query, start_query

    runner = start_query(bpy.context)
    while runner.stage not in ("tracking", "lifting") and not runner.finished:  # the backend is working on it
        runner.step()
        time.sleep(0.005)
    backend[1].send_signal(signal.SIGKILL)
    backend[1].wait(10)
    killed = time.monotonic()
    runner.wait(60)
    assert runner.state == runner.FAILED and "no answer" in runner.error, (runner.state, runner.error)
    assert time.monotonic() - killed < 10  # the client's timeout (3 s), not a hang
    assert finish_query(bpy.context, runner) == []
    assert bpy.context.window_manager.scene_r1_status.message.startswith("failed")
    assert snapshot(scene) == before


def test_the_built_zip_installs_and_enables(tmp_path):
    """scripts/build_extension.py's zip through Blender's own installer, in a fresh process."""
    build = subprocess.run(
        [
            sys.executable,
            str(ROOT / "scripts" / "build_extension.py"),
            "--out",
            str(tmp_path / "dist"),
            "--wheels",
            str(ROOT / "wheels"),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    archive = Path(build.stdout.strip().splitlines()[-1])
    script = textwrap.dedent(f"""
        import bpy, sys
        bpy.ops.extensions.package_install_files(filepath={str(archive)!r}, repo="user_default", enable_on_install=True)
        import addon_utils
        enabled = [m for m in bpy.context.preferences.addons.keys() if m.endswith("scene_r1")]
        assert enabled == ["bl_ext.user_default.scene_r1"], enabled
        assert hasattr(bpy.types, "SCENE_R1_PT_panel") and hasattr(bpy.ops.scene_r1, "run")
        assert hasattr(bpy.types.Scene, "scene_r1")
        import importlib; module = importlib.import_module("bl_ext.user_default.scene_r1.shared.client")
        assert "torch" not in sys.modules
        print("installed", module.__file__)
    """)
    env = os.environ | {
        "BLENDER_USER_RESOURCES": str(tmp_path / "user"),
        "BLENDER_USER_CONFIG": str(tmp_path / "user" / "config"),
    }
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "installed" in run.stdout


def test_run_and_cancel_operators_through_the_timer(addon, backend):
    """The UI path: Run registers the timer; its ticks capture frame by frame; Cancel restores everything."""
    from scene_r1.addon import operators

    scene = addon
    build_room(scene)
    prefs = bpy.context.preferences.addons[scene_r1.addon.preferences.package_name()].preferences
    prefs.backend_address = backend[0]
    settings = scene.scene_r1
    settings.mode, settings.query, settings.frames, settings.width, settings.height, settings.samples = (
        "ground",
        "the cube",
        8,
        64,
        48,
        1,
    )
    before = snapshot(scene)
    assert bpy.ops.scene_r1.run() == {"FINISHED"}
    status = bpy.context.window_manager.scene_r1_status
    assert status.running
    assert operators._tick() == operators.TICK  # one frame captured, the UI got control back
    assert status.stage == "capture" and 0 < status.progress < 100
    bpy.ops.scene_r1.cancel()
    while operators._tick() is not None:
        pass
    assert status.message == "cancelled" and not status.running
    assert snapshot(scene) == before
    assert bpy.ops.scene_r1.run() == {"FINISHED"}  # and a new query can start
    bpy.ops.scene_r1.cancel()
    while operators._tick() is not None:
        pass
