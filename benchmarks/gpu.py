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

from ..backend.geometry.lifting import lift_masks, vote_in_frames
from ..shared.camera import Intrinsics
from ..shared.scene import Scene
from .gpu_models import QWEN25_VL_7B, TINY_QWEN, _clock, time_sam2, time_vlm


def synthetic_scene(frames: int = 300, width: int = 640, height: int = 480) -> tuple[Scene, dict[int, np.ndarray]]:
    """A slow 120-degree arc around a 0.3 m ball on a floor, ray-cast in numpy: exact planar
    depth and the ball's mask per frame (no Open3D)."""
    intrinsics = Intrinsics(525.0 * width / 640, 525.0 * width / 640, (width - 1) / 2, (height - 1) / 2, width, height)
    u, v = np.meshgrid(
        (np.arange(width) - intrinsics.cx) / intrinsics.fx, (np.arange(height) - intrinsics.cy) / intrinsics.fy
    )
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
        rgb.append(
            _texture(eye + d * np.where(np.isfinite(hit), hit, 0)[:, None], masks[k].reshape(-1)).reshape(
                height, width, 3
            )
        )
        depth.append(z)
        poses.append(pose)
    scene = Scene.from_arrays(
        rgb, depth, intrinsics, np.stack(poses), np.arange(frames) / 30.0, name="gpu-bench", cache_frames=frames
    )
    return scene, masks


def _texture(points: np.ndarray, on_ball: np.ndarray) -> np.ndarray:
    """Colours tied to the world (a 20 cm checkerboard floor, a banded ball): every view differs,
    as a real scan's would (a flat colour would make every frame the same image)."""
    checker = (np.floor(points[:, 0] / 0.2) + np.floor(points[:, 1] / 0.2)) % 2
    bands = (np.floor(points[:, 2] / 0.05) + np.floor(np.arctan2(points[:, 1], points[:, 0]) / 0.5)) % 2
    grey = np.where(on_ball, 150 + 80 * bands, 60 + 90 * checker)
    return np.stack([grey, 0.8 * grey, 0.6 * grey + 40 * on_ball], 1).clip(0, 255).astype(np.uint8)


def time_voting(scene: Scene, masks: dict, device: str) -> dict:
    """Seconds to lift all masks with numpy voting and with torch voting on `device`."""
    import torch

    from ..backend.geometry.voting import TorchVoter

    voter = TorchVoter(device)
    lift_masks(scene, {k: masks[k] for k in range(4)}, vote=voter)  # warm-up: context, kernels
    numpy_s, by_numpy = _clock(torch, lambda: lift_masks(scene, masks, vote=vote_in_frames), device)
    torch_s, by_torch = _clock(torch, lambda: lift_masks(scene, masks, vote=voter), device)
    same = len(by_numpy.points) == len(by_torch.points) and np.allclose(by_numpy.confidence, by_torch.confidence)
    return {
        "frames": len(masks),
        "numpy_s": numpy_s,
        "torch_s": torch_s,
        "speedup": numpy_s / torch_s,
        "points": int(len(by_torch.points)),
        "same_points": bool(same),
    }


def run_gpu_benchmark(frames: int = 300, out: Path | None = None, tiny_check: bool = False) -> int:
    """Print per-stage figures (and write them as JSON to `out`); 2 without a CUDA GPU."""
    try:
        import torch
    except ImportError:
        print("scene-r1 bench gpu: needs torch with CUDA (torch is not installed); nothing measured")
        return 2
    if not tiny_check and not torch.cuda.is_available():
        print(
            "scene-r1 bench gpu: needs a CUDA GPU and none is visible (torch.cuda.is_available() is False); "
            "nothing measured. "
            "Run it on a GPU machine, or --tiny-check to check the benchmark itself on the CPU."
        )
        return 2
    device = "cpu" if tiny_check else "cuda"
    frames = 12 if tiny_check else frames
    results: dict = {
        "device": "cpu (tiny check)" if tiny_check else torch.cuda.get_device_name(0),
        "torch": torch.__version__,
    }
    start = time.perf_counter()
    scene, masks = synthetic_scene(frames, *((160, 120) if tiny_check else (640, 480)))
    results["scene"] = {"frames": frames, "size": list(scene.color_size), "render_s": time.perf_counter() - start}
    results["voting"] = time_voting(scene, masks, device)
    _report("voting", results["voting"])
    sam = [("tiny", torch.float32), ("tiny", torch.bfloat16), ("large", torch.bfloat16)]
    results["sam2"] = [
        time_sam2(
            scene, v, device, d, image_size=128 if tiny_check else None, cached=d == torch.float32 or v == "large"
        )
        for v, d in (sam[:1] if tiny_check else sam)
    ]
    for entry in results["sam2"]:
        _report("sam2.1-hiera", entry)
        torch.cuda.empty_cache() if device == "cuda" else None
    spec = TINY_QWEN if tiny_check else QWEN25_VL_7B
    dtype = torch.float32 if tiny_check else torch.bfloat16
    results["qwen2.5-vl-7b" if not tiny_check else "qwen-tiny"] = vlm = time_vlm(
        spec,
        device,
        dtype,
        video_frames=32 if not tiny_check else 4,
        size=(640, 480) if not tiny_check else (112, 84),
        new_tokens=128 if not tiny_check else 4,
        candidates=3,
    )
    _report("qwen2.5-vl", vlm)
    results["open3d_cuda_fusion"] = "not measured: no Open3D wheel on the GPU machine (over the 64 MiB transfer limit)"
    results["pipeline_estimate_s"] = _pipeline_estimate(results)
    print(
        "300-frame query estimate on this GPU "
        f"(temporal + 3 image candidates + SAM2.1-tiny bf16 tracking + torch voting): "
        f"{results['pipeline_estimate_s']:.1f} s"
    )
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
    print(
        f"{what}: " + ", ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in entry.items()),
        flush=True,
    )
