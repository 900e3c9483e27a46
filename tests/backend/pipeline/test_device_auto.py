"""`--device auto` (what the Blender add-on's local backend asks for) starts on any machine."""

import torch

from scene_r1.backend.pipeline.settings import PipelineSettings, auto_device


def test_device_auto_is_cuda_when_present_else_the_cpu():
    settings = PipelineSettings(device="auto")
    if torch.cuda.is_available():
        assert settings.device == "cuda"
        assert settings.dtype == ("bfloat16" if torch.cuda.is_bf16_supported() else "float16")
    else:
        assert (settings.device, settings.dtype) == ("cpu", "float32")
    assert PipelineSettings(device="auto", dtype="float16").dtype == "float16"  # an explicit dtype is kept
    assert PipelineSettings().device == "cpu" and PipelineSettings().dtype == "auto"  # defaults unchanged
    assert auto_device("float32")[1] == "float32"
