"""The settings of a synthetic room (no Open3D here: `scene-r1 --help` and `info` read them
without loading the renderer)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ....shared.camera import Intrinsics
from ....shared.scene import SceneError

TRAJECTORIES = ("orbit", "walk")  # camera paths trajectory.py draws


def check_camera(config, what: str, enough: bool = True) -> None:
    """The camera settings both kinds of room share (frames, width, height, fps, trajectory)."""
    if config.frames < 1 or config.width < 8 or config.height < 8 or config.fps <= 0:
        raise SceneError(
            f"invalid {what} settings (frames >= 1, width and height >= 8, fps > 0): frames={config.frames}, "
            f"width={config.width}, height={config.height}, fps={config.fps}"
        )
    if not enough:
        raise SceneError(f"invalid {what} settings: too few objects ({config})")
    if config.trajectory not in TRAJECTORIES:
        raise SceneError(f"unknown trajectory {config.trajectory!r}; known: {', '.join(TRAJECTORIES)}")


def pinhole(config):
    """The pinhole camera of a room's settings: its horizontal field of view over its width."""
    fx = config.width / 2 / np.tan(np.radians(config.horizontal_fov_deg) / 2)
    return Intrinsics(fx, fx, (config.width - 1) / 2, (config.height - 1) / 2, config.width, config.height)


@dataclass(frozen=True)
class SynthConfig:
    seed: int = 0
    frames: int = 60
    width: int = 320
    height: int = 240
    fps: float = 4.0
    trajectory: str = "orbit"
    objects: int = 8
    horizontal_fov_deg: float = 70.0
    points_per_object: int = 2000

    def __post_init__(self):
        check_camera(self, "synthetic scene", enough=self.objects >= 1)

    @property
    def min_visible_pixels(self) -> int:
        """An object counts as visible in a frame when it covers this many pixels."""
        return max(20, int(1e-4 * self.width * self.height))
