"""Bad capture folders, generated: every one refused by the CLI with one line naming what is
wrong, exit 2, no traceback, nothing written (issue 15). One good folder of each layout is
broken one way at a time."""

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from scene_r1.backend.cli.main import main
from scene_r1.backend.data.images import write_exr_depth
from scene_r1.backend.data.readers import write_scene
from scene_r1.backend.data.synth import SynthConfig, build_synthetic

W, H, N = 32, 24, 4
BOX = {"canonical": "0,0,31,23", "7scenes": "6,4,26,20", "scannet": "6,4,26,20", "record3d": "6,4,26,20"}


def depth_with_a_block() -> np.ndarray:
    """A wall 1.5 m away with a block 1 m away in the middle: something to lift."""
    depth = np.full((H, W), 1.5, np.float32)
    depth[8:16, 10:22] = 1.0
    return depth


def png_bomb(width: int = 20000, height: int = 20000) -> bytes:
    """A PNG header declaring a huge image, then a little data: refused from its header alone."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    data = zlib.compress(bytes(1 << 16))
    return b"\x89PNG\r\n\x1a\n" + chunk + struct.pack(">I", len(data)) + b"IDAT" + data + b"\x00" * 4


def make_canonical(folder: Path) -> None:
    synthetic = build_synthetic(SynthConfig(seed=5, frames=N, width=W, height=H))
    write_scene(synthetic.scene, folder, rgb_format="png")


def make_seven_scenes(folder: Path) -> None:
    folder.mkdir(parents=True)
    for n in range(N):
        cv2.imwrite(str(folder / f"frame-{n:06d}.color.png"), np.full((H, W, 3), 90, np.uint8))
        cv2.imwrite(str(folder / f"frame-{n:06d}.depth.png"), (depth_with_a_block() * 1000).astype(np.uint16))
        pose = np.eye(4)
        pose[0, 3] = 0.01 * n
        np.savetxt(folder / f"frame-{n:06d}.pose.txt", pose)
    np.savetxt(folder / "camera-intrinsics.txt", [[30, 0, 16], [0, 30, 12], [0, 0, 1]])


def make_scannet(folder: Path) -> None:
    for sub in ("color", "depth", "pose", "intrinsic"):
        (folder / sub).mkdir(parents=True)
    for n in range(N):
        cv2.imwrite(str(folder / "color" / f"{n}.jpg"), np.full((H, W, 3), 90, np.uint8))
        cv2.imwrite(str(folder / "depth" / f"{n}.png"), (depth_with_a_block() * 1000).astype(np.uint16))
        np.savetxt(folder / "pose" / f"{n}.txt", np.eye(4))
    k = np.eye(4)
    k[0, 0] = k[1, 1] = 30
    k[0, 2], k[1, 2] = 16, 12
    np.savetxt(folder / "intrinsic" / "intrinsic_color.txt", k)


def make_record3d(folder: Path) -> None:
    (folder / "rgbd").mkdir(parents=True)
    for n in range(N):
        cv2.imwrite(str(folder / "rgbd" / f"{n}.jpg"), np.full((H, W, 3), 90, np.uint8))
        write_exr_depth(folder / "rgbd" / f"{n}.exr", depth_with_a_block())
    meta = {"w": W, "h": H, "K": [30, 0, 0, 0, 30, 0, 16, 12, 1], "poses": [[0, 0, 0, 1, 0, 0, 0]] * N, "fps": 30}
    (folder / "metadata.json").write_text(json.dumps(meta))


def edit_json(name: str, change):
    def apply(folder: Path) -> None:
        path = folder / name
        meta = json.loads(path.read_text())
        result = change(meta)
        path.write_text(json.dumps(meta if result is None else result, allow_nan=True))

    return apply


def frame_entry(key: str, value):
    return edit_json("scene.json", lambda m: m["frames"][1].__setitem__(key, value))


def write(relative: str, data: bytes):
    def apply(folder: Path) -> None:
        path = folder / relative
        if path.is_dir():
            shutil.rmtree(path)
        path.write_bytes(data)

    return apply


def replace_with(relative: str, kind: str):
    def apply(folder: Path) -> None:
        path = folder / relative
        path.unlink()
        if kind == "dir":
            path.mkdir()
        elif kind == "loop":
            os.symlink(path.name, path)
        elif kind == "dangling":
            os.symlink("nowhere.png", path)

    return apply


def image(relative: str, array: np.ndarray):
    return lambda folder: cv2.imwrite(str(folder / relative), array)


def remove(relative: str):
    return lambda folder: (folder / relative).unlink()


def text(relative: str, content: str):
    return lambda folder: (folder / relative).write_text(content)


CANONICAL = {
    "json-garbage": write("scene.json", b'{"format": "scene-r1", '),
    "json-not-utf8": write("scene.json", b'{"format": "scene-r1", "name": "\xff\xfe"}'),
    "json-list": write("scene.json", b'["format", "scene-r1"]'),
    "json-deep": write("scene.json", b'{"format": "scene-r1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"),
    "json-dir": replace_with("scene.json", "dir"),
    "json-loop": replace_with("scene.json", "loop"),
    "version-string": edit_json("scene.json", lambda m: m.update(version="2")),
    "version-high": edit_json("scene.json", lambda m: m.update(version=99)),
    "version-null": edit_json("scene.json", lambda m: m.update(version=None)),
    "frames-missing": edit_json("scene.json", lambda m: m.pop("frames")),
    "frames-object": edit_json("scene.json", lambda m: m.update(frames={"a": 1})),
    "frames-number": edit_json("scene.json", lambda m: m.update(frames=3)),
    "frames-empty": edit_json("scene.json", lambda m: m.update(frames=[])),
    "frame-string": edit_json("scene.json", lambda m: m["frames"].__setitem__(1, "rgb/000001.png")),
    "rgb-key-missing": edit_json("scene.json", lambda m: m["frames"][1].pop("rgb")),
    "rgb-path-number": frame_entry("rgb", 7),
    "rgb-path-escapes": frame_entry("rgb", "../../../../etc/passwd"),
    "rgb-path-absolute": frame_entry("rgb", "/etc/hostname"),
    "color-size-short": edit_json("scene.json", lambda m: m.update(color_size=[256])),
    "color-size-nan": edit_json("scene.json", lambda m: m.update(color_size=[float("nan"), 24])),
    "color-size-text": edit_json("scene.json", lambda m: m.update(color_size=["a", "b"])),
    "color-size-negative": edit_json("scene.json", lambda m: m.update(color_size=[-32, 24])),
    "color-size-huge": edit_json("scene.json", lambda m: m.update(color_size=[100000, 100000])),
    "color-size-wrong": edit_json("scene.json", lambda m: m.update(color_size=[64, 48])),
    "depth-size-missing": edit_json("scene.json", lambda m: m.pop("depth_size")),
    "depth-scale-text": edit_json("scene.json", lambda m: m.update(depth_scale="mm")),
    "depth-scale-zero": edit_json("scene.json", lambda m: m.update(depth_scale=0)),
    "depth-scale-nan": edit_json("scene.json", lambda m: m.update(depth_scale=float("nan"))),
    "name-list": edit_json("scene.json", lambda m: m.update(name=["../x"])),
    "intrinsics-short": frame_entry("intrinsics", [30, 30, 16]),
    "intrinsics-zero-focal": frame_entry("intrinsics", [0, 30, 16, 12]),
    "intrinsics-nan": frame_entry("intrinsics", [float("nan"), 30, 16, 12]),
    "pose-3x3": frame_entry("pose", np.eye(3).tolist()),
    "pose-not-rigid": frame_entry("pose", (np.eye(4) * 2).tolist()),
    "pose-text": frame_entry("pose", [["a"] * 4] * 4),
    "pose-inf": frame_entry("pose", [[float("inf")] * 4] * 4),
    "timestamp-text": frame_entry("timestamp", "noon"),
    "timestamps-backwards": frame_entry("timestamp", -5.0),
    "rgb-missing": remove("rgb/000002.png"),
    "rgb-empty": write("rgb/000002.png", b""),
    "rgb-garbage": write("rgb/000002.png", b"not an image at all" * 10),
    "rgb-dir": replace_with("rgb/000002.png", "dir"),
    "rgb-loop": replace_with("rgb/000002.png", "loop"),
    "rgb-dangling": replace_with("rgb/000002.png", "dangling"),
    "rgb-wrong-size": image("rgb/000002.png", np.zeros((48, 64, 3), np.uint8)),
    "rgb-bomb": write("rgb/000003.png", png_bomb()),
    "depth-missing": remove("depth/000001.png"),
    "depth-8bit": image("depth/000001.png", np.zeros((H, W), np.uint8)),
    "depth-rgb": image("depth/000001.png", np.zeros((H, W, 3), np.uint16)),
    "depth-wrong-size": image("depth/000001.png", np.zeros((12, 16), np.uint16)),
    "depth-garbage": write("depth/000001.png", b"\x89PNG\r\n\x1a\n garbage"),
    "depth-bomb": write("depth/000003.png", png_bomb()),
}
SEVEN_SCENES = {
    "pose-text": text("frame-000001.pose.txt", "one two three"),
    "pose-3x4": lambda f: np.savetxt(f / "frame-000001.pose.txt", np.eye(4)[:3]),
    "pose-nan": lambda f: np.savetxt(f / "frame-000001.pose.txt", np.full((4, 4), np.nan)),
    "pose-not-utf8": write("frame-000001.pose.txt", b"\xff\xfe\x00\x01"),
    "pose-dir": replace_with("frame-000001.pose.txt", "dir"),
    "depth-missing": remove("frame-000002.depth.png"),
    "pose-missing": remove("frame-000002.pose.txt"),
    "intrinsics-zero-focal": lambda f: np.savetxt(f / "camera-intrinsics.txt", [[0, 0, 16], [0, 0, 12], [0, 0, 1]]),
    "intrinsics-garbage": text("camera-intrinsics.txt", "fx=30"),
    "intrinsics-2x2": lambda f: np.savetxt(f / "camera-intrinsics.txt", np.eye(2)),
    "color-corrupt-later": write("frame-000003.color.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40),
    "color-bomb-later": write("frame-000003.color.png", png_bomb()),
    "color-first-bomb": write("frame-000000.color.png", png_bomb()),
}
SCANNET = {
    "poses-all-inf": lambda f: [np.savetxt(f / "pose" / f"{n}.txt", np.full((4, 4), -np.inf)) for n in range(N)],
    "intrinsic-missing": remove("intrinsic/intrinsic_color.txt"),
    "intrinsic-garbage": text("intrinsic/intrinsic_color.txt", "intrinsic"),
    "intrinsic-zero-focal": lambda f: np.savetxt(f / "intrinsic" / "intrinsic_color.txt", np.zeros((4, 4))),
    "color-empty-folder": lambda f: [p.unlink() for p in (f / "color").iterdir()],
    "depth-missing": remove("depth/2.png"),
}
RECORD3D = {
    "meta-garbage": text("metadata.json", "{"),
    "meta-k-short": edit_json("metadata.json", lambda m: m.update(K=[1, 2, 3])),
    "meta-poses-ragged": edit_json("metadata.json", lambda m: m.update(poses=[[0, 0, 0]])),
    "meta-width-text": edit_json("metadata.json", lambda m: m.update(w="wide")),
    "meta-zero-quaternion": edit_json("metadata.json", lambda m: m.update(poses=[[0] * 7] * N)),
    "meta-fps-zero": edit_json("metadata.json", lambda m: m.update(fps=0)),
    "exr-missing": remove("rgbd/2.exr"),
    "exr-garbage": write("rgbd/0.exr", b"not an exr"),
}
LAYOUTS = {
    "canonical": make_canonical,
    "7scenes": make_seven_scenes,
    "scannet": make_scannet,
    "record3d": make_record3d,
}
CASES = [
    (layout, name, breaker)
    for layout, table in (
        ("canonical", CANONICAL),
        ("7scenes", SEVEN_SCENES),
        ("scannet", SCANNET),
        ("record3d", RECORD3D),
    )
    for name, breaker in table.items()
]


@pytest.fixture(scope="module")
def good_folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("good")
    folders = {}
    for layout, make in LAYOUTS.items():
        make(root / layout)
        folders[layout] = root / layout
    return folders


def lift(folder: Path, out: Path, capsys, layout: str) -> tuple[int, str]:
    capsys.readouterr()
    # --all-frames: every frame is read (by default only the views picked by camera motion are,
    # and a broken frame that is never read cannot be reported)
    code = main(["lift", str(folder), "--frame", "0", "--box", BOX[layout], "--out", str(out), "--all-frames"])
    return code, capsys.readouterr().err


def test_the_good_folders_lift(good_folders, tmp_path, capsys):
    for layout, folder in good_folders.items():
        code, err = lift(folder, tmp_path / layout, capsys, layout)
        assert code == 0 and (tmp_path / layout / "result.json").is_file(), (layout, err)


def test_there_are_at_least_60_bad_cases():
    assert len(CASES) >= 60


@pytest.mark.parametrize("layout, name, breaker", CASES, ids=[f"{layout}-{name}" for layout, name, _ in CASES])
def test_a_bad_capture_gets_one_line_and_nothing_is_written(good_folders, tmp_path, capsys, layout, name, breaker):
    folder = tmp_path / "capture"
    shutil.copytree(good_folders[layout], folder, symlinks=True)
    breaker(folder)
    out = tmp_path / "out"
    code, err = lift(folder, out, capsys, layout)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("scene-r1 lift: "), err
    assert "internal error" not in err and "Traceback" not in err
    assert not out.exists()
    if "bomb" in name:  # refused from the header, before 1.2 GB of pixels are decoded
        assert "20000x20000" in err or "decompression bomb" in err, err
