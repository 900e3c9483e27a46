import numpy as np
import pytest

from scene_r1.backend.data import open_scene
from scene_r1.backend.data.synth import SynthConfig, build_synthetic, load_ground_truth, write_synthetic
from scene_r1.backend.data.synth.generate import GT_POINTS_FILE, visible_boxes, visible_spans
from scene_r1.shared.geometry import backproject_depth
from scene_r1.shared.scene import SceneError


def test_backprojected_depth_lands_on_the_geometry_within_1mm(synthetic):
    scene, renderer = synthetic.scene, synthetic.renderer
    for index in (0, 5, 11):
        frame = scene.frame(index)
        points, _ = backproject_depth(frame.depth, frame.intrinsics, frame.pose)
        assert len(points) == frame.depth.size  # a closed room: every ray hits something
        assert renderer.distance_to_surfaces(points).max() < 1e-3


def test_written_folder_keeps_depth_within_1mm(synthetic, synthetic_folder):
    scene = open_scene(synthetic_folder)
    assert scene.format == "scene-r1" and len(scene) == 12 and scene.has_instances
    frame = scene.frame(4)
    points, _ = backproject_depth(frame.depth, frame.intrinsics, frame.pose)
    assert synthetic.renderer.distance_to_surfaces(points).max() < 1e-3
    assert np.array_equal(frame.rgb, synthetic.scene.frame(4).rgb)  # PNG colour is lossless
    assert np.array_equal(scene.instance(4), synthetic.scene.instance(4))


def test_ground_truth_file(synthetic_folder):
    gt = load_ground_truth(synthetic_folder)
    scene = open_scene(synthetic_folder)
    assert gt["objects"] and gt["queries"] and gt["qa"]
    for obj in gt["objects"]:
        assert {"id", "name", "aabb", "boxes"} <= obj.keys()
        low, high = np.array(obj["aabb"])
        assert (high > low).all()
    for query in gt["queries"]:
        assert query["spans"] and all(0 <= a <= b <= scene.duration for a, b in query["spans"])
        target = next(o for o in gt["objects"] if o["id"] == query["target_id"])
        starts = [scene.timestamps[int(i)] for i in target["boxes"]]
        assert min(starts) == pytest.approx(query["spans"][0][0])
    assert {qa["kind"] for qa in gt["qa"]} >= {"count", "exists"}
    points = np.load(synthetic_folder / GT_POINTS_FILE)
    assert len(points["points"]) == len(points["instance_ids"]) > 0


def test_boxes_and_3d_boxes_agree_with_the_pixels(synthetic_folder):
    gt, scene = load_ground_truth(synthetic_folder), open_scene(synthetic_folder)
    by_id = {o["id"]: o for o in gt["objects"]}
    for index in (0, 6):
        frame, instance = scene.frame(index), scene.instance(index)
        for object_id in np.unique(instance):
            if object_id == 0 or str(index) not in by_id[object_id]["boxes"]:
                continue
            x1, y1, x2, y2 = by_id[object_id]["boxes"][str(index)]
            v, u = np.nonzero(instance == object_id)
            assert (u.min(), v.min(), u.max() + 1, v.max() + 1) == (x1, y1, x2, y2)
            points, _ = backproject_depth(frame.depth, frame.intrinsics, frame.pose, instance == object_id)
            low, high = np.array(by_id[object_id]["aabb"])
            assert (points >= low - 2e-3).all() and (points <= high + 2e-3).all()


def test_attribute_expressions_name_exactly_one_object(synthetic):
    gt = load_ground_truth_from(synthetic)
    objects = synthetic.room.objects
    for query in (q for q in gt["queries"] if q["kind"] == "attribute"):
        words = set(query["text"].removeprefix("the ").split())
        fits = [o for o in objects if words <= {o.size, o.colour, o.shape}]
        assert [o.id for o in fits] == [query["target_id"]], query["text"]


def load_ground_truth_from(synthetic):
    from scene_r1.backend.data.synth.generate import ground_truth

    boxes = [
        visible_boxes(synthetic.scene.instance(i), synthetic.config.min_visible_pixels)
        for i in range(len(synthetic.scene))
    ]
    return ground_truth(synthetic, boxes)


def test_relation_questions_and_counts_are_true(synthetic):
    gt = load_ground_truth_from(synthetic)
    objects = synthetic.room.objects
    for qa in gt["qa"]:
        if qa["question"].startswith("How many") and qa["question"].endswith("objects are there?"):
            colour = qa["question"].split()[2]
            assert int(qa["answer"]) == sum(o.colour == colour and not o.is_furniture for o in objects)
        if qa["kind"] == "exists":
            _, _, _, colour, shape = qa["question"].rstrip("?").split()
            assert (qa["answer"] == "yes") == any(o.colour == colour and o.shape == shape for o in objects)


def test_shading_is_not_flat(synthetic):
    frame, instance = synthetic.scene.frame(0), synthetic.scene.instance(0)
    floor = frame.rgb[instance == 0]
    assert len(np.unique(floor.reshape(-1, 3), axis=0)) > 20


def test_deterministic_for_a_seed(tmp_path):
    config = SynthConfig(seed=11, frames=3, width=64, height=48)
    a, b = write_synthetic(config, tmp_path / "a"), write_synthetic(config, tmp_path / "b")
    assert a == b
    assert (tmp_path / "a" / "rgb" / "000002.png").read_bytes() == (tmp_path / "b" / "rgb" / "000002.png").read_bytes()
    other = write_synthetic(SynthConfig(seed=12, frames=3, width=64, height=48), tmp_path / "c")
    assert other["objects"] != a["objects"]


def test_walk_trajectory_and_bad_settings():
    walk = build_synthetic(SynthConfig(seed=2, frames=5, width=64, height=48, trajectory="walk"))
    steps = np.linalg.norm(np.diff(walk.scene.poses[:, :3, 3], axis=0), axis=1)
    assert (steps > 0).all()
    with pytest.raises(SceneError):
        SynthConfig(trajectory="fly")
    with pytest.raises(SceneError):
        SynthConfig(frames=0)


def test_visible_spans_split_at_gaps():
    timestamps = np.arange(10) * 0.5
    assert visible_spans([0, 1, 2, 5, 6, 9], timestamps) == [[0.0, 1.0], [2.5, 3.0], [4.5, 4.5]]


def test_missing_ground_truth_is_a_clear_error(tmp_path):
    with pytest.raises(SceneError, match="gt.json"):
        load_ground_truth(tmp_path)
