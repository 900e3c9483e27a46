"""VideoFrames releases its decoder and file: on close(), at the end of a with block, when dropped."""

import contextlib
import gc
import os
from pathlib import Path

import numpy as np
from phone_writers import WRITERS, Capture

from scene_r1.backend.data.phone.video import VideoFrames


def open_descriptors(path: Path) -> int:
    """This process's file descriptors open on `path`."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # a descriptor closed while listing
            count += os.readlink(f"/proc/self/fd/{fd}") == str(path)
    return count


def test_the_video_file_is_released(tmp_path):
    rng = np.random.default_rng(3)
    rgb = [rng.integers(0, 255, (48, 64, 3), np.uint8) for _ in range(3)]
    depth = [np.full((24, 32), 1.5, np.float32) for _ in range(3)]
    confidence = [np.full((24, 32), 2, np.uint8) for _ in range(3)]
    capture = Capture(rgb, depth, confidence, np.array([50.0, 50, 32, 24]), np.stack([np.eye(4)] * 3), np.arange(3.0))
    path = (WRITERS["stray"](capture, tmp_path / "stray") / "rgb.mp4").resolve()
    video = VideoFrames(path)
    first = video.frame(0)
    assert open_descriptors(path) == 1
    video.close()
    assert open_descriptors(path) == 0
    assert np.array_equal(video.frame(0), first)  # opened again on demand
    with video:
        video.frame(2)
    assert open_descriptors(path) == 0
    video.frame(1)
    del video
    gc.collect()
    assert open_descriptors(path) == 0
