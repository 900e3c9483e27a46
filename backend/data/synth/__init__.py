"""Procedural rooms rendered on the CPU with exact ground truth (Open3D RaycastingScene).

SynthConfig is light; the rest loads Open3D, so it is imported on first use."""

from .config import SynthConfig

__all__ = ["SynthConfig", "build_synthetic", "load_ground_truth", "write_synthetic"]


def __getattr__(name: str):
    if name in __all__:
        from . import generate

        return getattr(generate, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
