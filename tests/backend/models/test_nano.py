"""The shipped scene-r1-nano: loaded through from_pretrained like any checkpoint, asked as it was
trained (its scene_r1.json), on a held-out room (a seed never used in training)."""

import json
from pathlib import Path

import pytest

from scene_r1.backend.data import open_scene
from scene_r1.backend.data.synth import SynthConfig, write_synthetic
from scene_r1.backend.models.loading import SHIPPED_NANO
from scene_r1.backend.pipeline.pipeline import Pipeline
from scene_r1.backend.pipeline.settings import PipelineSettings

pytestmark = pytest.mark.skipif(
    not (SHIPPED_NANO / "model.safetensors").exists(), reason="models/scene-r1-nano is not in this checkout"
)


@pytest.fixture(scope="module")
def held_out_room(tmp_path_factory):
    recipe = json.loads((SHIPPED_NANO / "recipe.json").read_text())
    seed = recipe["held_out_seeds"][0]
    assert not recipe["train_seeds"][0] <= seed < recipe["train_seeds"][1]
    folder = tmp_path_factory.mktemp("held-out") / f"room-{seed}"
    write_synthetic(
        SynthConfig(seed=seed, frames=recipe["frames"], width=recipe["width"], height=recipe["height"]), folder
    )
    return folder


@pytest.fixture(scope="module")
def nano():
    return Pipeline(PipelineSettings(vlm=str(SHIPPED_NANO), tracker="geometric", dtype="float32"))


def test_nano_is_a_small_qwen2_5_vl_asked_as_it_was_trained(nano):
    reasoner = nano.reasoner
    assert reasoner.model.config.model_type == "qwen2_5_vl"
    assert reasoner.settings.video_as_images and reasoner.settings.video_frames == 8
    assert sum(p.numel() for p in reasoner.model.parameters()) < 8_000_000  # 9 MB of float32


def test_nano_answers_each_kind_of_question_with_the_right_kind_of_answer(nano, held_out_room):
    """What SFT and GRPO taught it for sure: the form of each answer (its accuracy is in the model card)."""
    scene, truth = open_scene(held_out_room), json.loads((held_out_room / "gt.json").read_text())
    kinds = {"count": lambda a: a.isdigit(), "relation": lambda a: a in ("yes", "no")}
    asked = 0
    for qa in truth["qa"]:
        if qa["kind"] in kinds and asked < 6:
            result = nano.ask(scene, qa["question"])
            assert kinds[qa["kind"]](result.answer.strip().lower()), (qa, result.answer)
            assert result.stages["answer"]["reasoning"]
            asked += 1
    assert asked >= 4


def test_nano_grounds_with_a_span_and_a_box_in_the_frame(nano, held_out_room):
    scene, truth = open_scene(held_out_room), json.loads((held_out_room / "gt.json").read_text())
    result = nano.ground(scene, truth["queries"][0]["text"])
    start, end = result.stages["temporal"]["span"]
    assert 0 <= start < end <= scene.timestamps[-1] - scene.timestamps[0] + 1
    assert 0 <= result.key_frame < len(scene)
    assert "image" in result.stages and result.stages["image"]["answer"].startswith('{"bbox_2d"')


def test_a_pipeline_on_the_shipped_nano_chooses_candidates_with_nano_v2(tmp_path):
    """Nothing configured (the default VLM is not on this machine): the box path falls back to the shipped
    nano, and a scene that knows its objects is grounded by the shipped nano-v2 choosing among them."""
    from scene_r1.backend.data.synth.household_scene import HouseholdConfig, write_household
    from scene_r1.backend.models.loading import SHIPPED_NANO_CHOOSER

    if not (SHIPPED_NANO_CHOOSER / "model.safetensors").exists():
        pytest.skip("models/scene-r1-nano-v2 is not in this checkout")
    folder = tmp_path / "room"
    gt = write_household(HouseholdConfig(seed=50001, frames=12, width=256, height=192, naming="generic"), folder)
    scene = open_scene(folder)
    pipeline = Pipeline(PipelineSettings(tracker="geometric", dtype="float32"))
    result = pipeline.ground(scene, gt["queries"][0]["text"])
    assert any("scene-r1-nano-v2" in note for note in result.notes)
    assert result.stages["grounding"]["mode"] == "candidates" and "choose" in result.stages
    known = {c["id"] for c in json.loads((folder / "candidates.json").read_text())["candidates"]}
    chosen = result.stages["choose"].get("ids", [])
    assert chosen and set(chosen) <= known  # an answer of the right kind, constrained to the table's ids


def test_the_shipped_nano_named_by_a_relative_path_also_chooses_with_nano_v2(tmp_path, monkeypatch):
    """`--vlm models/scene-r1-nano` (relative, as the docs write it) is the shipped nano too: it chose
    candidates with itself, a model never trained to choose, and named one wrong object per class."""
    from scene_r1.backend.models.loading import SHIPPED_NANO_CHOOSER

    if not (SHIPPED_NANO_CHOOSER / "model.safetensors").exists():
        pytest.skip("models/scene-r1-nano-v2 is not in this checkout")
    monkeypatch.chdir(SHIPPED_NANO.parent.parent)
    relative = Path(SHIPPED_NANO.parent.name) / SHIPPED_NANO.name
    pipeline = Pipeline(PipelineSettings(vlm=str(relative), tracker="geometric", dtype="float32"))
    assert Path(pipeline.chooser.settings.model).resolve() == SHIPPED_NANO_CHOOSER.resolve()
    assert any("scene-r1-nano-v2" in note for note in pipeline.notes)
