"""LZFSE members are decoded into a buffer bounded by the size they must have."""

import zipfile

import lzfse
import numpy as np
import pytest
from phone_writers import WRITERS, Capture

from scene_r1.backend.data import open_scene
from scene_r1.backend.data.phone.record3d_r3d import lzfse_decode
from scene_r1.shared.scene import SceneError


def test_exact_members_decode():
    data = np.arange(1000, dtype=np.float32).tobytes()
    assert lzfse_decode(lzfse.compress(data), len(data), "x") == data


def test_a_bomb_stops_at_the_bound():
    bomb = lzfse.compress(bytes(64 << 20))  # 64 MiB of zeros in a few kilobytes
    with pytest.raises(SceneError, match=r"expands to 4097 or more bytes, expected 4096"):
        lzfse_decode(bomb, 4096, "rgbd/0.depth")


@pytest.mark.parametrize("data", [b"", b"not lzfse at all", lzfse.compress(bytes(100))[:-6]])
def test_garbage_and_short_members_are_refused(data):
    with pytest.raises(SceneError, match="rgbd/0.depth"):
        lzfse_decode(data, 100, "rgbd/0.depth")


def test_an_r3d_with_an_oversized_depth_member_is_refused(tmp_path):
    rng = np.random.default_rng(1)
    rgb = [rng.integers(0, 255, (24, 32, 3), np.uint8) for _ in range(2)]
    depth = [np.full((12, 16), 1.5, np.float32) for _ in range(2)]
    confidence = [np.full((12, 16), 2, np.uint8) for _ in range(2)]
    capture = Capture(
        rgb, depth, confidence, np.array([30.0, 30.0, 16.0, 12.0]), np.stack([np.eye(4)] * 2), np.array([0.0, 0.1])
    )
    path = WRITERS["r3d"](capture, tmp_path / "scan")
    broken = tmp_path / "broken.r3d"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            target.writestr(item, lzfse.compress(bytes(32 << 20)) if item.filename == "rgbd/1.depth" else data)
    assert open_scene(path).frame(1).depth.shape == (12, 16)
    with pytest.raises(SceneError, match="rgbd/1.depth .* expands to"):
        open_scene(broken).frame(1)
