"""`--device auto` (what the Blender add-on's local backend asks for) starts on any machine, and is
resolved where the pipeline runs (a Ray worker), not where the settings were written."""

import pickle

import torch

from scene_r1.backend.cli.common import pipeline_settings
from scene_r1.backend.cli.main import build_parser
from scene_r1.backend.pipeline.labelling import scan_jobs, task_resources
from scene_r1.backend.pipeline.pipeline import Pipeline
from scene_r1.backend.pipeline.settings import PipelineSettings, auto_device


def test_device_auto_is_cuda_when_present_else_the_cpu():
    settings = PipelineSettings(device="auto").resolved()
    if torch.cuda.is_available():
        assert settings.device == "cuda"
        assert settings.dtype == ("bfloat16" if torch.cuda.is_bf16_supported() else "float16")
    else:
        assert (settings.device, settings.dtype) == ("cpu", "float32")
    assert PipelineSettings(device="auto", dtype="float16").resolved().dtype == "float16"  # an explicit dtype is kept
    assert PipelineSettings().device == "cpu" and PipelineSettings().dtype == "auto"  # defaults unchanged
    assert PipelineSettings(device="cpu").resolved() == PipelineSettings(device="cpu")
    assert auto_device("float32")[1] == "float32"


def test_auto_travels_as_auto_and_the_pipeline_resolves_it(tmp_path):
    argv = ["label", str(tmp_path), "--classes", "cube", "--out", str(tmp_path / "o"), "--device", "auto"]
    args = build_parser().parse_args(argv)
    (job,) = scan_jobs([tmp_path], ["cube"], tmp_path / "o", pipeline_settings(args))
    shipped = pickle.loads(pickle.dumps(job))  # what a Ray task receives
    assert shipped.settings.device == "auto" and shipped.settings.dtype == "auto"
    pipeline = Pipeline(PipelineSettings(device="auto", tracker="geometric"))
    assert pipeline.settings.device == auto_device()[0] and pipeline.settings.dtype != "auto"


def test_an_auto_task_asks_for_the_gpus_it_is_given():
    auto = PipelineSettings(device="auto")
    assert task_resources(auto, 2, 1) == {"num_cpus": 2, "num_gpus": 1}
    assert task_resources(auto, 2) == {"num_cpus": 2, "num_gpus": 0}
    assert task_resources(PipelineSettings(device="cuda"), 2) == {"num_cpus": 2, "num_gpus": 1}
