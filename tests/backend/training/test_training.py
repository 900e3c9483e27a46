"""GRPO (and the SFT warm start) on the tiny model over synthetic records, on CPU."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from scene_r1.backend.cli import main
from scene_r1.backend.data.synth import SynthConfig, write_synthetic
from scene_r1.backend.pipeline.pipeline import Pipeline
from scene_r1.backend.pipeline.settings import PipelineSettings
from scene_r1.backend.training.dataset import as_dataset
from scene_r1.backend.training.records import RecordSettings, model_input_size
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
    assert (
        len(temporal["images"]) == 8
        and temporal["spans"]
        and "frames of the video at 0.0" in temporal["prompt"][0]["content"][-1]["text"]
    )
    vqa = as_dataset(scenes, "vqa")[0]
    assert vqa["answers"] and vqa["solution"].startswith("<think>")
    assert not any("aabb" in key or "points" in key for key in list(record) + list(temporal) + list(vqa))


def test_several_tasks_interleave_in_one_dataset_and_each_view_of_an_object_is_a_record(scenes):
    mixed = as_dataset(scenes, "all")
    tasks = mixed["task"]
    assert set(tasks) == {"temporal", "image", "vqa"} and tasks[:3] == ["temporal", "image", "vqa"]
    singles = sum(len(as_dataset(scenes, t)) for t in ("temporal", "image", "vqa"))
    assert len(mixed) == singles
    image = next(r for r in mixed if r["task"] == "image")
    assert image["answers"] is None and len(image["box"]) == 4
    one_view = as_dataset(scenes, "image")
    three_views = as_dataset(scenes, "image", RecordSettings(image_views=3))
    assert len(one_view) < len(three_views) <= 3 * len(one_view)
    with pytest.raises(ValueError):
        as_dataset(scenes, "image,dance")


def test_one_run_trains_all_three_tasks_and_each_reward_scores_only_its_own(tiny_models, scenes, tmp_path):
    settings = TrainSettings(
        task="all",
        model=str(tiny_models["vlm"]),
        data=str(scenes),
        out=str(tmp_path / "run"),
        sft_steps=2,
        grpo_steps=2,
        learning_rate=5e-3,
        sft_learning_rate=5e-3,
        batch_size=3,
        num_generations=2,
        max_completion_length=16,
        use_cpu=True,
        save_steps=100,
    )
    final = train(settings)
    assert (final / "model.safetensors").exists()
    curves = json.loads((tmp_path / "run" / "reward_curves.json").read_text())
    assert {
        "rewards/format/mean",
        "rewards/temporal_iou/mean",
        "rewards/box_iou/mean",
        "rewards/answer_match/mean",
    } <= set(curves)


def test_grpo_steps_change_the_weights_log_every_reward_and_save_a_loadable_model(tiny_models, scenes, tmp_path):
    before = load_file(str(tiny_models["vlm"] / "model.safetensors"))
    settings = TrainSettings(
        task="image",
        model=str(tiny_models["vlm"]),
        data=str(scenes),
        out=str(tmp_path / "run"),
        sft_steps=2,
        grpo_steps=3,
        learning_rate=5e-3,
        sft_learning_rate=5e-3,
        batch_size=2,
        num_generations=4,
        max_completion_length=24,
        use_cpu=True,
        save_steps=2,
    )
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
    pipeline = Pipeline(
        PipelineSettings(
            vlm=str(final), tracker="geometric", dtype="float32", max_new_tokens=8, video_frames=4, video_as_images=True
        )
    )
    from scene_r1.backend.data import open_scene

    result = pipeline.ask(open_scene(next(scenes.iterdir())), "How many cubes are there?")
    assert result.mode == "ask"


def test_train_cli_resumes_from_its_checkpoint(tiny_models, scenes, tmp_path):
    argv = [
        "train",
        "--task",
        "vqa",
        "--model",
        str(tiny_models["vlm"]),
        "--data",
        str(scenes),
        "--out",
        str(tmp_path / "run"),
        "--steps",
        "2",
        "--batch-size",
        "1",
        "--generations",
        "2",
        "--max-completion-length",
        "8",
        "--cpu",
        "--lr",
        "1e-3",
    ]
    assert main(argv) == 0
    assert any((tmp_path / "run" / "grpo").glob("checkpoint-2"))

    def steps():
        log = [json.loads(line) for line in (tmp_path / "run" / "grpo" / "log.jsonl").read_text().splitlines()]
        return {e["step"]: e for e in log if "rewards/answer_match/mean" in e}

    first = steps()
    assert main(argv[: argv.index("--steps") + 1] + ["3"] + argv[argv.index("--steps") + 2 :]) == 0
    second = steps()
    assert sorted(second) == [1, 2, 3]
    assert (
        second[1] == first[1] and second[2] == first[2]
    )  # restored from the checkpoint (their timings too), not run again


def test_eval_writes_the_table_and_its_numbers_match_a_hand_computation(tiny_models, scenes, tmp_path):
    from scene_r1.backend.eval.evaluate import evaluate
    from scene_r1.backend.eval.metrics import box_iou_3d, temporal_iou

    pipeline = Pipeline(
        PipelineSettings(
            vlm=str(tiny_models["vlm"]), tracker="geometric", dtype="float32", max_new_tokens=12, video_frames=4
        )
    )
    report = evaluate(scenes, "ground", pipeline, tmp_path, limit=3)
    assert (tmp_path / "eval.md").read_text().startswith("# scene-r1 eval: ground") and (
        tmp_path / "eval.json"
    ).exists()
    rows = report["rows"]
    assert len(rows) == 6
    # by hand, one scene: the scores from gt.json and what the pipeline returned
    truth = json.loads((scenes / "room-61" / "gt.json").read_text())
    objects = {o["id"]: o for o in truth["objects"]}
    for row, query in zip([r for r in rows if r["scene"] == "room-61"], truth["queries"]):
        target = objects[query["target_id"]]
        if "error" in row:
            assert row["iou3d"] == row["temporal_iou"] == row["iou2d"] == 0.0
            continue
        assert row["temporal_iou"] == pytest.approx(max(temporal_iou(row["span"], s) for s in query["spans"]))
        expected3d = box_iou_3d(np.array(row["box_3d"]), np.array(target["aabb"])) if row["box_3d"] else 0.0
        assert row["iou3d"] == pytest.approx(expected3d)
    overall = report["summary"]["overall"]
    ious = [r["iou3d"] for r in rows]
    assert overall["acc@0.25"] == pytest.approx(np.mean([v >= 0.25 for v in ious])) and overall[
        "acc@0.5"
    ] == pytest.approx(np.mean([v >= 0.5 for v in ious]))
    assert overall["temporal_iou"] == pytest.approx(np.mean([r["temporal_iou"] for r in rows]))
    split = report["summary"]
    assert split["unique"]["queries"] + split["multiple"]["queries"] == 6
    vqa = evaluate(scenes, "vqa", pipeline, tmp_path / "vqa", limit=2)
    assert vqa["summary"]["overall"]["questions"] == 4
    assert vqa["summary"]["overall"]["exact_match"] == pytest.approx(np.mean([r["exact_match"] for r in vqa["rows"]]))


@pytest.fixture(scope="module")
def scannet_scan(tmp_path_factory):
    """A ScanNet-layout scan (SensReader export + 2D instance labels) written from a synthetic room,
    with ScanRefer, Multi3DRefer and ScanQA files in their published formats."""
    import cv2

    from scene_r1.backend.data.images import write_color, write_png16
    from scene_r1.backend.data.synth import build_synthetic

    root = tmp_path_factory.mktemp("scannet")
    scan = root / "scene0007_00"
    for sub in ("color", "depth", "pose", "intrinsic", "instance-filt"):
        (scan / sub).mkdir(parents=True)
    synthetic = build_synthetic(SynthConfig(seed=63, frames=8, width=112, height=84))
    k = np.eye(4)
    k[:3, :3] = synthetic.scene.intrinsics_at(0).matrix
    np.savetxt(scan / "intrinsic" / "intrinsic_color.txt", k)
    np.savetxt(scan / "intrinsic" / "intrinsic_depth.txt", k)
    for i in range(8):
        frame, number = synthetic.scene.frame(i), i * 10  # every 10th frame of a 30 fps scan
        write_color(scan / "color" / f"{number}.jpg", frame.rgb)
        write_png16(scan / "depth" / f"{number}.png", np.round(frame.depth * 1000).astype(np.uint16))
        np.savetxt(scan / "pose" / f"{number}.txt", frame.pose)
        cv2.imwrite(
            str(scan / "instance-filt" / f"{number}.png"), synthetic.scene.instance(i).astype(np.uint8)
        )  # value = object_id + 1
    target = max(synthetic.room.objects, key=lambda o: (synthetic.scene.instance(3) == o.id).sum())
    (root / "ScanRefer_filtered_val.json").write_text(
        json.dumps(
            [
                {
                    "scene_id": "scene0007_00",
                    "object_id": str(target.id - 1),
                    "object_name": target.shape,
                    "ann_id": "0",
                    "description": f"the {target.colour} {target.shape} in the room.",
                    "token": ["the"],
                },
                {
                    "scene_id": "scene0999_00",
                    "object_id": "3",
                    "object_name": "chair",
                    "ann_id": "0",
                    "description": "a scan we do not have",
                    "token": [],
                },
            ]
        )
    )
    (root / "multi3drefer_val.json").write_text(
        json.dumps(
            [
                {
                    "scene_id": "scene0007_00",
                    "object_ids": [target.id - 1],
                    "description": "it",
                    "eval_type": "st_w_d",
                    "ann_id": 1,
                }
            ]
        )
    )
    (root / "ScanQA_v1.0_val.json").write_text(
        json.dumps(
            [
                {
                    "scene_id": "scene0007_00",
                    "question_id": "q0",
                    "question": "What colour is it?",
                    "answers": [target.colour],
                    "object_ids": [target.id - 1],
                    "object_names": [target.shape],
                }
            ]
        )
    )
    return root, synthetic, target


def test_scannet_records_from_the_public_annotation_formats(scannet_scan):
    from scene_r1.backend.data.scannet import read_multi3drefer, read_scanqa, read_scanrefer
    from scene_r1.backend.data.synth.generate import visible_boxes
    from scene_r1.backend.training.scannet import scannet_records

    root, synthetic, target = scannet_scan
    refer = read_scanrefer(root / "ScanRefer_filtered_val.json")
    assert set(refer) == {"scene0007_00", "scene0999_00"} and refer["scene0007_00"][0]["object_ids"] == [target.id - 1]
    assert read_multi3drefer(root / "multi3drefer_val.json")["scene0007_00"][0]["eval_type"] == "st_w_d"
    image = list(scannet_records(root, "image", expressions=refer))
    assert len(image) == 1  # the scan we lack is skipped
    views = [
        (b[target.id][1], i, b[target.id][0])
        for i, b in enumerate(visible_boxes(synthetic.scene.instance(i), 50) for i in range(8))
        if target.id in b
    ]
    pixels, best, box = max(views)
    assert image[0]["box"] == pytest.approx(box)  # the box of the 2D label on the frame where it is seen most
    temporal = list(scannet_records(root, "temporal", expressions=refer))
    seen = sorted(i for _, i, _ in views)
    assert temporal[0]["spans"][0][0] == pytest.approx(seen[0] * 10 / 30) and temporal[0]["spans"][-1][
        1
    ] == pytest.approx(seen[-1] * 10 / 30)
    vqa = list(scannet_records(root, "vqa", answers=read_scanqa(root / "ScanQA_v1.0_val.json")))
    assert vqa[0]["answers"] == [target.colour]


def test_a_scannet_folder_is_streamed_by_train_data(scannet_scan):
    """`scene-r1 train --data DIR` on ScanNet scans with their annotation files: the same records."""
    from scene_r1.backend.data.scannet import read_multi3drefer, read_scanqa, read_scanrefer
    from scene_r1.backend.training.dataset import dataset_records
    from scene_r1.backend.training.scannet import is_scannet_dataset, scannet_records

    root, _, _ = scannet_scan
    assert is_scannet_dataset(root) and not is_scannet_dataset(root / "scene0007_00")
    streamed = list(dataset_records(root, "image,vqa"))
    expressions = read_scanrefer(root / "ScanRefer_filtered_val.json")
    for scene_id, entries in read_multi3drefer(root / "multi3drefer_val.json").items():  # both sets of expressions
        expressions.setdefault(scene_id, []).extend(entries)
    expected = list(scannet_records(root, "image", expressions=expressions))
    expected += list(scannet_records(root, "vqa", answers=read_scanqa(root / "ScanQA_v1.0_val.json")))
    assert [r["task"] for r in streamed] == [r["task"] for r in expected] == ["image", "image", "vqa"]
    assert [r.get("box") for r in streamed] == [r.get("box") for r in expected]
    assert streamed[-1]["answers"] == expected[-1]["answers"]


def test_train_nano_quick_runs_the_whole_recipe(tmp_path):
    """The nano recipe's shape (data, tokenizer, SFT then GRPO on the three tasks mixed) in seconds."""
    assert main(["train-nano", "--quick", "--out", str(tmp_path / "nano")]) == 0
    recipe = json.loads((tmp_path / "nano" / "recipe.json").read_text())
    assert recipe["sft_steps"] == 20 and (tmp_path / "nano" / "sft-final" / "config.json").exists()
    curves = json.loads((tmp_path / "nano" / "run" / "reward_curves.json").read_text())
    assert {"rewards/temporal_iou/mean", "rewards/box_iou/mean", "rewards/answer_match/mean"} <= set(curves)
    pipeline = Pipeline(
        PipelineSettings(
            vlm=str(tmp_path / "nano" / "final"),
            tracker="geometric",
            dtype="float32",
            max_new_tokens=16,
            video_frames=8,
            video_as_images=True,
        )
    )
    from scene_r1.backend.data import open_scene

    held_out = next((tmp_path / "nano" / "data" / "held-out").iterdir())
    assert pipeline.ask(open_scene(held_out), "How many cubes are there?").mode == "ask"


def test_train_cli_refuses_an_unknown_task_before_loading_anything(tmp_path, capsys):
    assert (
        main(
            [
                "train",
                "--task",
                "image,dance",
                "--model",
                str(tmp_path / "none"),
                "--data",
                str(tmp_path),
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 2
    )
    assert "dance" in capsys.readouterr().err
