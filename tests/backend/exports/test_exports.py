"""Exports read back by independent readers: trimesh and Open3D (GLB), pxr (USDZ), pycocotools
(COCO), our ScanNet reader and trimesh's PLY reader (ScanNet files)."""

import json

import numpy as np
import pytest

from scene_r1.backend.data import open_scene
from scene_r1.backend.data.synth import load_ground_truth
from scene_r1.backend.exports import LabelledObject, export_scan, read_result
from scene_r1.backend.exports.bundle import assign_vertices, fuse_for_export
from scene_r1.backend.exports.objects import linear_colors, usd_problems
from scene_r1.backend.exports.scannet import read_scannet
from scene_r1.backend.geometry.mask3d import lift_from_box
from scene_r1.backend.geometry.upright import scan_up
from scene_r1.backend.pipeline.results import masks_to_rle, write_result
from scene_r1.shared.results import Instance, QueryResult


@pytest.fixture(scope="module")
def labelled(synthetic_folder, tmp_path_factory):
    """Two objects of the synthetic room, lifted from their ground-truth boxes on their best frame
    (the box-prompt path), with per-frame masks from the instance maps; exported once."""
    scene, truth = open_scene(synthetic_folder), load_ground_truth(synthetic_folder)
    small = [o for o in truth["objects"] if o["pixels"] and o["category"] == "object"]
    seen = sorted(small, key=lambda o: -max(o["pixels"].values()))[:2]
    objects = []
    for obj in seen:
        frame = max(obj["pixels"], key=obj["pixels"].get)
        mask = lift_from_box(scene, int(frame), obj["boxes"][frame])
        masks = {i: scene.instance(i) == obj["id"] for i in range(len(scene))}
        objects.append(LabelledObject(obj["shape"], mask.mean_confidence, mask.points, masks_to_rle(masks)))
    fused = fuse_for_export(scene)
    out = tmp_path_factory.mktemp("export")
    manifest = export_scan(scene, objects, out, classes=[o["shape"] for o in seen], fused=fused)
    return scene, seen, objects, fused, out, manifest


def test_glb_opens_in_trimesh_and_open3d(labelled):
    import open3d as o3d
    import trimesh

    scene, seen, objects, fused, out, manifest = labelled
    ids = assign_vertices(fused.mesh_vertices, objects)
    for number, (obj, entry) in enumerate(zip(seen, manifest["objects"]), 1):
        mesh = trimesh.load(out / entry["glb"], force="mesh", process=False)
        assert len(mesh.faces) == entry["faces"] > 20
        assert mesh.visual.vertex_colors.shape[0] == len(mesh.vertices)
        # glTF's COLOR_0 is linear: the scan's (sRGB) colours are converted, not copied
        linear = mesh.visual.vertex_colors[:, :3].mean(axis=0) / 255
        srgb = fused.mesh_colors[ids == number].mean(axis=0)
        assert np.allclose(linear, linear_colors(srgb[None])[0], atol=0.08) and linear.mean() < srgb.mean()
        # Upright, base at the origin, and the object's size (a few cm of fusion slack)
        low, high = mesh.bounds
        assert abs(low[1]) < 1e-5 and np.allclose([low[0] + high[0], low[2] + high[2]], 0, atol=1e-5)
        size = np.diff(np.array(obj["aabb"]), axis=0)[0]
        assert abs((high - low)[1] - size[2]) < 0.06  # the room is z-up; glTF is y-up
        # Placed back with object_to_world, the mesh sits inside the object's true box
        world = np.c_[mesh.vertices, np.ones(len(mesh.vertices))] @ np.array(entry["object_to_world"]).T
        aabb = np.array(obj["aabb"])
        assert ((world[:, :3] > aabb[0] - 0.05) & (world[:, :3] < aabb[1] + 0.05)).all(axis=1).mean() > 0.95
        legacy = o3d.io.read_triangle_mesh(str(out / entry["glb"]))
        assert len(legacy.triangles) == entry["faces"]


def test_usdz_opens_in_pxr_and_passes_the_checker(labelled):
    from pxr import Usd, UsdGeom

    *_, out, manifest = labelled
    for entry in manifest["objects"]:
        stage = Usd.Stage.Open(str(out / entry["usdz"]))
        assert UsdGeom.GetStageUpAxis(stage) == UsdGeom.Tokens.y and UsdGeom.GetStageMetersPerUnit(stage) == 1.0
        meshes = [UsdGeom.Mesh(p) for p in stage.Traverse() if p.IsA(UsdGeom.Mesh)]
        assert len(meshes) == 1 and len(meshes[0].GetFaceVertexCountsAttr().Get()) == entry["faces"]
        colours = UsdGeom.PrimvarsAPI(meshes[0]).GetPrimvar("displayColor").Get()
        assert len(colours) == len(meshes[0].GetPointsAttr().Get())
        assert entry["usd_problems"] == [] and usd_problems(out / entry["usdz"]) == []


def test_the_usd_checker_can_fail(tmp_path):
    from pxr import Usd, UsdGeom

    stage = Usd.Stage.CreateNew(str(tmp_path / "bare.usda"))
    UsdGeom.Mesh.Define(stage, "/Mesh")
    stage.Save()
    problems = usd_problems(tmp_path / "bare.usda")
    assert any("defaultPrim" in p for p in problems) and any("upAxis" in p for p in problems)


def test_scannet_files_read_back(labelled):
    import trimesh

    scene, seen, objects, fused, out, manifest = labelled
    labels = read_scannet(out / "scannet", scene.name)
    expected = assign_vertices(fused.mesh_vertices, objects)
    assert np.array_equal(labels.instance_ids, expected) and (expected > 0).sum() > 50
    assert labels.labels == {k + 1: o.label for k, o in enumerate(objects)}
    ply = trimesh.load(out / manifest["files"]["scannet"]["labels"], process=False)
    raw = ply.metadata["_ply_raw"]["vertex"]["data"]
    class_ids = manifest["class_ids"]
    truth = np.array([0] + [class_ids[o.label] for o in objects])[expected]
    assert len(ply.vertices) == len(fused.mesh_vertices) and np.array_equal(raw["label"], truth)


def test_coco_reads_back_with_pycocotools(labelled):
    from pycocotools.coco import COCO

    scene, seen, objects, fused, out, manifest = labelled
    coco = COCO(str(out / manifest["files"]["coco"]))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == [o["shape"] for o in seen]
    annotations = coco.loadAnns(coco.getAnnIds())
    assert len(annotations) == sum(len(o.masks_2d) for o in objects)
    for annotation in annotations[:10]:
        image = coco.loadImgs(annotation["image_id"])[0]
        truth = scene.instance(image["frame"]) == seen[annotation["object_id"]]["id"]
        assert np.array_equal(coco.annToMask(annotation).astype(bool), truth)
        assert (out / image["file_name"]).is_file()


def test_result_folder_round_trip(labelled, synthetic_folder, tmp_path):
    scene, seen, objects, fused, out, manifest = labelled
    points = objects[0].points
    result = QueryResult(query="all the cubes", scene=scene.name, key_frame=0)
    from scene_r1.shared.results import Mask3D

    mask = Mask3D(
        points,
        np.full(len(points), 0.75, np.float32),
        np.stack([points.min(0), points.max(0)]),
        points.mean(0),
        np.ones(3),
        np.eye(3),
    )
    result.instances = [
        Instance("cube", [0, 0, 5, 5], error="tracking: nothing"),
        Instance("cube", [1, 2, 3, 4], objects[0].masks_2d, mask),
    ]
    write_result(result, tmp_path / "r")
    back = read_result(tmp_path / "r")
    assert len(back.lifted) == 1 and back.lifted[0].label == "cube"
    assert np.allclose(back.lifted[0].mask3d.points, points, atol=1e-6)
    assert back.lifted[0].masks_2d.keys() == objects[0].masks_2d.keys()
    # `scene-r1 export` with the scan the result came from, and refused with another one
    from scene_r1.backend.cli.main import main

    folder = synthetic_folder
    assert main(["export", str(folder), "--result", str(tmp_path / "r"), "--out", str(tmp_path / "e")]) == 0
    result.scene = "another-scan"  # a renamed folder: its masks fit, so it is exported with a note
    write_result(result, tmp_path / "other")
    assert main(["export", str(folder), "--result", str(tmp_path / "other"), "--out", str(tmp_path / "f")]) == 0
    result.instances[1].masks_2d = {len(scene) + 3: next(iter(objects[0].masks_2d.values()))}
    write_result(result, tmp_path / "elsewhere")  # masks on frames this scan lacks: refused
    assert main(["export", str(folder), "--result", str(tmp_path / "elsewhere"), "--out", str(tmp_path / "g")]) == 2


def test_scan_up_finds_the_synthetic_rooms_z(labelled):
    scene = labelled[0]
    assert np.allclose(scan_up(scene.poses), [0, 0, 1])
    assert json.loads((labelled[4] / "export.json").read_text())["objects"][0]["label"] == labelled[1][0]["shape"]


def test_scan_up_of_a_phone_held_in_portrait(labelled):
    """A portrait capture stored in the sensor's landscape frames: image-right points up or down and
    image-down stays level. The synthetic room's cameras turned a quarter either way must keep z up,
    and the same capture in an ARKit world (y up) must give y."""
    poses = np.asarray(labelled[0].poses, np.float64)
    for turn in (1, -1):
        roll = np.eye(4)
        roll[:2, :2] = [[0, -turn], [turn, 0]]  # a quarter turn about the optical axis
        portrait = poses @ roll
        assert np.allclose(scan_up(portrait), [0, 0, 1]), turn
        z_up_to_y_up = np.eye(4)
        z_up_to_y_up[1:3, 1:3] = [[0, 1], [-1, 0]]  # world z -> world y
        assert np.allclose(scan_up(z_up_to_y_up @ portrait), [0, 1, 0]), turn


def test_scan_up_on_the_real_kitchen_is_the_floor_normal(real_sequence):
    """7-Scenes' world is not gravity-aligned and its camera looks down at a table: the scan's up
    must still be the floor's normal (the biggest plane of the first frame, found by RANSAC)."""
    import open3d as o3d

    from scene_r1.shared.geometry import backproject_depth

    scene = open_scene(real_sequence)
    frame = scene.frame(0)
    points, _ = backproject_depth(frame.depth, frame.depth_intrinsics, frame.pose)
    o3d.utility.random.seed(0)
    plane, _ = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points)).segment_plane(0.02, 3, 500)
    normal = np.array(plane[:3]) / np.linalg.norm(plane[:3])
    angle = np.degrees(np.arccos(abs(float(normal @ scan_up(scene.poses)))))
    assert angle < 5.0


def test_a_hostile_scene_name_stays_inside_the_export_folder(labelled, tmp_path):
    scene, seen, objects, fused, out, manifest = labelled
    written = export_scan(scene, objects[:1], tmp_path / "out", fused=fused, formats=("scannet",), name="../../escape")
    assert written["scene"] == "escape" and not (tmp_path / "escape.aggregation.json").exists()
    assert (tmp_path / "out" / "scannet" / "escape.aggregation.json").is_file()


def test_an_object_found_twice_is_exported_once_in_every_format(labelled, tmp_path):
    """The same object labelled under two classes: the more confident keeps the scan's vertices, and
    the other is in neither ScanNet's groups nor COCO (it was in COCO, under its second class)."""
    from pycocotools.coco import COCO

    scene, seen, objects, fused, out, manifest = labelled
    twice = [objects[0], LabelledObject("lookalike", objects[0].score - 0.1, objects[0].points, objects[0].masks_2d)]
    manifest = export_scan(scene, twice, tmp_path, classes=[seen[0]["shape"], "lookalike"], fused=fused)
    assert [o.get("duplicate", False) for o in manifest["objects"]] == [False, True]
    assert manifest["objects"][1]["vertices"] == 0 < manifest["objects"][0]["vertices"]
    coco = COCO(str(tmp_path / manifest["files"]["coco"]))
    labels = {coco.cats[a["category_id"]]["name"] for a in coco.anns.values()}
    assert labels == {seen[0]["shape"]}
    assert read_scannet(tmp_path / "scannet", manifest["scene"]).labels == {1: seen[0]["shape"]}


def test_the_scan_mesh_is_the_same_whatever_was_found(labelled, tmp_path):
    """ScanNet's files of two labellings of one scan share their mesh (vertex ids are comparable);
    its depth range came from the objects found, so the mesh changed with the class list."""
    scene, seen, objects, fused, out, manifest = labelled
    one = export_scan(scene, objects[:1], tmp_path / "one", formats=("scannet",))
    two = export_scan(scene, objects, tmp_path / "two", formats=("scannet",))
    mesh = one["files"]["scannet"]["mesh"]
    assert (tmp_path / "one" / mesh).read_bytes() == (tmp_path / "two" / two["files"]["scannet"]["mesh"]).read_bytes()
