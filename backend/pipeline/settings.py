"""The pipeline's typed settings: what `scene-r1 ground/ask/serve` run, read from flags or a TOML file."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ...shared.defaults import DEFAULT_VLM
from ...shared.scene import SceneError
from ..models.reasoner import VLMSettings


@dataclass(frozen=True)
class PipelineSettings:
    """What `scene-r1 ground/ask/serve` run. Also read from a TOML config file ([pipeline])."""

    vlm: str = DEFAULT_VLM  # when it is not on this machine, the shipped scene-r1-nano is used (with a note)
    tracker: str = (
        "auto"  # "auto": SAM2 (DEFAULT_TRACKER) if its weights are here, else geometric; an id/path; or "geometric"
    )
    # "auto": SAM2 if its weights are here, else MobileSAM, else geometric; or "sam2", "mobile_sam", "geometric"
    segmenter: str = "auto"
    device: str = "cpu"  # or "auto": CUDA when this machine has it, else the CPU
    dtype: str = "auto"
    max_new_tokens: int = 256
    video_frames: int = 32
    key_frame_candidates: int = 3  # frames of the span asked for a box; the best one is the key frame
    track_stride: int = 1  # track every n-th frame (plus the key frame) on long scans
    view_step_m: float = 0.10  # track and vote a new view each time the camera moves this far...
    view_step_deg: float = 10.0  # ...or turns this much (0 and 0: every frame); see geometry/frame_selection.py
    work_cache_mb: int = 2048  # query-independent work kept per scene (pipeline/cache.py); 0: none
    video_as_images: bool = False  # models trained on frames-as-images (scene-r1-nano)
    grounding: str = "auto"  # "box" (the paper's), "candidates" (choose among objects), "auto": candidates if known
    candidate_views: int = 1  # marked views shown with the candidate table
    # The model that chooses among candidates: "auto" is the VLM itself, except that a pipeline
    # that fell back to the shipped scene-r1-nano chooses with the shipped scene-r1-nano-v2; or an id/folder.
    chooser: str = "auto"

    def resolved(self) -> PipelineSettings:
        """These settings on this machine: "auto" becomes CUDA when this machine has it, else the CPU.
        Resolved where the pipeline runs (a Ray worker, the add-on's local backend), never where the
        settings were written, so "auto" travels as "auto"."""
        if self.device != "auto":
            return self
        device, dtype = auto_device(self.dtype)
        return replace(self, device=device, dtype=dtype)

    def vlm_settings(self) -> VLMSettings:
        return VLMSettings(
            model=self.vlm,
            device=self.device,
            dtype=self.dtype,
            max_new_tokens=self.max_new_tokens,
            video_frames=self.video_frames,
            video_as_images=self.video_as_images,
        )

    @classmethod
    def from_file(cls, path, **overrides) -> PipelineSettings:
        import tomllib

        try:
            table = tomllib.loads(Path(path).read_text(encoding="utf-8")).get("pipeline", {})
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise SceneError(f"cannot read config {path}: {error}") from error
        known = set(cls.__dataclass_fields__)
        unknown = set(table) - known
        if unknown:
            raise SceneError(
                f"unknown settings in {path}: {', '.join(sorted(unknown))} (known: {', '.join(sorted(known))})"
            )
        return replace(cls(**table), **{k: v for k, v in overrides.items() if v is not None})


def auto_device(dtype: str = "auto") -> tuple[str, str]:
    """(device, dtype) for `--device auto`: CUDA if present, else the CPU; an "auto" dtype becomes
    bfloat16 only where the GPU supports it (float16 on older GPUs, float32 on the CPU)."""
    import torch

    if not torch.cuda.is_available():
        return "cpu", "float32" if dtype == "auto" else dtype
    if dtype != "auto":
        return "cuda", dtype
    return "cuda", "bfloat16" if torch.cuda.is_bf16_supported() else "float16"
