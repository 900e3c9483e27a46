"""Household rooms: composed objects, both naming styles, a candidate table the expressions agree with."""

import json

import numpy as np
import pytest

from scene_r1.backend.data import open_scene
from scene_r1.backend.data.synth.household import KINDS, build_mesh
from scene_r1.backend.data.synth.household_scene import HouseholdConfig, build_household, write_household
from scene_r1.shared.candidates import class_words
from scene_r1.shared.scene import SceneError

SMALL = dict(frames=6, width=128, height=96)


@pytest.mark.parametrize("word", sorted(KINDS))
def test_every_kind_builds_on_the_floor(word):
    mesh = build_mesh(word, 1.0, np.random.default_rng(0))
    vertices = np.asarray(mesh.vertices)
    assert len(mesh.triangles) > 0 and abs(vertices[:, 2].min()) < 1e-6 and vertices[:, 2].max() > 0.02


def test_names_as_artists_leave_them():
    assert class_words("Coffee_Mug.001") == ("coffee mug",)
    assert class_words("FloorLamp") == ("floor lamp",)
    assert class_words("Cube.003") == () and class_words("Material.002") == ()


def test_same_seed_same_room_and_both_naming_styles():
    one = build_household(HouseholdConfig(seed=5, naming="generic", **SMALL))
    two = build_household(HouseholdConfig(seed=5, naming="generic", **SMALL))
    assert one.scene.candidates.to_text() == two.scene.candidates.to_text()
    meaningful = build_household(HouseholdConfig(seed=5, naming="meaningful", **SMALL)).scene.candidates
    assert all(not c.classes for c in one.scene.candidates.candidates)
    assert all(c.classes for c in meaningful.candidates)
    assert any(c.name.startswith(("Cube", "Cylinder", "Sphere")) for c in one.scene.candidates.candidates)
    with pytest.raises(SceneError, match="naming"):
        HouseholdConfig(naming="fancy")


def test_written_room_carries_its_candidates_and_expressions_name_their_targets(tmp_path):
    gt = write_household(HouseholdConfig(seed=11, **SMALL), tmp_path / "room")
    scene = open_scene(tmp_path / "room")
    assert scene.has_instances and scene.candidates is not None
    assert sorted(scene.candidates.ids) == sorted(o["id"] for o in gt["objects"])
    instance_ids = set(np.unique(np.concatenate([np.unique(scene.instance(i)) for i in range(len(scene))])))
    assert instance_ids - {0} <= set(scene.candidates.ids)
    classes = {o["id"]: o["class"] for o in gt["objects"]}
    assert gt["queries"] and gt["qa"]
    for query in gt["queries"]:
        same_class = [i for i, c in classes.items() if c == classes[query["target_ids"][0]]]
        assert query["unique"] == (len(same_class) == 1) or query["kind"] == "all"
        if query["kind"] == "all":
            assert sorted(query["target_ids"]) == sorted(same_class) and len(same_class) >= 2
    counts = [q for q in gt["qa"] if q["kind"] == "count"]
    for question in counts:
        word = next(w for w, k in KINDS.items() if f" {k.plural} " in question["question"])
        assert int(question["answer"]) == sum(c == word for c in classes.values())
    json.dumps(gt)
