"""Carrying a key-frame box through the video as per-frame masks.

Sam2Tracker wraps transformers' official SAM2 port (Sam2VideoModel) in streaming mode: frames
are decoded, processed and fed one at a time from memory (never written to disk), forwards from
the key frame and then backwards in a second session, and the session is trimmed as it goes so
memory stays bounded on long scans. The weight-free fallback is
geometry.tracking.GeometricTracker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ...shared.scene import Scene, SceneError
from ..geometry.segmentation import check_box, check_points


@dataclass(frozen=True)
class Sam2Settings:
    model: str = "facebook/sam2.1-hiera-tiny"
    device: str = "cpu"
    dtype: str = "float32"
    mask_threshold: float = 0.0  # on SAM2's mask logits
    keep_frames: int = 16  # processed frames and per-frame outputs kept in a session (besides the key frame)


class Sam2Tracker:
    """SAM2 video tracking through transformers (Sam2VideoModel + Sam2VideoProcessor)."""

    name = "sam2"

    def __init__(self, settings: Sam2Settings = Sam2Settings()):
        import torch
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        from .loading import load_pretrained, torch_dtype

        self.settings = settings
        self.torch = torch
        self.dtype = torch_dtype(settings.dtype)
        self.model = load_pretrained(Sam2VideoModel, settings.model, device=settings.device, dtype=self.dtype).eval()
        self.processor = load_pretrained(Sam2VideoProcessor, settings.model)
        self.name = f"sam2 ({settings.model})"
        self.model_seconds = 0.0  # time inside the model's forward passes
        self.peak_frames_held = 0  # processed frames a session held at once (bounded by keep_frames)

    def track(self, scene, key_index, box, frames=None, progress=None, points=None):
        key_index = scene.check_index(key_index)
        frames = sorted(set(range(len(scene)) if frames is None else frames) | {key_index})
        size = scene.intrinsics_at(key_index).size
        points = None if points is None or len(points) == 0 else check_points(points, size)
        prompt = {} if box is None else {"input_boxes": [[[float(v) for v in check_box(box, size)]]]}
        if points is not None:  # clicks: [x, y] per point and 1 (on the object) or 0 (not) per point
            prompt |= {
                "input_points": [[points[:, :2].tolist()]],
                "input_labels": [[points[:, 2].astype(int).tolist()]],
            }
        if not prompt:
            raise SceneError("a prompt needs a box or at least one positive point")
        later = [i for i in frames if i >= key_index]
        earlier = [i for i in reversed(frames) if i <= key_index]
        total = len(later) + len(earlier) - 1
        masks: dict[int, np.ndarray] = {}
        done = 0

        def step(index, mask):
            nonlocal done
            masks[index] = mask
            done += 1
            if progress is not None:
                progress(min(done, total), total)

        self._stream(scene, later, prompt, step)
        if len(earlier) > 1:
            self._stream(scene, earlier, prompt, lambda index, mask: step(index, mask) if index != key_index else None)
        return masks

    def _stream(self, scene: Scene, order: list[int], prompt: dict, on_mask) -> None:
        """One streaming session over `order` (key frame first), prompted with a box and/or points."""
        torch = self.torch
        device = self.settings.device
        session = self.processor.init_video_session(
            inference_device=device, video_storage_device="cpu", inference_state_device=device, dtype=self.dtype
        )
        for position, index in enumerate(order):
            rgb = scene.frame(index).rgb
            inputs = self.processor(images=rgb, device=device, return_tensors="pt")
            if position == 0:
                self.processor.add_inputs_to_inference_session(
                    session, frame_idx=0, obj_ids=1, original_size=inputs.original_sizes[0], **prompt
                )
            model_start = time.perf_counter()
            with torch.inference_mode():
                output = self.model(
                    inference_session=session, frame_idx=position, frame=inputs.pixel_values[0].to(self.dtype)
                )
            self.model_seconds += time.perf_counter() - model_start
            logits = self.processor.post_process_masks(
                [output.pred_masks], original_sizes=inputs.original_sizes, binarize=False
            )[0]
            on_mask(index, (logits[0, 0] > self.settings.mask_threshold).cpu().numpy())
            self._trim(session, position)
            self.peak_frames_held = max(self.peak_frames_held, len(session.processed_frames or ()))

    def _trim(self, session, position: int) -> None:
        # SAM2 attends to the prompted frame and the last few (num_maskmem) frames only; older
        # processed frames and outputs are dead weight on a long scan.
        stale = position - self.settings.keep_frames
        if stale <= 0:
            return
        if session.processed_frames is not None:
            session.processed_frames.pop(stale, None)
        for outputs in session.output_dict_per_obj.values():
            outputs["non_cond_frame_outputs"].pop(stale, None)
        for tracked in session.frames_tracked_per_obj.values():
            tracked.pop(stale, None)
