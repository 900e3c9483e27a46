"""The viewer's Export with the scan at hand: the result's objects as GLB / USDZ, ScanNet's files and
COCO JSON beside the existing exports; and `scene-r1 export` on a result folder does the same."""

import json

import numpy as np
import pytest

from scene_r1.backend.cli.main import main
from scene_r1.backend.data import open_scene
from scene_r1.backend.exports.bundle import fuse_for_export
from scene_r1.backend.pipeline.pipeline import Pipeline
from scene_r1.backend.pipeline.results import write_result
from scene_r1.backend.pipeline.settings import PipelineSettings
from scene_r1.backend.viewer.logic import export_result
from scene_r1.shared.results import result_from_wire, result_to_wire


@pytest.fixture(scope="module")
def lifted(synthetic_folder):
    scene = open_scene(synthetic_folder)
    truth = json.loads((synthetic_folder / "gt.json").read_text())
    target = max(
        (o for o in truth["objects"] if o["pixels"] and o["category"] == "object"),
        key=lambda o: max(o["pixels"].values()),
    )
    frame = max(target["pixels"], key=target["pixels"].get)
    result = Pipeline(PipelineSettings(tracker="geometric")).lift(scene, int(frame), target["boxes"][frame])
    return scene, result_from_wire(*result_to_wire(result)), target


def test_viewer_export_adds_the_objects(lifted, tmp_path):
    import trimesh

    scene, result, target = lifted
    fused = fuse_for_export(scene)
    paths = export_result(
        tmp_path, scene.name, fused.mesh_vertices, fused.mesh_colors, result, scene=scene, fused=fused
    )
    manifest = json.loads(paths["objects"].read_text())
    (obj,) = manifest["objects"]
    mesh = trimesh.load(tmp_path / "objects" / obj["glb"], force="mesh", process=False)
    height = mesh.bounds[1][1] - mesh.bounds[0][1]
    assert len(mesh.faces) == obj["faces"] > 0 and abs(height - np.diff(target["aabb"], axis=0)[0][2]) < 0.06
    assert obj["usd_problems"] == [] and (tmp_path / "objects" / manifest["files"]["coco"]).is_file()


def test_export_command_on_a_result_folder(lifted, synthetic_folder, tmp_path, capsys):
    scene, result, _ = lifted
    write_result(result, tmp_path / "result")
    out = tmp_path / "exports"
    assert (
        main(
            [
                "export",
                str(synthetic_folder),
                "--result",
                str(tmp_path / "result"),
                "--out",
                str(out),
                "--formats",
                "glb,scannet",
            ]
        )
        == 0
    )
    manifest = json.loads((out / "export.json").read_text())
    assert (out / manifest["objects"][0]["glb"]).is_file() and "usdz" not in manifest["objects"][0]
    assert "object 0" in capsys.readouterr().out
    assert main(["export", str(synthetic_folder), "--result", str(tmp_path), "--out", str(out)]) == 2
    assert "result.json" in capsys.readouterr().err
