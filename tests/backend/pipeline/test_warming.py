"""Idle-time work: after a query the scene's key-frame views are encoded one at a time (so a query
about another object finds them cached), the job threads run it only while no job waits, and a
query's answer is the same whether the views were warmed or not."""

import threading
import time

import numpy as np
import pytest

from scene_r1.backend.geometry.keyframes import KeyFrameSettings, key_frame_views
from scene_r1.backend.models.loading import ModelError
from scene_r1.backend.pipeline.cache import scene_key
from scene_r1.backend.service.jobs import JobRunner, QueryJob


def test_idle_work_runs_while_no_job_waits_and_stops_for_a_job():
    ran, answered = [], threading.Event()
    units = iter(range(1000))

    def idle():
        ran.append(next(units))
        time.sleep(0.01)
        return True  # always more to do: only a job may interrupt it

    runner = JobRunner(lambda job, progress: answered.set() or ({"ok": True}, {}), threads=1, idle=idle)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while len(ran) < 5:
            assert time.monotonic() < deadline, "the idle work never ran"
            time.sleep(0.01)
        runner.submit(QueryJob([b"client"], "q1", "scene", "ask", "how many?", {}))
        assert answered.wait(10), "a job waited behind the idle work"
    finally:
        runner.stop()
    route, message = runner.outbox.get(timeout=10)
    assert message.type == "result" and route == [b"client"]


def test_failing_idle_work_does_not_take_the_worker_down():
    def idle():
        raise RuntimeError("broken")

    done = threading.Event()
    runner = JobRunner(lambda job, progress: done.set() or ({}, {}), threads=1, idle=idle)
    runner.start()
    try:
        runner.submit(QueryJob([b"c"], "q", "scene", "ask", "x", {}))
        assert done.wait(10)
    finally:
        runner.stop()


def test_quiet_time_work_runs_once_after_a_quiet_spell_and_never_delays_a_job():
    """The server gives freed memory back when no job has come for a while: once per quiet spell,
    after the idle work, and a job that arrives meanwhile is taken at once."""
    quiet, answered = [], threading.Event()
    runner = JobRunner(
        lambda job, progress: answered.set() or ({}, {}), threads=1, quiet=lambda: quiet.append(1), quiet_after_s=0.2
    )
    runner.start()
    try:
        runner.submit(QueryJob([b"c"], "q", "scene", "ask", "x", {}))
        assert answered.wait(10)
        deadline = time.monotonic() + 10
        while not quiet:
            assert time.monotonic() < deadline, "the quiet-time work never ran"
            time.sleep(0.05)
        time.sleep(0.6)  # three more quiet spells' worth: it ran once, then the runner waits for a job
        assert quiet == [1]
        answered.clear()
        runner.submit(QueryJob([b"c"], "q2", "scene", "ask", "x", {}))
        assert answered.wait(10)
    finally:
        runner.stop()


@pytest.fixture(scope="module")
def warm_pipeline():
    from scene_r1.backend.models.segmenters import MobileSamSettings, MobileSamTracker
    from scene_r1.backend.pipeline.pipeline import Pipeline
    from scene_r1.backend.pipeline.settings import PipelineSettings

    try:
        tracker = MobileSamTracker(MobileSamSettings(key_frames=KeyFrameSettings(candidates=3)))
    except ModelError as error:
        pytest.skip(f"MobileSAM is not installed here: {error}")
    return Pipeline(PipelineSettings(), tracker=tracker)


def test_after_a_query_every_key_frame_view_gets_encoded_once(warm_pipeline, synthetic):
    scene, pipeline = synthetic.scene, warm_pipeline
    model = pipeline.tracker.model
    assert pipeline.warm_step() is False  # no query yet: nothing to warm
    first = pipeline.lift(scene, 0, [40, 30, 100, 90])
    views = key_frame_views(scene.poses, pipeline.tracker.settings.key_frames)
    assert len(views) >= 2
    for _ in range(len(views) + 1):
        if not pipeline.warm_step():
            break
    assert pipeline.warmer.pending == 0
    encoded = model.encoded
    with pipeline.cache.for_scene(scene_key(scene)):  # every view is now served from the scene's cache
        for index in views:
            model.set_frame(index, scene.frame(index).rgb)
    assert model.encoded == encoded
    again = pipeline.lift(scene, 0, [40, 30, 100, 90])
    assert np.array_equal(again.instances[0].mask3d.points, first.instances[0].mask3d.points)


def test_the_frames_asked_for_a_box_snap_to_a_nearby_view_and_stay_spread(warm_pipeline, synthetic, tiny_models):
    """So a query about another object reuses the embeddings (and vision features) of earlier ones;
    a pick with no view within half the picks' spacing stays where it was."""
    from scene_r1.backend.models.reasoner import Reasoner, VLMSettings

    scene, pipeline = synthetic.scene, warm_pipeline
    pipeline._reasoner = Reasoner(VLMSettings(model=str(tiny_models["vlm"]), dtype="float32", max_new_tokens=16))
    pipeline.warmer.remember(scene, pipeline.tracker)
    pipeline.warmer.views = [5]  # 12 frames, 3 picks (3, 6, 8), half their spacing 1.5 frames
    span = (float(scene.timestamps[0]), float(scene.timestamps[-1]))
    with pipeline.cache.for_scene(scene_key(scene)):
        _, _, candidates = pipeline._key_frame(scene, "the large cube", span, False, lambda *a: None, None)
    assert sorted(candidates) == [3, 5, 8]


def test_a_scene_grounded_by_its_candidates_is_not_warmed(warm_pipeline, tiny_models, tmp_path):
    """Choosing among a capture's objects never runs the segmenter: encoding its views would be waste."""
    from scene_r1.backend.data import open_scene
    from scene_r1.backend.data.synth.household_scene import HouseholdConfig, write_household
    from scene_r1.backend.models.reasoner import Reasoner, VLMSettings

    write_household(HouseholdConfig(seed=4, frames=6, width=96, height=72), tmp_path / "room")
    scene, pipeline = open_scene(tmp_path / "room"), warm_pipeline
    pipeline.warmer.forget(pipeline.warmer.key)
    pipeline._chooser = Reasoner(VLMSettings(model=str(tiny_models["vlm"]), dtype="float32", max_new_tokens=16))
    result = pipeline.ground(scene, "the chair")
    assert result.stages["grounding"]["mode"] == "candidates"
    assert pipeline.warmer.pending == 0 and pipeline.warmer.key == ""
