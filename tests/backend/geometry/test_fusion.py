import json

import numpy as np
import open3d as o3d
import pytest

from scene_r1.backend.cli import main
from scene_r1.backend.data.synth import SynthConfig, build_synthetic
from scene_r1.backend.data.synth.generate import visible_boxes
from scene_r1.backend.eval.metrics import accuracy_at
from scene_r1.backend.geometry.fusion import FusionSettings, fuse_scene
from scene_r1.backend.geometry.mask3d import lift_from_box
from scene_r1.backend.geometry.neighbours import indices_near


@pytest.fixture(scope="module")
def room():
    synthetic = build_synthetic(SynthConfig(seed=31, frames=16, width=160, height=120))
    return synthetic, fuse_scene(synthetic.scene, FusionSettings(voxel=0.02))


def test_fused_surface_lies_on_the_room_geometry(room):
    synthetic, fused = room
    assert len(fused.mesh_vertices) > 5000 and len(fused.mesh_triangles) > 5000
    assert fused.frames_fused == 16
    distance = synthetic.renderer.distance_to_surfaces(fused.mesh_vertices)
    assert np.median(distance) < 0.004 and np.quantile(distance, 0.95) < 0.015  # pixel-centre convention matters here
    assert fused.mesh_colors.min() >= 0 and fused.mesh_colors.max() <= 1


def test_a_lifted_mask_as_indices_of_the_scene_vertices_matches_the_object(room):
    synthetic, fused = room
    labels = synthetic.renderer.instance_of_points(fused.mesh_vertices)
    boxes = [
        visible_boxes(synthetic.scene.instance(i), synthetic.config.min_visible_pixels)
        for i in range(len(synthetic.scene))
    ]
    ious = []
    for obj in synthetic.room.objects:
        seen = [(frame[obj.id][1], i) for i, frame in enumerate(boxes) if obj.id in frame]
        truth = np.flatnonzero(labels == obj.id)
        if not seen or len(truth) < 50:
            continue
        key = max(seen)[1]
        indices = indices_near(
            fused.mesh_vertices, lift_from_box(synthetic.scene, key, boxes[key][obj.id][0]).points, 0.03
        )
        ious.append(len(np.intersect1d(indices, truth)) / len(np.union1d(indices, truth)))
    assert len(ious) >= 5
    assert accuracy_at(ious, 0.5) >= 0.8, np.round(ious, 2)


def test_indices_near_is_exact_on_a_grid():
    grid = np.stack(np.meshgrid(np.arange(5.0), np.arange(5.0), [0.0]), -1).reshape(-1, 3)
    assert indices_near(grid, np.array([[2.0, 2.0, 0.0]]), 1.01).tolist() == [7, 11, 12, 13, 17]
    assert indices_near(grid, np.zeros((0, 3)), 1.0).size == 0


def test_lift_cli_with_fuse_writes_mesh_and_vertex_indices(synthetic_folder, tmp_path):
    gt = json.loads((synthetic_folder / "gt.json").read_text())
    target = max((o for o in gt["objects"] if o["pixels"]), key=lambda o: max(o["pixels"].values()))
    frame = max(target["pixels"], key=target["pixels"].get)
    box = target["boxes"][frame]
    assert (
        main(
            [
                "lift",
                str(synthetic_folder),
                "--frame",
                frame,
                "--box",
                ",".join(map(str, box)),
                "--segmenter",
                "geometric",
                "--out",
                str(tmp_path),
                "--fuse",
            ]
        )
        == 0
    )
    result = json.loads((tmp_path / "result.json").read_text())
    mesh = o3d.io.read_triangle_mesh(str(tmp_path / result["scene_mesh"]))
    indices = np.array(result["scene_vertex_indices"])
    assert len(indices) > 0 and indices.max() < len(mesh.vertices)
    vertices = np.asarray(mesh.vertices)[indices]
    low, high = np.array(result["aabb"])
    assert np.all((vertices > low - 0.05) & (vertices < high + 0.05))


def test_wide_frames_fused_at_every_other_pixel_stay_on_the_surface():
    synthetic = build_synthetic(SynthConfig(seed=32, frames=6, width=320, height=240))
    fused = fuse_scene(synthetic.scene, FusionSettings(voxel=0.02, max_width=160))
    distance = synthetic.renderer.distance_to_surfaces(fused.mesh_vertices)
    assert len(fused.mesh_vertices) > 3000
    assert np.median(distance) < 0.004 and np.quantile(distance, 0.95) < 0.015
