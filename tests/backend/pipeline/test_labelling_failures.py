"""`scene-r1 label`: a done scan is skipped only when it was labelled from the same scan with the same
settings; a failing scan is recorded and the others go on; "some scans failed" has its own exit status."""

import json
from dataclasses import replace

import pytest

from scene_r1.backend.cli.labelling import SCANS_FAILED
from scene_r1.backend.cli.main import main
from scene_r1.backend.data.synth import SynthConfig, write_synthetic
from scene_r1.backend.pipeline.labelling import (
    DONE_FILE,
    _guarded,
    _identity,
    label_scan,
    run_local,
    run_ray,
    scan_jobs,
)
from scene_r1.backend.pipeline.settings import PipelineSettings
from scene_r1.shared.scene import SceneError


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scan") / "room"
    write_synthetic(SynthConfig(seed=7, frames=2, width=32, height=24), folder)
    return folder


def test_a_done_scan_is_skipped_only_for_the_same_scan_and_settings(scan, tmp_path):
    settings = PipelineSettings(tracker="geometric")
    (job,) = scan_jobs([scan], ["cube"], tmp_path, settings)
    done = tmp_path / "room" / DONE_FILE
    done.parent.mkdir(parents=True)
    done.write_text(json.dumps(_identity(job) | {"name": "room", "instances": {"cube": 1}, "seconds": 1.0}))
    assert label_scan(job)["skipped"]
    # another model, or another scan written to the same folder: labelled again, not skipped
    for changed in (replace(job, settings=replace(settings, vlm="another/model")), replace(job, scan=str(tmp_path))):
        with pytest.raises(SceneError):  # it went on to label (the stand-in scan path is no capture)
            label_scan(replace(changed, scan=str(tmp_path / "missing")))
    assert (
        _identity(replace(job, settings=replace(settings, max_new_tokens=7)))["settings_hash"]
        != _identity(job)["settings_hash"]
    )


def test_a_scan_failing_in_any_way_is_recorded_and_the_run_goes_on(scan, tmp_path):
    (job,) = scan_jobs([scan, scan], ["cube"], tmp_path, PipelineSettings(tracker="geometric"))  # one scan, once
    broken = replace(job, threads=-1)  # torch refuses: a RuntimeError, not a SceneError
    elsewhere = replace(job, scan=str(tmp_path / "nowhere"), out=str(tmp_path / "room-2"))
    summaries = run_local([broken, elsewhere], lambda s: None)
    assert [s["name"] for s in summaries] == ["room", "room-2"]
    assert summaries[0]["error"].startswith("RuntimeError") and "nowhere" in summaries[1]["error"]
    assert _guarded(broken)["error"] == summaries[0]["error"]


def test_some_scans_failed_has_its_own_exit_status(tmp_path, capsys):
    empty = tmp_path / "not-a-scan"
    empty.mkdir()
    assert SCANS_FAILED not in (0, 1, 2)
    assert main(["label", str(empty), "--classes", "cube", "--out", str(tmp_path / "out")]) == SCANS_FAILED
    assert (
        "failed" in (tmp_path / "out" / "summary.md").read_text() and "1 of 1 scan(s) failed" in capsys.readouterr().out
    )


@pytest.mark.slow
def test_a_failing_scan_does_not_end_a_ray_run(scan, tmp_path):
    (job,) = scan_jobs([scan], ["cube"], tmp_path, PipelineSettings(tracker="geometric"))
    jobs = [replace(job, threads=-1), replace(job, scan=str(tmp_path / "nowhere"), out=str(tmp_path / "room-2"))]
    summaries = run_ray(jobs, "local", lambda s: None, local_cpus=1, task_timeout=120)
    assert [s["name"] for s in summaries] == ["room", "room-2"] and all("error" in s for s in summaries)
    assert summaries[0]["error"].startswith("RuntimeError")
