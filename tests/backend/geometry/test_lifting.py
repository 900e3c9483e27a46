import json

import numpy as np
import open3d as o3d
import pytest

from scene_r1.backend.cli import main
from scene_r1.backend.data import open_scene
from scene_r1.backend.data.synth import SynthConfig, build_synthetic
from scene_r1.backend.data.synth.generate import visible_boxes
from scene_r1.backend.eval.metrics import accuracy_at, box_iou_2d, box_iou_3d, mask_iou_2d, point_mask_iou, temporal_iou
from scene_r1.backend.geometry.lifting import lift_masks, naive_union
from scene_r1.backend.geometry.mask3d import lift_from_box, mask_to_3d
from scene_r1.backend.geometry.segmentation import refine_with_grabcut, segment_box
from scene_r1.shared.camera import Intrinsics
from scene_r1.shared.geometry import project_points
from scene_r1.shared.scene import Scene, SceneError


def best_view(synthetic, boxes, object_id):
    seen = [(frame[object_id][1], i) for i, frame in enumerate(boxes) if object_id in frame]
    return max(seen)[1] if seen else None


@pytest.fixture(scope="module")
def rooms():
    out = []
    for seed in (21, 22):
        synthetic = build_synthetic(SynthConfig(seed=seed, frames=14, width=160, height=120))
        boxes = [visible_boxes(synthetic.scene.instance(i), synthetic.config.min_visible_pixels) for i in range(14)]
        out.append((synthetic, boxes))
    return out


def test_one_ground_truth_box_gives_a_tight_3d_mask_for_most_objects(rooms):
    ious = []
    for synthetic, boxes in rooms:
        for obj in synthetic.room.objects:
            key = best_view(synthetic, boxes, obj.id)
            if key is None:
                continue
            try:
                ious.append(box_iou_3d(lift_from_box(synthetic.scene, key, boxes[key][obj.id][0]).aabb, obj.aabb))
            except SceneError:
                ious.append(0.0)
    assert len(ious) >= 15
    assert accuracy_at(ious, 0.5) >= 0.9, sorted(np.round(ious, 2))


def test_box_segmentation_matches_the_instance_mask(rooms):
    synthetic, boxes = rooms[0]
    scores = []
    for obj in synthetic.room.objects:
        key = best_view(synthetic, boxes, obj.id)
        if key is not None:
            mask = segment_box(synthetic.scene.frame(key), boxes[key][obj.id][0])
            scores.append(mask_iou_2d(mask, synthetic.scene.instance(key) == obj.id))
    assert np.median(scores) > 0.85


def test_grabcut_refinement_recovers_pixels_depth_clustering_missed(rooms):
    before, after = [], []
    for synthetic, boxes in rooms:
        for obj in synthetic.room.objects:
            key = best_view(synthetic, boxes, obj.id)
            if key is None:
                continue
            frame, box = synthetic.scene.frame(key), boxes[key][obj.id][0]
            truth = synthetic.scene.instance(key) == obj.id
            mask = segment_box(frame, box)
            refined = refine_with_grabcut(frame, box, mask)
            assert (refined >= mask).all()  # it only adds pixels
            before.append(mask_iou_2d(mask, truth))
            after.append(mask_iou_2d(refined, truth))
    assert np.mean(after) > np.mean(before) + 0.005, (np.mean(before), np.mean(after))
    assert min(np.subtract(after, before)) > -0.02


def test_voting_rejects_false_positive_blobs_that_the_naive_union_keeps(rooms):
    synthetic, boxes = rooms[0]
    obj = next(o for o in synthetic.room.objects if not o.is_furniture and sum(o.id in b for b in boxes) >= 5)
    masks = {i: synthetic.scene.instance(i) == obj.id for i in range(len(synthetic.scene))}
    blob_frame = next(i for i in masks if masks[i].any())
    masks[blob_frame] = masks[blob_frame].copy()
    masks[blob_frame][5:25, 5:25] = True  # a wrong blob on the background in one frame
    inside = lambda p: np.all((p >= obj.aabb[0] - 0.02) & (p <= obj.aabb[1] + 0.02), axis=1)
    lifted = mask_to_3d(synthetic.scene, masks)
    assert inside(lifted.points).mean() > 0.99
    assert box_iou_3d(lifted.aabb, obj.aabb) > 0.7
    assert inside(naive_union(synthetic.scene, masks)).mean() < 0.95


def test_torch_voting_counts_the_same_votes_as_numpy(rooms):
    """The GPU path's rule is the numpy one: same seen / in-mask counts (run here on torch's CPU device),
    with frames of two sizes split into separate chunks."""
    from scene_r1.backend.geometry.lifting import LiftSettings, vote_in_frames
    from scene_r1.backend.geometry.voting import TorchVoter

    synthetic, boxes = rooms[1]
    obj = next(o for o in synthetic.room.objects if sum(o.id in b for b in boxes) >= 5)
    frames = [synthetic.scene.frame(i) for i in range(len(synthetic.scene))]
    masks = [synthetic.scene.instance(i) == obj.id for i in range(len(synthetic.scene))]
    lifted = lift_masks(synthetic.scene, dict(enumerate(masks)))
    rng = np.random.default_rng(0)
    points = np.concatenate(
        [lifted.points, rng.uniform(obj.aabb[0] - 1, obj.aabb[1] + 1, (2000, 3))]
    )  # on the object and anywhere
    settings = LiftSettings()
    expected = vote_in_frames(points, frames, masks, settings)
    counted = TorchVoter("cpu", frames_per_chunk=5)(points, frames, masks, settings)
    for ours, theirs in zip(counted, expected):
        assert ours.dtype == theirs.dtype and np.mean(ours == theirs) > 0.999
    assert expected[1].sum() > 1000  # the points were voted for, not trivially zero
    # a frame of another size is voted in its own chunk
    from dataclasses import replace

    half = synthetic.scene.frame(0)
    k = half.depth_intrinsics
    small = replace(
        half,
        depth=half.depth[::2, ::2].copy(),
        depth_intrinsics=Intrinsics(k.fx / 2, k.fy / 2, k.cx / 2, k.cy / 2, 80, 60),
    )
    mixed = frames[:3] + [small] + frames[3:6]
    mixed_masks = masks[:3] + [masks[0][::2, ::2]] + masks[3:6]
    for ours, theirs in zip(
        TorchVoter("cpu")(points, mixed, mixed_masks, settings), vote_in_frames(points, mixed, mixed_masks, settings)
    ):
        assert np.mean(ours == theirs) > 0.999


def test_real_sequence_box_reprojects_onto_the_object(real_sequence):
    scene = open_scene(real_sequence)
    mug = lift_from_box(scene, 0, [355, 158, 405, 205])  # the white mug on the table, drawn by hand
    assert np.all(mug.aabb[1] - mug.aabb[0] < 0.3) and len(mug.points) > 100
    # Frame 3 (a second, hand-drawn box around the same mug): the 3D mask lands on it.
    frame = scene.frame(3)
    uv, z = project_points(mug.points, frame.intrinsics, frame.pose)
    u, v = uv[z > 0].T
    inside = (u >= 470) & (u <= 580) & (v >= 145) & (v <= 230)
    assert inside.mean() > 0.8


def test_cli_lift_writes_result_and_ply(synthetic_folder, tmp_path):
    gt = json.loads((synthetic_folder / "gt.json").read_text())
    obj = max(gt["objects"], key=lambda o: max(o["pixels"].values(), default=0))
    frame = max(obj["pixels"], key=obj["pixels"].get)
    box = ",".join(str(b) for b in obj["boxes"][frame])
    argv = ["lift", str(synthetic_folder), "--frame", frame, "--box", box, "--segmenter", "geometric"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["point_count"] > 0 and {"aabb", "obb", "frame_boxes", "timings"} <= result.keys()
    cloud = o3d.t.io.read_point_cloud(str(tmp_path / "mask.ply"))
    assert len(cloud.point.positions) == result["point_count"] and "confidence" in cloud.point


def tiny_scene(depth_value=1.0, n=2):
    rgb = [np.zeros((24, 32, 3), np.uint8)] * n
    depth = [np.full((24, 32), depth_value, np.float32)] * n
    return Scene.from_arrays(
        rgb, depth, Intrinsics(30, 30, 15.5, 11.5, 32, 24), np.repeat(np.eye(4)[None], n, 0), np.arange(n)
    )


@pytest.mark.parametrize(
    "box, message",
    [
        ([100, 100, 120, 130], "outside"),
        ([5, 5, 5.5, 20], "under 2 pixels"),
        ([0, 0, np.nan, 3], "finite"),
        ([1, 2, 3], "four"),
    ],
)
def test_bad_boxes(box, message):
    with pytest.raises(SceneError, match=message):
        lift_from_box(tiny_scene(), 0, box)


def test_no_valid_depth_in_the_box():
    with pytest.raises(SceneError, match="no valid depth"):
        lift_from_box(tiny_scene(depth_value=0.0), 0, [2, 2, 20, 20])


def test_empty_and_misshapen_masks():
    scene = tiny_scene()
    with pytest.raises(SceneError, match="nothing to lift"):
        lift_masks(scene, {0: np.zeros((24, 32), bool)})
    with pytest.raises(SceneError, match="no masks"):
        lift_masks(scene, {})
    with pytest.raises(SceneError, match="mask for frame 0 is"):
        lift_masks(scene, {0: np.ones((10, 10), bool)})


def test_metrics_by_hand():
    assert box_iou_2d([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert box_iou_3d([[0, 0, 0], [2, 2, 2]], [[1, 1, 1], [3, 3, 3]]) == pytest.approx(1 / 15)
    assert box_iou_3d([[0, 0, 0], [1, 1, 1]], [[2, 2, 2], [3, 3, 3]]) == 0
    assert temporal_iou([0, 4], [2, 6]) == pytest.approx(2 / 6)
    assert accuracy_at([0.1, 0.3, 0.6, 0.9], 0.5) == 0.5 and accuracy_at([0.1, 0.3, 0.6, 0.9], 0.25) == 0.75
    a = np.array([[0.005, 0.005, 0.005], [0.025, 0.005, 0.005]])
    assert point_mask_iou(a, a[:1], voxel=0.02) == 0.5
    assert mask_iou_2d(np.eye(3, dtype=bool), np.ones((3, 3), bool)) == pytest.approx(1 / 3)
