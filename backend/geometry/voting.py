"""Multi-view voting on a torch device: the rule of shared.lifting.count_votes, for many frames
at once. On a GPU this is the fast path for long videos; shared/ keeps the numpy one (no torch
on the Blender side)."""

from __future__ import annotations

import numpy as np

from ...shared.geometry import invert_pose
from ...shared.scene import Frame
from .lifting import LiftSettings


class TorchVoter:
    """`vote` for shared.lifting.lift_masks: projects every point into a chunk of frames per step."""

    def __init__(self, device: str = "cuda", frames_per_chunk: int = 64):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.frames_per_chunk = frames_per_chunk

    def __call__(
        self, points: np.ndarray, frames: list[Frame], masks: list[np.ndarray], settings: LiftSettings
    ) -> tuple[np.ndarray, np.ndarray]:
        torch = self.torch
        world = torch.as_tensor(points, dtype=torch.float64, device=self.device)
        seen = torch.zeros(len(points), dtype=torch.int32, device=self.device)
        votes = torch.zeros_like(seen)
        # a SceneFrames knows its sizes without decoding a frame
        sizes = getattr(frames, "depth_sizes", None) or [f.depth_intrinsics.size for f in frames]
        for chunk in _same_size_chunks(sizes, self.frames_per_chunk):
            s, v = self._vote_chunk(world, [frames[i] for i in chunk], [masks[i] for i in chunk], settings)
            seen += s
            votes += v
        return seen.cpu().numpy(), votes.cpu().numpy()

    def _vote_chunk(self, world, frames: list[Frame], masks: list[np.ndarray], settings: LiftSettings):
        torch = self.torch
        width, height = frames[0].depth_intrinsics.size
        to_camera = torch.as_tensor(
            np.stack([invert_pose(f.pose) for f in frames]), dtype=torch.float64, device=self.device
        )
        k = torch.as_tensor(
            np.stack([f.depth_intrinsics.as_array() for f in frames]), dtype=torch.float64, device=self.device
        )  # fx fy cx cy
        depth = torch.as_tensor(np.stack([f.depth for f in frames]), dtype=torch.float32, device=self.device).reshape(
            len(frames), -1
        )
        mask = torch.as_tensor(np.stack(masks), device=self.device).reshape(len(frames), -1)
        camera = torch.einsum("fij,nj->fni", to_camera[:, :3, :3], world) + to_camera[:, None, :3, 3]  # (F, N, 3)
        z = camera[..., 2]
        u = torch.round(k[:, None, 0] * camera[..., 0] / z + k[:, None, 2])  # round half to even, as np.rint
        v = torch.round(k[:, None, 1] * camera[..., 1] / z + k[:, None, 3])
        inside = (z > 0) & (u >= 0) & (u < width) & (v >= 0) & (v < height)
        pixel = torch.where(inside, v * width + u, torch.zeros_like(u)).long()
        measured = torch.gather(depth, 1, pixel).double()
        valid = torch.isfinite(measured) & (measured > 0)
        tolerance = settings.depth_tolerance + settings.depth_tolerance_relative * torch.nan_to_num(
            measured, nan=0.0, posinf=0.0, neginf=0.0
        )
        not_behind = inside & valid & (z < measured + tolerance)
        in_mask = not_behind & ((z - measured).abs() < tolerance) & torch.gather(mask, 1, pixel)
        return not_behind.sum(0, dtype=torch.int32), in_mask.sum(0, dtype=torch.int32)


def _same_size_chunks(sizes: list[tuple[int, int]], size: int) -> list[list[int]]:
    """Runs of consecutive frames with the same depth size, at most `size` long (one tensor each)."""
    chunks: list[list[int]] = []
    for index, frame_size in enumerate(sizes):
        if chunks and len(chunks[-1]) < size and sizes[chunks[-1][0]] == frame_size:
            chunks[-1].append(index)
        else:
            chunks.append([index])
    return chunks
