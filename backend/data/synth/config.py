"""The settings of a synthetic room (no Open3D here: `scene-r1 --help` and `info` read them
without loading the renderer)."""

from __future__ import annotations

from dataclasses import dataclass

from ....shared.scene import SceneError

TRAJECTORIES = ("orbit", "walk")  # camera paths trajectory.py draws


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
        if self.frames < 1 or self.width < 8 or self.height < 8 or self.fps <= 0 or self.objects < 1:
            raise SceneError(
                "invalid synthetic scene settings (frames >= 1, width and height >= 8, fps > 0, objects >= 1): "
                f"frames={self.frames}, width={self.width}, height={self.height}, fps={self.fps}, "
                f"objects={self.objects}"
            )
        if self.trajectory not in TRAJECTORIES:
            raise SceneError(f"unknown trajectory {self.trajectory!r}; known: {', '.join(TRAJECTORIES)}")

    @property
    def min_visible_pixels(self) -> int:
        """An object counts as visible in a frame when it covers this many pixels."""
        return max(20, int(1e-4 * self.width * self.height))
