"""The model pipeline on CPU with tiny random-weight models loaded through from_pretrained.

Random weights give meaningless spans and boxes; these tests check the structure of what comes
back, the coordinate mapping, that every stage ran, and the stages after the model on ground truth.
"""

import json
import threading

import numpy as np
import pytest

from scene_r1.backend.cli import main
from scene_r1.backend.data.synth.generate import visible_boxes
from scene_r1.backend.eval.metrics import box_iou_3d
from scene_r1.backend.geometry.tracking import GeometricTracker
from scene_r1.backend.models.loading import ModelError
from scene_r1.backend.models.parsing import ParsedBox, parse_boxes
from scene_r1.backend.models.reasoner import Reasoner, VLMSettings, box_to_frame
from scene_r1.backend.models.sam2 import Sam2Settings, Sam2Tracker
from scene_r1.backend.pipeline.pipeline import Cancelled, Pipeline
from scene_r1.backend.pipeline.results import rle_to_mask, write_result
from scene_r1.backend.pipeline.settings import PipelineSettings


def test_tiny_models_are_the_real_classes(tiny_models, tiny_pipeline):
    assert tiny_pipeline.reasoner.model.config.model_type == "qwen2_5_vl"
    assert type(tiny_pipeline.reasoner.processor).__name__ == "Qwen2_5_VLProcessor"
    assert type(tiny_pipeline.tracker.model).__name__ == "Sam2VideoModel"
    assert (tiny_models["vlm"] / "chat_template.jinja").exists() or (
        tiny_models["vlm"] / "tokenizer_config.json"
    ).exists()


def test_image_grounding_maps_the_model_box_back_to_frame_pixels(tiny_pipeline, synthetic):
    reasoner = tiny_pipeline.reasoner
    rgb = synthetic.scene.frame(2).rgb  # 160x120
    generation, boxes = reasoner.image_grounding(rgb, "the large cube")
    resized = reasoner._grid
    assert resized[0] % 28 == 0 and resized[1] % 28 == 0 and resized != (160, 120)
    model_box = parse_boxes(generation.reply.answer)[0].box
    expected = np.clip(box_to_frame(model_box, "resized-pixels", resized, (160, 120)), 0, [160, 120, 160, 120])
    assert boxes[0].box == pytest.approx(tuple(expected))
    x1, y1, x2, y2 = boxes[0].box
    assert 0 <= x1 < x2 <= 160 and 0 <= y1 < y2 <= 120
    assert 0 < generation.confidence <= 1


def test_temporal_grounding_gives_a_span_inside_the_video(tiny_pipeline, synthetic):
    generation, (start, end) = tiny_pipeline.reasoner.temporal_grounding(synthetic.scene, "the chair")
    assert synthetic.scene.timestamps[0] <= start <= end <= synthetic.scene.timestamps[-1]
    assert generation.reply.text


def test_pipeline_runs_every_stage_and_returns_a_well_formed_result(tiny_pipeline, synthetic, tmp_path):
    stages = []
    result = tiny_pipeline.ground(
        synthetic.scene, "the small cube", progress=lambda stage, done, total: stages.append(stage)
    )
    assert list(dict.fromkeys(stages)) == ["temporal", "image", "tracking", "lifting"]
    assert set(result.stages) == {"temporal", "image", "tracking", "lifting"}
    assert "reasoning" in result.stages["image"] and result.stages["tracking"]["tracker"].startswith("sam2")
    start, end = result.span
    assert start - 1e-6 <= synthetic.scene.timestamps[result.key_frame] <= end + 1e-6 or result.stages["temporal"].get(
        "error"
    )
    assert len(result.instances) == 1
    instance = result.instances[0]
    assert result.stages["tracking"]["frames"] == len(synthetic.scene)  # SAM2 ran forwards and backwards over all
    assert all(rle["size"] == [120, 160] for rle in instance.masks_2d.values())  # random weights: maybe none
    assert set(result.timings) >= {"temporal", "image", "tracking", "lifting", "total", "model"}
    assert 0 < result.timings["model"] < result.timings["total"]
    written = write_result(result, tmp_path)
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert on_disk == json.loads(json.dumps(written)) and on_disk["key_frame"] == result.key_frame
    for frame, rle in on_disk["instances"][0]["masks_2d"].items():
        assert rle == instance.masks_2d[int(frame)] and rle_to_mask(rle).shape == (120, 160)


def test_track_and_lift_on_a_ground_truth_box_finds_the_object(tiny_pipeline, synthetic):
    """Stages 3-4 as wired in the pipeline, fed a right box (the geometric tracker: SAM2 here has random weights)."""
    pipeline = Pipeline(tiny_pipeline.settings, reasoner=tiny_pipeline.reasoner, tracker=GeometricTracker())
    boxes = [visible_boxes(synthetic.scene.instance(i), 20) for i in range(len(synthetic.scene))]
    obj = max(synthetic.room.objects, key=lambda o: max((b[o.id][1] for b in boxes if o.id in b), default=0))
    key = max((b[obj.id][1], i) for i, b in enumerate(boxes) if obj.id in b)[1]
    instances = pipeline.track_and_lift(synthetic.scene, key, [ParsedBox(tuple(boxes[key][obj.id][0]), obj.name)])
    assert instances[0].mask3d is not None and box_iou_3d(instances[0].mask3d.aabb, obj.aabb) > 0.5


def test_ask_answers_with_reasoning(tiny_pipeline, synthetic):
    result = tiny_pipeline.ask(synthetic.scene, "How many chairs are there?")
    assert result.mode == "ask" and result.answer and "answer" in result.stages
    assert result.to_json()["answer"] == result.answer


def test_cancel_stops_the_query(tiny_pipeline, synthetic):
    cancel = threading.Event()

    def progress(stage, done, total):
        if stage == "tracking":
            cancel.set()

    with pytest.raises(Cancelled):
        tiny_pipeline.ground(synthetic.scene, "the cube", progress=progress, cancel=cancel)
    tiny_pipeline.ground(synthetic.scene, "the cube")  # and it serves again


def test_sam2_memory_stays_bounded_on_long_scans(tiny_models, synthetic):
    tracker = Sam2Tracker(Sam2Settings(model=str(tiny_models["tracker"]), keep_frames=2))
    masks = tracker.track(synthetic.scene, 6, [40, 30, 100, 90])
    assert sorted(masks) == list(range(len(synthetic.scene)))
    assert tracker.peak_frames_held <= 3  # key frame + keep_frames, not the whole video


def test_missing_models_say_how_to_get_them(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match="(?s)Qwen/Not-A-Real-Model.*hf download"):
        Reasoner(VLMSettings(model="Qwen/Not-A-Real-Model"))
    with pytest.raises(ModelError, match="does not exist"):
        Reasoner(VLMSettings(model=str(tmp_path / "missing")))


def test_without_the_default_checkpoint_the_shipped_nano_model_answers_and_the_result_says_so(
    tiny_models, synthetic, monkeypatch, tmp_path
):
    import scene_r1.backend.pipeline.pipeline as pipeline_module

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(pipeline_module, "SHIPPED_NANO", tiny_models["vlm"])
    pipeline = Pipeline(PipelineSettings(tracker="geometric", dtype="float32", max_new_tokens=8, video_frames=4))
    assert pipeline.reasoner.settings.model == str(tiny_models["vlm"])
    assert any(
        "Qwen/Qwen2.5-VL-7B-Instruct is not on this machine" in note and "scene-r1-nano" in note
        for note in pipeline.notes
    )
    result = pipeline.ground(synthetic.scene, "the cube")  # random weights: whatever it finds, the note travels with it
    assert any("scene-r1-nano" in note for note in result.notes)
    # a model the user named is never swapped for another
    monkeypatch.setattr(pipeline_module, "SHIPPED_NANO", tmp_path / "no-nano")
    with pytest.raises(ModelError):
        _ = Pipeline(PipelineSettings(tracker="geometric")).reasoner
    with pytest.raises(ModelError):
        _ = Pipeline(PipelineSettings(vlm="Qwen/Not-A-Real-Model", tracker="geometric")).reasoner


def test_auto_segmenter_without_sam2_weights_falls_back_and_says_so(tiny_pipeline, monkeypatch, tmp_path):
    from scene_r1.backend.models import mobile_sam
    from scene_r1.backend.models.segmenters import MobileSamTracker

    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    pipeline = Pipeline(PipelineSettings(tracker="auto"), reasoner=tiny_pipeline.reasoner)
    assert isinstance(pipeline.tracker, MobileSamTracker)  # the next one down: MobileSAM
    assert "sam2.1-hiera-tiny" in pipeline.notes[0] and "segmenter: mobile_sam" in pipeline.notes

    monkeypatch.setattr(mobile_sam, "_candidates", lambda: [tmp_path / "mobile_sam.pt"])  # no checkpoint either
    pipeline = Pipeline(PipelineSettings(tracker="auto"), reasoner=tiny_pipeline.reasoner)
    assert isinstance(pipeline.tracker, GeometricTracker)
    assert "no MobileSAM here" in pipeline.notes[1] and "segmenter: geometric" in pipeline.notes


def test_cli_ground_and_ask(tiny_models, synthetic_folder, tmp_path, capsys):
    config = tmp_path / "scene-r1.toml"
    config.write_text(
        f'[pipeline]\nvlm = "{tiny_models["vlm"]}"\ntracker = "geometric"\ndtype = "float32"\n'
        "max_new_tokens = 12\nvideo_frames = 6\n"
    )
    code = main(
        ["ground", str(synthetic_folder), "all the cubes", "--out", str(tmp_path / "out"), "--config", str(config)]
    )
    assert code in (0, 3)  # 3: random boxes may hold nothing liftable; the result is still written
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["mode"] == "ground" and result["stages"]["tracking"]["tracker"] == "geometric"
    assert main(["ask", str(synthetic_folder), "What colour is the cube?", "--config", str(config)]) == 0
    assert "answer:" in capsys.readouterr().out
    config.write_text('[pipeline]\nvlm_model = "x"\n')
    assert main(["ask", str(synthetic_folder), "?", "--config", str(config)]) == 2


def test_a_model_folder_says_how_it_is_asked(tiny_models, tmp_path):
    import shutil

    from scene_r1.backend.models.reasoner import with_model_hints

    folder = tmp_path / "model"
    shutil.copytree(tiny_models["vlm"], folder)
    (folder / "scene_r1.json").write_text('{"video_as_images": true, "video_frames": 6, "unrelated": 1}')
    settings = with_model_hints(VLMSettings(model=str(folder)))
    assert settings.video_as_images and settings.video_frames == 6
    assert with_model_hints(VLMSettings(model="Qwen/Qwen2.5-VL-7B-Instruct")) == VLMSettings(
        model="Qwen/Qwen2.5-VL-7B-Instruct"
    )


def test_tiny_tokenizer_keeps_the_reasoning_tags_when_special_tokens_are_skipped(tiny_pipeline):
    """trl decodes completions with skip_special_tokens before the rewards see them."""
    tokenizer = tiny_pipeline.reasoner.tokenizer
    ids = tokenizer.encode("<think>a</think><answer>2s to 4s</answer><|im_end|>", add_special_tokens=False)
    assert tokenizer.decode(ids, skip_special_tokens=True) == "<think>a</think><answer>2s to 4s</answer>"
    assert len(tokenizer.encode("<think>", add_special_tokens=False)) == 1
