"""GRPO (and the SFT warm start) on the tiny model over synthetic records, on CPU."""
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from scene_r1.backend.cli import main
from scene_r1.backend.pipeline import Pipeline, PipelineSettings
from scene_r1.backend.synth import SynthConfig, write_synthetic
from scene_r1.backend.training.records import as_dataset, model_input_size, RecordSettings
from scene_r1.backend.training.train import TrainSettings, train


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-scenes")
    for seed in (61, 62):
        write_synthetic(SynthConfig(seed=seed, frames=8, width=112, height=84), root / f"room-{seed}")
    return root


def test_records_carry_labels_in_2d_and_text_only(scenes):
    image = as_dataset(scenes, "image")
    record = image[0]
    assert record["task"] == "image" and len(record["images"]) == 1 and len(record["box"]) == 4
    assert record["model_size"] == list(model_input_size(112, 84, RecordSettings()))
    temporal = as_dataset(scenes, "temporal")[0]
    assert len(temporal["images"]) == 8 and temporal["spans"] and "frames of the video at 0.0" in temporal["prompt"][0]["content"][-1]["text"]
    vqa = as_dataset(scenes, "vqa")[0]
    assert vqa["answers"] and vqa["solution"].startswith("<think>")
    assert not any("aabb" in key or "points" in key for key in list(record) + list(temporal) + list(vqa))


def test_grpo_steps_change_the_weights_log_every_reward_and_save_a_loadable_model(tiny_models, scenes, tmp_path):
    before = load_file(str(tiny_models["vlm"] / "model.safetensors"))
    settings = TrainSettings(task="image", model=str(tiny_models["vlm"]), data=str(scenes), out=str(tmp_path / "run"), sft_steps=2, grpo_steps=3,
                             learning_rate=5e-3, sft_learning_rate=5e-3, batch_size=2, num_generations=4, max_completion_length=24, use_cpu=True,
                             save_steps=2)
    final = train(settings)
    after = load_file(str(final / "model.safetensors"))
    changed = [k for k in before if k in after and not torch.equal(before[k], after[k])]
    assert len(changed) > len(before) // 2
    curves = json.loads((tmp_path / "run" / "reward_curves.json").read_text())
    assert {"rewards/format/mean", "rewards/box_iou/mean"} <= set(curves) and len(curves["rewards/format/mean"]) == 3
    sft_log = [json.loads(line) for line in (tmp_path / "run" / "sft" / "log.jsonl").read_text().splitlines()]
    assert any("loss" in entry for entry in sft_log)
    assert any((tmp_path / "run" / "grpo").glob("checkpoint-*"))  # resumable
    # the pipeline loads the trained model through the same from_pretrained path
    pipeline = Pipeline(PipelineSettings(vlm=str(final), tracker="geometric", dtype="float32", max_new_tokens=8, video_frames=4, video_as_images=True))
    from scene_r1.backend.io import open_scene

    result = pipeline.ask(open_scene(next(scenes.iterdir())), "How many cubes are there?")
    assert result.mode == "ask"


def test_train_cli_resumes_from_its_checkpoint(tiny_models, scenes, tmp_path):
    argv = ["train", "--task", "vqa", "--model", str(tiny_models["vlm"]), "--data", str(scenes), "--out", str(tmp_path / "run"),
            "--steps", "2", "--batch-size", "1", "--generations", "2", "--max-completion-length", "8", "--cpu", "--lr", "1e-3"]
    assert main(argv) == 0
    assert any((tmp_path / "run" / "grpo").glob("checkpoint-2"))

    def steps():
        log = [json.loads(line) for line in (tmp_path / "run" / "grpo" / "log.jsonl").read_text().splitlines()]
        return {e["step"]: e for e in log if "rewards/answer_match/mean" in e}

    first = steps()
    assert main(argv[:argv.index("--steps") + 1] + ["3"] + argv[argv.index("--steps") + 2:]) == 0
    second = steps()
    assert sorted(second) == [1, 2, 3]
    assert second[1] == first[1] and second[2] == first[2]  # restored from the checkpoint (their timings too), not run again
