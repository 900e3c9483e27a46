"""`scene-r1 bench gpu`: real-size models built from their published configs with random weights
(no download), per pipeline stage at fixed token counts, on a 300-frame 640x480 scene, plus torch
voting on the GPU against numpy voting in the same run.

Random weights give meaningless answers but the real shapes and code paths, so the times are the
real models' times for the same token counts. Needs torch with CUDA, transformers and opencv; it
never imports Open3D (the GPU machines here have no Open3D wheel, so Open3D CUDA fusion is not
measured by this command). `--tiny-check` runs the same code with tiny configs on the CPU (a
check of the benchmark itself, not a measurement).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..shared.camera import Intrinsics
from ..backend.geometry.lifting import lift_masks, vote_in_frames
from ..shared.scene import Scene

# Qwen/Qwen2.5-VL-7B-Instruct's config.json (published values).
QWEN25_VL_7B = {
    "text": dict(vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28,
                 num_key_value_heads=4, max_position_embeddings=128000, rms_norm_eps=1e-6, hidden_act="silu",
                 rope_parameters={"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [16, 24, 24]},
                 bos_token_id=151643, eos_token_id=151645, pad_token_id=151643),
    "vision": dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16, out_hidden_size=3584, patch_size=14,
                   spatial_merge_size=2, temporal_patch_size=2, window_size=112, fullatt_block_indexes=[7, 15, 23, 31],
                   tokens_per_second=2, in_chans=3, hidden_act="silu"),
    "ids": dict(image_token_id=151655, video_token_id=151656, vision_start_token_id=151652, vision_end_token_id=151653),
}
TINY_QWEN = {
    "text": dict(vocab_size=1024, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, max_position_embeddings=32768,
                 rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                 bos_token_id=0, eos_token_id=1, pad_token_id=0),
    "vision": dict(depth=2, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=64, patch_size=14, spatial_merge_size=2,
                   temporal_patch_size=2, window_size=112, fullatt_block_indexes=[1], tokens_per_second=2),
    "ids": dict(image_token_id=1000, video_token_id=1001, vision_start_token_id=1002, vision_end_token_id=1003),
}
# facebook/sam2.1-hiera-large's backbone (transformers' Sam2VideoConfig defaults are hiera-tiny).
SAM2_LARGE_BACKBONE = dict(hidden_size=144, blocks_per_stage=[2, 6, 36, 4], embed_dim_per_stage=[144, 288, 576, 1152],
                           num_attention_heads_per_stage=[2, 4, 8, 16], global_attention_blocks=[23, 33, 43],
                           window_size_per_stage=[8, 4, 16, 8], window_positional_embedding_background_size=[7, 7])


def synthetic_scene(frames: int = 300, width: int = 640, height: int = 480) -> tuple[Scene, dict[int, np.ndarray]]:
    """A slow 120-degree arc around a 0.3 m ball on a floor, ray-cast in numpy: exact planar
    depth and the ball's mask per frame (no Open3D)."""
    intrinsics = Intrinsics(525.0 * width / 640, 525.0 * width / 640, (width - 1) / 2, (height - 1) / 2, width, height)
    u, v = np.meshgrid((np.arange(width) - intrinsics.cx) / intrinsics.fx, (np.arange(height) - intrinsics.cy) / intrinsics.fy)
    rays = np.stack([u, v, np.ones_like(u)], -1).reshape(-1, 3)  # z = 1: the ray parameter is planar depth
    centre, radius = np.array([0.0, 0.0, 0.3]), 0.3
    rgb, depth, poses, masks = [], [], [], {}
    for k, angle in enumerate(np.radians(np.linspace(0, 120, frames))):
        eye = np.array([1.6 * np.cos(angle), 1.6 * np.sin(angle), 1.0])
        forward = (centre - eye) / np.linalg.norm(centre - eye)
        right = np.cross(forward, [0, 0, 1.0])
        right /= np.linalg.norm(right)
        pose = np.eye(4)
        pose[:3, :3] = np.stack([right, np.cross(forward, right), forward], 1)
        pose[:3, 3] = eye
        d = rays @ pose[:3, :3].T
        with np.errstate(divide="ignore", invalid="ignore"):
            floor = np.where(d[:, 2] < 0, -eye[2] / d[:, 2], np.inf)
            offset = eye - centre
            a, b, c = (d * d).sum(1), 2 * d @ offset, offset @ offset - radius**2
            disc = b * b - 4 * a * c
            ball = np.where(disc > 0, (-b - np.sqrt(np.maximum(disc, 0))) / (2 * a), np.inf)
        hit = np.minimum(floor, ball)
        z = np.where(np.isfinite(hit) & (hit < 8), hit, 0).astype(np.float32).reshape(height, width)
        masks[k] = (ball < floor).reshape(height, width)
        rgb.append(_texture(eye + d * np.where(np.isfinite(hit), hit, 0)[:, None], masks[k].reshape(-1)).reshape(height, width, 3))
        depth.append(z)
        poses.append(pose)
    scene = Scene.from_arrays(rgb, depth, intrinsics, np.stack(poses), np.arange(frames) / 30.0, name="gpu-bench", cache_frames=frames)
    return scene, masks


def _texture(points: np.ndarray, on_ball: np.ndarray) -> np.ndarray:
    """Colours tied to the world (a 20 cm checkerboard floor, a banded ball): every view differs,
    as a real scan's would (a flat colour would make every frame the same image)."""
    checker = (np.floor(points[:, 0] / 0.2) + np.floor(points[:, 1] / 0.2)) % 2
    bands = (np.floor(points[:, 2] / 0.05) + np.floor(np.arctan2(points[:, 1], points[:, 0]) / 0.5)) % 2
    grey = np.where(on_ball, 150 + 80 * bands, 60 + 90 * checker)
    return np.stack([grey, 0.8 * grey, 0.6 * grey + 40 * on_ball], 1).clip(0, 255).astype(np.uint8)


def _clock(torch, work, device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = work()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - start, out


def time_voting(scene: Scene, masks: dict, device: str) -> dict:
    """Seconds to lift all masks with numpy voting and with torch voting on `device`."""
    import torch

    from ..backend.geometry.voting import TorchVoter

    voter = TorchVoter(device)
    lift_masks(scene, {k: masks[k] for k in range(4)}, vote=voter)  # warm-up: context, kernels
    numpy_s, by_numpy = _clock(torch, lambda: lift_masks(scene, masks, vote=vote_in_frames), device)
    torch_s, by_torch = _clock(torch, lambda: lift_masks(scene, masks, vote=voter), device)
    same = len(by_numpy.points) == len(by_torch.points) and np.allclose(by_numpy.confidence, by_torch.confidence)
    return {"frames": len(masks), "numpy_s": numpy_s, "torch_s": torch_s, "speedup": numpy_s / torch_s,
            "points": int(len(by_torch.points)), "same_points": bool(same)}


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
    input_ids = torch.cat([text[:16], torch.tensor([ids["vision_start_token_id"]]), torch.full((placeholders,), pad),
                           torch.tensor([ids["vision_end_token_id"]]), text[16:]])[None].to(device)
    patch = 3 * spec["vision"]["temporal_patch_size"] * spec["vision"]["patch_size"] ** 2
    pixels = torch.randn(t * h * w, patch, device=device, dtype=dtype)
    grid_thw = torch.tensor([[t, h, w]], device=device)
    key = "videos" if video else "images"
    return {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids),
            f"pixel_values_{key}" if video else "pixel_values": pixels, f"{key[:-1]}_grid_thw": grid_thw}


def time_vlm(spec: dict, device: str, dtype, video_frames: int, size: tuple[int, int], new_tokens: int, candidates: int) -> dict:
    """Per stage: vision encoder, prefill and generation for temporal grounding / VQA (a video of
    `video_frames` frames) and image grounding (`candidates` single frames)."""
    import torch

    model, _ = build_qwen(spec, device, dtype)
    step = spec["vision"]["patch_size"] * spec["vision"]["spatial_merge_size"]
    h, w = (round(size[1] / step) * step // spec["vision"]["patch_size"], round(size[0] / step) * step // spec["vision"]["patch_size"])
    video = vision_inputs(spec, (video_frames // 2, h, w), True, device, dtype)
    image = vision_inputs(spec, (1, h, w), False, device, dtype)
    generate = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    out = {"video_tokens": int((video["input_ids"] == spec["ids"]["video_token_id"]).sum()),
           "image_tokens": int((image["input_ids"] == spec["ids"]["image_token_id"]).sum()), "new_tokens": new_tokens}
    with torch.inference_mode():
        model.generate(**image, max_new_tokens=2, do_sample=False)  # warm-up
        out["video_encoder_s"], _ = _clock(torch, lambda: model.model.get_video_features(video["pixel_values_videos"], video["video_grid_thw"]), device)
        out["video_prefill_s"], _ = _clock(torch, lambda: model(**video), device)
        out["temporal_s"], _ = _clock(torch, lambda: model.generate(**video, **generate), device)
        out["image_encoder_s"], _ = _clock(torch, lambda: model.model.get_image_features(image["pixel_values"], image["image_grid_thw"]), device)
        out["image_prefill_s"], _ = _clock(torch, lambda: model(**image), device)
        out["image_s"], _ = _clock(torch, lambda: [model.generate(**image, **generate) for _ in range(candidates)], device)
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
    del model
    return out


def build_sam2(variant: str, device: str, dtype, image_size: int | None = None):
    """Sam2VideoModel from sam2.1-hiera-tiny / -large values; `image_size` shrinks it (tiny check)."""
    import torch
    from transformers import Sam2ImageProcessor, Sam2VideoConfig, Sam2VideoModel, Sam2VideoProcessor, Sam2VideoVideoProcessor

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
        config.vision_config.backbone_feature_sizes = [[image_size // 4] * 2, [image_size // 8] * 2, [image_size // 16] * 2]
    size = config.image_size
    torch.manual_seed(0)
    with torch.device(device):
        model = Sam2VideoModel(config).to(dtype).eval()
    processor = Sam2VideoProcessor(image_processor=Sam2ImageProcessor(size={"height": size, "width": size}, mask_size={"height": size // 4, "width": size // 4}),
                                   video_processor=Sam2VideoVideoProcessor(size={"height": size, "width": size}), target_size=size)
    return model, processor


def _stream_sam2(model, processor, scene: Scene, device: str, dtype, keep_frames: int) -> tuple[float, float]:
    """One streaming session over every frame, box on frame 0, the session trimmed to
    `keep_frames` as backend/models/tracker.py's Sam2Tracker does (the same processor calls)."""
    import torch

    session = processor.init_video_session(inference_device=device, video_storage_device="cpu", inference_state_device=device, dtype=dtype)
    box = [[[250.0, 170.0, 390.0, 310.0]]]
    model_s = 0.0
    start = time.perf_counter()
    for position in range(len(scene)):
        inputs = processor(images=scene.frame(position).rgb, device=device, return_tensors="pt")
        if position == 0:
            processor.add_inputs_to_inference_session(session, frame_idx=0, obj_ids=1, input_boxes=box, original_size=inputs.original_sizes[0])
        with torch.inference_mode():
            seconds, output = _clock(torch, lambda: model(inference_session=session, frame_idx=position, frame=inputs.pixel_values[0].to(dtype)), device)
        model_s += seconds
        processor.post_process_masks([output.pred_masks], original_sizes=inputs.original_sizes, binarize=False)
        stale = position - keep_frames
        if stale > 0:
            session.processed_frames.pop(stale, None)
            for outputs in session.output_dict_per_obj.values():
                outputs["non_cond_frame_outputs"].pop(stale, None)
    return time.perf_counter() - start, model_s


def time_sam2(scene: Scene, variant: str, device: str, dtype, image_size: int | None = None, cached: bool = False) -> dict:
    """Seconds to track through every frame; with `cached`, also a second pass whose image
    embeddings come from the scene cache (what a second query on the same frames pays)."""
    import torch

    model, processor = build_sam2(variant, device, dtype, image_size)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    total, model_s = _stream_sam2(model, processor, scene, device, dtype, keep_frames=16)
    out = {"variant": variant, "dtype": str(dtype).replace("torch.", ""), "frames": len(scene), "total_s": total, "model_s": model_s,
           "ms_per_frame": 1000 * total / len(scene), "parameters_m": sum(p.numel() for p in model.parameters()) / 1e6}
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
    del model
    return out


def run_gpu_benchmark(frames: int = 300, out: Path | None = None, tiny_check: bool = False) -> int:
    """Print per-stage figures (and write them as JSON to `out`); 2 without a CUDA GPU."""
    try:
        import torch
    except ImportError:
        print("scene-r1 bench gpu: needs torch with CUDA (torch is not installed); nothing measured")
        return 2
    if not tiny_check and not torch.cuda.is_available():
        print("scene-r1 bench gpu: needs a CUDA GPU and none is visible (torch.cuda.is_available() is False); nothing measured. "
              "Run it on a GPU machine, or --tiny-check to check the benchmark itself on the CPU.")
        return 2
    device = "cpu" if tiny_check else "cuda"
    frames = 12 if tiny_check else frames
    results: dict = {"device": "cpu (tiny check)" if tiny_check else torch.cuda.get_device_name(0), "torch": torch.__version__}
    start = time.perf_counter()
    scene, masks = synthetic_scene(frames, *((160, 120) if tiny_check else (640, 480)))
    results["scene"] = {"frames": frames, "size": list(scene.color_size), "render_s": time.perf_counter() - start}
    results["voting"] = time_voting(scene, masks, device)
    _report("voting", results["voting"])
    sam = [("tiny", torch.float32), ("tiny", torch.bfloat16), ("large", torch.bfloat16)]
    results["sam2"] = [time_sam2(scene, v, device, d, image_size=128 if tiny_check else None, cached=d == torch.float32 or v == "large")
                       for v, d in (sam[:1] if tiny_check else sam)]
    for entry in results["sam2"]:
        _report("sam2.1-hiera", entry)
        torch.cuda.empty_cache() if device == "cuda" else None
    spec = TINY_QWEN if tiny_check else QWEN25_VL_7B
    dtype = torch.float32 if tiny_check else torch.bfloat16
    results["qwen2.5-vl-7b" if not tiny_check else "qwen-tiny"] = vlm = time_vlm(spec, device, dtype, video_frames=32 if not tiny_check else 4,
                                                                               size=(640, 480) if not tiny_check else (112, 84),
                                                                               new_tokens=128 if not tiny_check else 4, candidates=3)
    _report("qwen2.5-vl", vlm)
    results["open3d_cuda_fusion"] = "not measured: no Open3D wheel on the GPU machine (over the 64 MiB transfer limit)"
    results["pipeline_estimate_s"] = _pipeline_estimate(results)
    print(f"300-frame query estimate on this GPU (temporal + 3 image candidates + SAM2.1-tiny bf16 tracking + torch voting): "
          f"{results['pipeline_estimate_s']:.1f} s")
    if out is not None:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(json.dumps(results, indent=1), encoding="utf-8")
        print(f"wrote {out}")
    return 0


def _pipeline_estimate(results: dict) -> float:
    vlm = results.get("qwen2.5-vl-7b") or results.get("qwen-tiny")
    sam = next((s for s in results["sam2"] if s["dtype"] == "bfloat16" and s["variant"] == "tiny"), results["sam2"][0])
    return vlm["temporal_s"] + vlm["image_s"] + sam["total_s"] + results["voting"]["torch_s"]


def _report(what: str, entry: dict) -> None:
    print(f"{what}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items()), flush=True)
