"""Candidate records made as the pipeline asks, the id-match reward, and the SFT + GRPO loop."""

import json

import pytest

from scene_r1.backend.training.candidate_records import (
    CandidateRecordSettings,
    read_candidate_records,
    write_candidate_records,
)
from scene_r1.backend.training.candidate_train import CandidateTrainSettings, reward, train_candidates
from scene_r1.backend.training.rewards import format_reward, id_reward

SMALL = CandidateRecordSettings(frames=4, width=128, height=96)


@pytest.fixture(scope="module")
def records_folder(tmp_path_factory):
    out = tmp_path_factory.mktemp("candidate-records")
    assert write_candidate_records(out, [20000, 20001], SMALL) > 20
    return out


def test_id_reward():
    assert id_reward("<think>the mug 3</think><answer>[3]</answer>", [3]) == 1.0
    assert id_reward("<answer>[3, 4]</answer>", [3, 5]) == pytest.approx(1 / 3)
    assert id_reward("<answer>the red one</answer>", [3]) == 0.0
    assert format_reward("<think>x</think><answer>[2]</answer>", "candidates") == 1.0
    assert format_reward("<think>x</think><answer>none</answer>", "candidates") == 0.5


def test_records_are_the_pipelines_prompts(records_folder):
    records = read_candidate_records(records_folder)
    tasks = {r["task"] for r in records}
    assert tasks == {"candidates", "candidate-vqa"}
    choose = next(r for r in records if r["task"] == "candidates")
    text = choose["prompt"][0]["content"][-1]["text"]
    assert "The answer is a JSON list of ids" in text and len(choose["images"]) == 1
    assert max(choose["images"][0].size) <= SMALL.image_side
    assert reward(choose["solution"], choose) == 1.5  # full format and the right ids
    naming = {r["scene"].rsplit("-", 1)[1] for r in records}
    assert naming == {"meaningful", "generic"}


def test_sft_then_grpo_writes_a_loadable_model(records_folder, tmp_path):
    from transformers import AutoModelForImageTextToText

    from scene_r1.backend.models.tiny import make_tiny_qwen2_5_vl

    records = read_candidate_records(records_folder)
    base = make_tiny_qwen2_5_vl(tmp_path / "init", corpus=[r["solution"] for r in records[:20]])
    settings = CandidateTrainSettings(
        records=str(records_folder),
        model=str(base),
        out=str(tmp_path / "run"),
        sft_seconds=0.01,
        grpo_seconds=0.01,
        batch_size=2,
        grpo_prompts=1,
        num_generations=2,
        max_completion_length=4,
        device="cpu",
        bf16=False,
        held_out=2,
    )
    final = train_candidates(settings, log=lambda _line: None)
    stages = [json.loads(line)["stage"] for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert stages[0] == "encode" and "sft-done" in stages and "grpo-done" in stages
    assert (tmp_path / "run" / "sft-final" / "config.json").exists()
    assert json.loads((final / "scene_r1.json").read_text())["video_as_images"] is True
    assert AutoModelForImageTextToText.from_pretrained(final).config.model_type == "qwen2_5_vl"


def test_nano_v2_recipe_builds_its_model_of_the_recipes_shape_then_trains_it(records_folder, tmp_path):
    from dataclasses import replace

    from transformers import AutoConfig

    from scene_r1.backend.training.nano_v2 import NanoV2Recipe, train_nano_v2

    small = dict(hidden=64, layers=1, vision_hidden=32, vision_depth=1, vocab_size=400, batch_size=2)
    recipe = replace(NanoV2Recipe(), **small, sft_seconds=0.01, grpo_seconds=0.01, grpo_prompts=1, num_generations=2)
    final = train_nano_v2(records_folder, tmp_path, recipe, device="cpu", log=lambda _line: None)
    assert json.loads((tmp_path / "recipe.json").read_text())["layers"] == 1
    config = AutoConfig.from_pretrained(tmp_path / "init")
    assert (config.text_config.hidden_size, config.text_config.num_hidden_layers) == (64, 1)
    assert config.vision_config.depth == 1 and (final / "config.json").exists()
