"""Procedural rooms rendered on the CPU with exact ground truth (Open3D RaycastingScene)."""

from .generate import SynthConfig, build_synthetic, load_ground_truth, write_synthetic

__all__ = ["SynthConfig", "build_synthetic", "load_ground_truth", "write_synthetic"]
