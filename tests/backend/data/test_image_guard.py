"""The image-size guard reads the whole header, however long the segments before the frame
header, and refuses what it cannot read; phone confidence maps and .r3d colour go through it."""

import struct
import zipfile
import zlib

import cv2
import numpy as np
import pytest
from phone_writers import WRITERS, Capture

from scene_r1.backend.data import open_scene
from scene_r1.backend.data.images import read_color
from scene_r1.backend.data.phone.common import read_confidence_png
from scene_r1.shared.scene import SceneError


def jpeg_with_a_long_app1(width: int = 20000, height: int = 20000) -> bytes:
    """A JPEG whose 65 KB APP1 segment hides a frame header declaring a huge image."""
    app1 = b"\xff\xe1" + struct.pack(">H", 65000) + b"Exif\x00\x00" + bytes(65000 - 8)
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 17, 8, height, width, 3) + bytes(9)
    return b"\xff\xd8" + app1 + sof + b"\xff\xd9"


def png_bomb(width: int = 20000, height: int = 20000, colour: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, colour, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    data = zlib.compress(bytes(1 << 16))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", len(data)) + b"IDAT" + data + b"\x00" * 4


def test_a_frame_header_past_64_kib_is_still_checked(tmp_path):
    path = tmp_path / "big.jpg"
    path.write_bytes(jpeg_with_a_long_app1())
    with pytest.raises(SceneError, match="20000x20000"):
        read_color(path)


@pytest.mark.parametrize("data", [b"GIF89a" + bytes(100), b"\xff\xd8\xff\xe0\x00\x10" + bytes(10), b"\x89PNG\r\n"])
def test_an_unreadable_header_is_refused(tmp_path, data):
    path = tmp_path / "odd.png"
    path.write_bytes(data)
    with pytest.raises(SceneError, match="readable header"):
        read_color(path)


def test_a_good_image_still_reads(tmp_path):
    path = tmp_path / "ok.png"
    cv2.imwrite(str(path), np.full((12, 16, 3), 40, np.uint8))
    assert read_color(path, (16, 12)).shape == (12, 16, 3)


def test_a_confidence_map_bomb_is_refused_from_its_header(tmp_path):
    path = tmp_path / "conf.png"
    path.write_bytes(png_bomb())
    with pytest.raises(SceneError, match="20000x20000"):
        read_confidence_png(path)


def test_an_r3d_colour_bomb_is_refused_from_its_header(tmp_path):
    rng = np.random.default_rng(2)
    rgb = [rng.integers(0, 255, (24, 32, 3), np.uint8) for _ in range(2)]
    depth = [np.full((12, 16), 1.5, np.float32) for _ in range(2)]
    confidence = [np.full((12, 16), 2, np.uint8) for _ in range(2)]
    poses, times = np.stack([np.eye(4)] * 2), np.array([0.0, 0.1])
    path = WRITERS["r3d"](Capture(rgb, depth, confidence, np.array([30.0, 30, 16, 12]), poses, times), tmp_path / "a")
    broken = tmp_path / "broken.r3d"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(broken, "w") as target:
        for item in source.infolist():
            target.writestr(item, jpeg_with_a_long_app1() if item.filename == "rgbd/0.jpg" else source.read(item))
    assert open_scene(path).frame(0).rgb.shape == (24, 32, 3)
    with pytest.raises(SceneError, match="rgbd/0.jpg .*20000x20000"):
        open_scene(broken).frame(0)
