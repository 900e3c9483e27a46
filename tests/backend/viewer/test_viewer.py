"""The viewer: what it draws and exports (plain functions), and the window itself on a virtual display."""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest

from scene_r1.backend.data import open_scene
from scene_r1.backend.geometry.fusion import FusionSettings, fuse_scene
from scene_r1.backend.pipeline.pipeline import Pipeline
from scene_r1.backend.pipeline.settings import PipelineSettings
from scene_r1.backend.viewer.logic import (
    PALETTE,
    export_result,
    read_scannet_instances,
    result_drawables,
    shows_colour,
    vertex_labels,
)
from scene_r1.shared.results import QueryResult, result_from_wire, result_to_wire

# Screenshots for a person to look at: outside the checkout (SCENE_R1_TEST_ARTIFACTS, else the temp folder).
ARTIFACTS = Path(os.environ.get("SCENE_R1_TEST_ARTIFACTS") or Path(tempfile.gettempdir()) / "scene-r1-test-artifacts")


def best_box(folder):
    truth = json.loads((folder / "gt.json").read_text())
    target = max((o for o in truth["objects"] if o["pixels"]), key=lambda o: max(o["pixels"].values()))
    frame = max(target["pixels"], key=target["pixels"].get)
    return int(frame), target["boxes"][frame], target


@pytest.fixture(scope="module")
def lifted(synthetic_folder):
    """A real box-prompt result on the synthetic scan, as the client receives it (through the wire form)."""
    scene = open_scene(synthetic_folder)
    frame, box, target = best_box(synthetic_folder)
    result = Pipeline(PipelineSettings(tracker="geometric")).lift(scene, frame, box)
    received = result_from_wire(*result_to_wire(result))
    fused = fuse_scene(scene, FusionSettings(voxel=0.03))
    return received, fused, target


def test_what_is_drawn_for_a_result(lifted):
    result, _, target = lifted
    drawables = {d.name: d for d in result_drawables(result, number=2)}
    assert set(drawables) == {"result2/instance0/points", "result2/instance0/aabb", "result2/instance0/obb"}
    points = drawables["result2/instance0/points"]
    assert (
        points.points.shape == result.instances[0].mask3d.points.shape
        and points.colors.shape == points.points.shape
        and points.colors.max() <= 1
    )
    aabb = drawables["result2/instance0/aabb"]
    assert aabb.lines.shape == (12, 2) and np.allclose(aabb.points.min(0), result.instances[0].mask3d.aabb[0])
    assert result.title() == "lift: box (1 object)" and "box-prompt" in result.reasoning_text()
    assert result_drawables(QueryResult(query="how many?", scene="s", mode="ask", answer="2")) == []


def test_exports_read_back_by_open3d_and_a_scannet_reader(lifted, tmp_path):
    result, fused, target = lifted
    paths = export_result(tmp_path, "scene0000_00", fused.mesh_vertices, fused.mesh_colors, result)
    labels = vertex_labels(fused.mesh_vertices, result)
    assert 0 < (labels == 1).sum() < len(labels)
    cloud = o3d.t.io.read_point_cloud(str(paths["ply"]))
    assert len(cloud.point.positions) == len(fused.mesh_vertices)
    assert (cloud.point["label"].numpy().reshape(-1) == labels).all()
    instances = read_scannet_instances(paths["scannet"])
    assert len(instances) == 1 and instances[0]["label_id"] == 40 and (instances[0]["mask"] == (labels == 1)).all()
    assert 0 < instances[0]["confidence"] <= 1
    exported = json.loads(paths["json"].read_text())
    assert exported["scan_vertex_indices"]["0"] == np.flatnonzero(labels == 1).tolist()
    # the labelled vertices are the target's surface, not the room around it
    low, high = np.array(target["aabb"])
    inside = np.all(
        (fused.mesh_vertices[labels == 1] > low - 0.05) & (fused.mesh_vertices[labels == 1] < high + 0.05), axis=1
    )
    assert inside.mean() > 0.9


@pytest.mark.skipif(
    shutil.which("xvfb-run") is None,
    reason="needs xvfb-run (Debian's xvfb; scripts/setup.sh installs it) for a virtual display",
)
def test_the_viewer_window_shows_a_result(synthetic_folder, tmp_path):
    frame, box, _ = best_box(synthetic_folder)
    shot = ARTIFACTS / "viewer.png"
    shot.unlink(missing_ok=True)
    command = [
        "xvfb-run",
        "-a",
        "-s",
        "-screen 0 1280x800x24",
        sys.executable,
        "-m",
        "scene_r1.backend.cli",
        "view",
        str(synthetic_folder),
        "--mode",
        "box",
        "--box",
        f"{frame} {','.join(map(str, box))}",
        "--tracker",
        "geometric",
        "--screenshot",
        str(shot),
        "--export-dir",
        str(tmp_path / "exports"),
    ]
    run = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=os.environ | {"OPEN3D_CPU_RENDERING": "true"}
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    image = np.asarray(o3d.io.read_image(str(shot)))
    assert image.shape[:2] == (800, 1280) and image.std() > 10
    # the result's orange (box lines, mask points, key-frame rectangle) is on screen
    orange = (image[..., 0] > 200) & (image[..., 1] > 60) & (image[..., 1] < 200) & (image[..., 2] < 80)
    assert orange.sum() > 200
    assert (tmp_path / "exports" / "result-0" / "scannet").is_dir()


def test_the_viewer_knows_when_a_result_colour_is_on_screen():
    grab = np.full((40, 60, 3), 30, np.uint8)
    assert not shows_colour(grab, PALETTE[0])
    grab[10:20, 10:30] = (250, 95, 10)  # a drawn orange box edge, a few levels off the palette
    assert shows_colour(grab, PALETTE[0]) and not shows_colour(grab, PALETTE[1])
    assert not shows_colour(grab, PALETTE[0], at_least=201)
