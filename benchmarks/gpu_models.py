"""The real-size models of `scene-r1 bench gpu`, built from their published configs with random
weights, and their per-stage timings (Qwen2.5-VL-7B; SAM2.1 hiera-tiny and -large)."""

from __future__ import annotations

import time

from ..shared.scene import Scene

QWEN25_VL_7B = {
    "text": dict(
        vocab_size=152064,
        hidden_size=3584,
        intermediate_size=18944,
        num_hidden_layers=28,
        num_attention_heads=28,
        num_key_value_heads=4,
        max_position_embeddings=128000,
        rms_norm_eps=1e-6,
        hidden_act="silu",
        rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
        bos_token_id=151643,
        eos_token_id=151645,
        pad_token_id=151643,
    ),
    "vision": dict(
        depth=32,
        hidden_size=1280,
        intermediate_size=3420,
        num_heads=16,
        out_hidden_size=3584,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        fullatt_block_indexes=[7, 15, 23, 31],
        tokens_per_second=2,
        in_chans=3,
        hidden_act="silu",
    ),
    "ids": dict(image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653),
}
TINY_QWEN = {
    "text": dict(
        vocab_size=1024,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=32768,
        rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=0,
    ),
    "vision": dict(
        depth=2,
        hidden_size=32,
        intermediate_size=64,
        num_heads=2,
        out_hidden_size=64,
        patch_size=14,
        spatial_merge_size=2,
        temporal_patch_size=2,
        window_size=112,
        fullatt_block_indexes=[1],
        tokens_per_second=2,
    ),
    "ids": dict(image_token_id=1000, video_token_id=1001, vision_start_token_id=1002, vision_end_token_id=1003),
}
# facebook/sam2.1-hiera-large's backbone (transformers' Sam2VideoConfig defaults are hiera-tiny).
SAM2_LARGE_BACKBONE = dict(
    hidden_size=144,
    blocks_per_stage=[2, 6, 36, 4],
    embed_dim_per_stage=[144, 288, 576, 1152],
    num_attention_heads_per_stage=[2, 4, 8, 16],
    global_attention_blocks=[23, 33, 43],
    window_size_per_stage=[8, 4, 16, 8],
    window_positional_embedding_background_size=[7, 7],
)


def _clock(torch, work, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = work()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def build_qwen(spec: dict, device: str, dtype):
    import torch
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    config = Qwen2_5_VLConfig(text_config=spec["text"], vision_config=spec["vision"], **spec["ids"])
    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=dtype)
    return model.eval(), config


def vision_inputs(spec: dict, grid: tuple[int, int, int], video: bool, device: str, dtype) -> dict:
    """Prompt ids with the vision placeholders for a (t, h, w) patch grid, and random pixels."""
    import torch

    t, h, w = grid
    ids, merge = spec["ids"], spec["vision"]["spatial_merge_size"]
    placeholders = t * h * w // merge**2
    text = torch.randint(100, min(5000, spec["text"]["vocab_size"] - 100), (96,))
    pad = ids["video_token_id"] if video else ids["image_token_id"]
    input_ids = torch.cat(
        [
            text[:16],
            torch.tensor([ids["vision_start_token_id"]]),
            torch.full((placeholders,), pad),
            torch.tensor([ids["vision_end_token_id"]]),
            text[16:],
        ]
    )[None].to(device)
    patch = 3 * spec["vision"]["temporal_patch_size"] * spec["vision"]["patch_size"] ** 2
    pixels = torch.randn(t * h * w, patch, device=device, dtype=dtype)
    grid_thw = torch.tensor([[t, h, w]], device=device)
    key = "videos" if video else "images"
    return {
        "input_ids": input_ids,
        "attention_mask": torch.ones_like(input_ids),
        f"pixel_values_{key}" if video else "pixel_values": pixels,
        f"{key[:-1]}_grid_thw": grid_thw,
    }


def time_vlm(
    spec: dict, device: str, dtype, video_frames: int, size: tuple[int, int], new_tokens: int, candidates: int
) -> dict:
    """Per stage: vision encoder, prefill and generation for temporal grounding / VQA (a video of
    `video_frames` frames) and image grounding (`candidates` single frames)."""
    import torch

    model, _ = build_qwen(spec, device, dtype)
    step = spec["vision"]["patch_size"] * spec["vision"]["spatial_merge_size"]
    h, w = (
        round(size[1] / step) * step // spec["vision"]["patch_size"],
        round(size[0] / step) * step // spec["vision"]["patch_size"],
    )
    video = vision_inputs(spec, (video_frames // 2, h, w), True, device, dtype)
    image = vision_inputs(spec, (1, h, w), False, device, dtype)
    generate = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    out = {
        "video_tokens": int((video["input_ids"] == spec["ids"]["video_token_id"]).sum()),
        "image_tokens": int((image["input_ids"] == spec["ids"]["image_token_id"]).sum()),
        "new_tokens": new_tokens,
    }
    with torch.inference_mode():
        model.generate(**image, max_new_tokens=2, do_sample=False)  # warm-up
        out["video_encoder_s"], _ = _clock(
            torch, lambda: model.model.get_video_features(video["pixel_values_videos"], video["video_grid_thw"]), device
        )
        out["video_prefill_s"], _ = _clock(torch, lambda: model(**video), device)
        out["temporal_s"], _ = _clock(torch, lambda: model.generate(**video, **generate), device)
        out["image_encoder_s"], _ = _clock(
            torch, lambda: model.model.get_image_features(image["pixel_values"], image["image_grid_thw"]), device
        )
        out["image_prefill_s"], _ = _clock(torch, lambda: model(**image), device)
        out["image_s"], _ = _clock(
            torch, lambda: [model.generate(**image, **generate) for _ in range(candidates)], device
        )
        from ..backend.pipeline.cache import SceneWorkCache

        cache = SceneWorkCache(64 << 30)  # a second question on the same video: its vision features cached
        cache.wrap_encoder(model.model.visual, "vlm-vision-features")
        with cache.for_scene("bench"):
            model(**video)
            out["video_prefill_cached_s"], _ = _clock(torch, lambda: model(**video), device)
            out["temporal_cached_s"], _ = _clock(torch, lambda: model.generate(**video, **generate), device)
    out["decode_tokens_per_s"] = new_tokens / max(out["temporal_s"] - out["video_prefill_s"], 1e-9)
    out["parameters_b"] = sum(p.numel() for p in model.parameters()) / 1e9
    if device.startswith("cuda"):
        out["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def build_sam2(variant: str, device: str, dtype, image_size: int | None = None):
    """Sam2VideoModel from sam2.1-hiera-tiny / -large values; `image_size` shrinks it (tiny check)."""
    import torch
    from transformers import (
        Sam2ImageProcessor,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
    )

    config = Sam2VideoConfig()
    backbone = config.vision_config.backbone_config
    if variant == "large":
        for name, value in SAM2_LARGE_BACKBONE.items():
            setattr(backbone, name, value)
        config.vision_config.backbone_channel_list = SAM2_LARGE_BACKBONE["embed_dim_per_stage"][::-1]
    if image_size is not None:  # as backend/models/tiny.py: attributes, not nested dicts
        config.image_size = config.prompt_encoder_config.image_size = image_size
        config.memory_attention_rope_feat_sizes = [image_size // 16] * 2
        backbone.image_size = [image_size, image_size]
        config.vision_config.backbone_feature_sizes = [
            [image_size // 4] * 2,
            [image_size // 8] * 2,
            [image_size // 16] * 2,
        ]
    size = config.image_size
    torch.manual_seed(0)
    with torch.device(device):
        model = Sam2VideoModel(config).to(dtype).eval()
    processor = Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(
            size={"height": size, "width": size}, mask_size={"height": size // 4, "width": size // 4}
        ),
        video_processor=Sam2VideoVideoProcessor(size={"height": size, "width": size}),
        target_size=size,
    )
    return model, processor


def _stream_sam2(model, processor, scene: Scene, device: str, dtype, keep_frames: int) -> tuple[float, float]:
    """One streaming session over every frame, box on frame 0, the session trimmed to
    `keep_frames` as backend/models/tracker.py's Sam2Tracker does (the same processor calls)."""
    import torch

    session = processor.init_video_session(
        inference_device=device, video_storage_device="cpu", inference_state_device=device, dtype=dtype
    )
    box = [[[250.0, 170.0, 390.0, 310.0]]]
    model_s = 0.0
    start = time.perf_counter()
    for position in range(len(scene)):
        inputs = processor(images=scene.frame(position).rgb, device=device, return_tensors="pt")
        if position == 0:
            processor.add_inputs_to_inference_session(
                session, frame_idx=0, obj_ids=1, input_boxes=box, original_size=inputs.original_sizes[0]
            )
        with torch.inference_mode():
            seconds, output = _clock(
                torch,
                lambda position=position, pixels=inputs.pixel_values[0]: model(
                    inference_session=session, frame_idx=position, frame=pixels.to(dtype)
                ),
                device,
            )
        model_s += seconds
        processor.post_process_masks([output.pred_masks], original_sizes=inputs.original_sizes, binarize=False)
        stale = position - keep_frames
        if stale > 0:
            session.processed_frames.pop(stale, None)
            for outputs in session.output_dict_per_obj.values():
                outputs["non_cond_frame_outputs"].pop(stale, None)
    return time.perf_counter() - start, model_s


def time_sam2(
    scene: Scene, variant: str, device: str, dtype, image_size: int | None = None, cached: bool = False
) -> dict:
    """Seconds to track through every frame; with `cached`, also a second pass whose image
    embeddings come from the scene cache (what a second query on the same frames pays)."""
    import torch

    model, processor = build_sam2(variant, device, dtype, image_size)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    total, model_s = _stream_sam2(model, processor, scene, device, dtype, keep_frames=16)
    out = {
        "variant": variant,
        "dtype": str(dtype).replace("torch.", ""),
        "frames": len(scene),
        "total_s": total,
        "model_s": model_s,
        "ms_per_frame": 1000 * total / len(scene),
        "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6,
    }
    if device.startswith("cuda"):
        out["peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
    if cached:
        from ..backend.pipeline.cache import SceneWorkCache

        cache = SceneWorkCache(64 << 30)
        cache.wrap_encoder(model.vision_encoder, "segmenter-image-embeddings")
        with cache.for_scene("bench"):
            out["cache_fill_s"], _ = _stream_sam2(model, processor, scene, device, dtype, keep_frames=16)
            out["cached_total_s"], _ = _stream_sam2(model, processor, scene, device, dtype, keep_frames=16)
        out["cached_ms_per_frame"] = 1000 * out["cached_total_s"] / len(scene)
        out["cache_gib"] = cache.stats.nbytes / 2**30
    return out
