"""Captures a new user makes by hand: one to three frames, objects seen only from far away, and a
command line's undecodable query. Each once gave an empty export or half a result folder."""

import json

import numpy as np
import pytest

from scene_r1.backend.cli.main import main
from scene_r1.backend.exports import LabelledObject, export_scan
from scene_r1.backend.geometry.fusion import fuse_scene
from scene_r1.backend.pipeline.results import masks_to_rle, write_result
from scene_r1.shared.camera import Intrinsics
from scene_r1.shared.results import QueryResult
from scene_r1.shared.scene import Scene, SceneError

WIDTH, HEIGHT = 80, 60
INTRINSICS = Intrinsics(60.0, 60.0, 39.5, 29.5, WIDTH, HEIGHT)


def wall_scene(frames: int, distance: float) -> Scene:
    """A grey wall `distance` metres in front of a camera that slides 5 cm per frame."""
    poses = np.tile(np.eye(4), (frames, 1, 1))
    poses[:, 0, 3] = 0.05 * np.arange(frames)
    rgb = [np.full((HEIGHT, WIDTH, 3), 128, np.uint8)] * frames
    depth = [np.full((HEIGHT, WIDTH), distance, np.float32)] * frames
    return Scene.from_arrays(rgb, depth, INTRINSICS, poses, np.arange(frames) / 30.0)


def test_one_to_three_frames_fuse_to_a_surface():
    for frames in (1, 2, 3):
        fused = fuse_scene(wall_scene(frames, 2.0))
        assert len(fused.mesh_triangles) > 100, frames
        assert np.allclose(fused.mesh_vertices[:, 2], 2.0, atol=0.03)


def test_a_surface_seen_in_three_frames_of_six_is_kept():
    scene = wall_scene(6, 2.0)
    blank = [np.zeros((HEIGHT, WIDTH), np.float32)] * 3  # frames 3-5 have no depth reading
    rgb = [scene.frame(i).rgb for i in range(6)]
    depth = [scene.frame(i).depth for i in range(3)] + blank
    scene = Scene.from_arrays(rgb, depth, INTRINSICS, scene.poses, np.arange(6) / 30.0)
    assert len(fuse_scene(scene).mesh_triangles) > 100


def test_a_capture_with_no_depth_in_range_is_refused_in_words():
    with pytest.raises(SceneError, match="no frame has valid depth within 4 m"):
        fuse_scene(wall_scene(2, 6.0))


def test_an_object_seen_only_from_beyond_four_metres_is_cut_from_the_scan(tmp_path):
    scene = wall_scene(2, 5.5)
    # a patch of the wall, as a lift would give it, segmented on frame 0
    u, v = np.meshgrid(np.arange(30, 50), np.arange(20, 40))
    points = np.stack([(u - 39.5) / 60 * 5.5, (v - 29.5) / 60 * 5.5, np.full(u.shape, 5.5)], -1).reshape(-1, 3)
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[20:40, 30:50] = True
    patch = LabelledObject("poster", 0.9, points, masks_to_rle({0: mask}))
    manifest = export_scan(scene, [patch], tmp_path, formats=("glb",))
    entry = manifest["objects"][0]
    assert "error" not in entry and entry["faces"] > 50 and (tmp_path / entry["glb"]).is_file()


def test_an_undecodable_query_writes_nothing(tmp_path, capsys):
    out = tmp_path / "result"
    assert main(["ground", str(tmp_path), "\udcff\udcfe mug", "--out", str(out)]) == 2
    assert "not valid UTF-8" in capsys.readouterr().err and not out.exists()


def test_a_result_is_written_whole_whatever_its_text(tmp_path):
    written = write_result(QueryResult(query="the \udcff mug", scene="s", mode="ground"), tmp_path)
    assert written["query"] == "the \udcff mug"
    saved = json.loads((tmp_path / "result.json").read_text(encoding="utf-8"))
    assert saved["query"] == "the \udcff mug"  # kept as a JSON escape: read back as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json"]


def test_a_lifted_box_keeps_its_masks_for_coco(synthetic_folder, tmp_path):
    from scene_r1.backend.data import open_scene
    from scene_r1.backend.data.synth import load_ground_truth
    from scene_r1.backend.exports import labelled_objects, read_result
    from scene_r1.backend.geometry.tracking import GeometricTracker
    from scene_r1.backend.pipeline.results import lift_to_folder

    scene, truth = open_scene(synthetic_folder), load_ground_truth(synthetic_folder)
    obj = max((o for o in truth["objects"] if o["pixels"]), key=lambda o: max(o["pixels"].values()))
    frame = max(obj["pixels"], key=obj["pixels"].get)
    lift_to_folder(scene, int(frame), obj["boxes"][frame], tmp_path / "lift", segmenter=GeometricTracker())
    result = read_result(tmp_path / "lift")
    assert int(frame) in {int(f) for f in result.instances[0].masks_2d}
    manifest = export_scan(scene, labelled_objects([("thing", result)]), tmp_path / "out", formats=("coco",))
    coco = json.loads((tmp_path / "out" / manifest["files"]["coco"]).read_text(encoding="utf-8"))
    assert len(coco["annotations"]) >= 1 and coco["images"][0]["width"] == scene.color_size[0]


def test_frames_are_named_by_the_capture_s_own_numbers(tmp_path):
    """A capture numbered 0, 20, 40 (7-Scenes' every 20th frame, a ScanNet export with dropped
    frames): result.json maps its frame indices to those numbers, and COCO names images by them."""
    from pycocotools.coco import COCO

    base = wall_scene(3, 2.0)
    frames = [base.frame(i) for i in range(3)]
    scene = Scene.from_arrays(
        [f.rgb for f in frames],
        [f.depth for f in frames],
        INTRINSICS,
        base.poses,
        base.timestamps,
        frame_numbers=[0, 20, 40],
    )
    mask = np.zeros((HEIGHT, WIDTH), bool)
    mask[20:40, 30:50] = True
    u, v = np.meshgrid(np.arange(30, 50), np.arange(20, 40))
    points = np.stack([(u - 39.5) / 60 * 2.0, (v - 29.5) / 60 * 2.0, np.full(u.shape, 2.0)], -1).reshape(-1, 3)
    patch = LabelledObject("poster", 0.9, points, masks_to_rle({1: mask}))
    manifest = export_scan(scene, [patch], tmp_path / "e", formats=("coco",))
    coco = COCO(str(tmp_path / "e" / manifest["files"]["coco"]))
    (image,) = coco.imgs.values()
    assert image["frame"] == 20 and image["frame_index"] == 1 and image["file_name"] == "frames/000020.jpg"
    assert (tmp_path / "e" / image["file_name"]).is_file()
    written = write_result(QueryResult(query="q", scene="s", key_frame=1), tmp_path / "r", frame_numbers=[0, 20, 40])
    assert written["key_frame_number"] == 20 and written["frame_numbers"] == [0, 20, 40]
    assert "frame_numbers" not in write_result(QueryResult(query="q", scene="s"), tmp_path / "r2", frame_numbers=[0, 1])
