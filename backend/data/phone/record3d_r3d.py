"""Record3D's own `.r3d` file: a zip archive holding `metadata` (JSON: w, h colour size, 720x960
portrait for LiDAR scans; dw, dh depth size, 192x256; K, the 3x3 colour intrinsics stored
column-major [fx, 0, 0, 0, fy, 0, cx, cy, 1]; perFrameIntrinsicCoeffs, [fx, fy, cx, cy] per frame in
newer versions; fps; poses, one [qx, qy, qz, qw, x, y, z] camera-to-world per frame in ARKit's camera
axes; initPose; frameTimestamps) and per frame i `rgbd/i.jpg`, `rgbd/i.depth` (LZFSE-compressed
float32 metres, dh x dw, NaN where unknown) and `rgbd/i.conf` (LZFSE-compressed uint8: 0 low,
1 medium, 2 high; LiDAR only). Sources: nerfstudio's record3d_utils (quaternion order, K transposed),
codekansas/usa's r3d dataset (dw/dh, frameTimestamps, conf, NaN depth; older files lack dw/dh, whose
size is then read off the first depth map). Read in place, one member at a time; the same files
unzipped into a folder are read too.
"""

from __future__ import annotations

import ctypes
import functools
import json
import re
import threading
import zipfile
from pathlib import Path

import cv2
import numpy as np

from ....shared.scene import Scene, SceneError
from ..images import COLOR_FLAGS, check_dimensions
from .common import (
    ARKIT_MEDIUM,
    LoaderSource,
    arkit_to_opencv,
    check_principal_point,
    intrinsics_from_flat,
    masked_depth,
    matrix_from,
    quaternion_pose,
    relative_times,
)

R3D_SUFFIX = ".r3d"


def is_r3d(path: Path) -> bool:
    if path.is_file():
        return path.suffix.lower() == R3D_SUFFIX
    return (path / "metadata").is_file() and (path / "rgbd" / "0.depth").is_file()  # an unzipped .r3d


class R3DArchive:
    """The members of a .r3d file, or of the folder it was unzipped into."""

    def __init__(self, path: Path):
        self.path, self.zip = path, None
        if path.is_dir():
            self.names = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}
        else:
            try:
                self.zip = zipfile.ZipFile(path)
            except (zipfile.BadZipFile, OSError) as error:
                raise SceneError(f"{path} is not a Record3D .r3d archive (not a zip file: {error})") from None
            self.names = set(self.zip.namelist())
        self._lock = threading.Lock()

    def read(self, name: str) -> bytes:
        if name not in self.names:
            raise SceneError(f"{self.path} lacks {name}")
        with self._lock:
            try:
                return (self.path / name).read_bytes() if self.zip is None else self.zip.read(name)
            except (zipfile.BadZipFile, OSError, RuntimeError) as error:
                raise SceneError(f"cannot read {name} from {self.path}: {error}") from None

    def lzfse(self, name: str, dtype, shape: tuple[int, int]) -> np.ndarray:
        expected = shape[0] * shape[1] * np.dtype(dtype).itemsize
        raw = lzfse_decode(self.read(name), expected, f"{name} in {self.path}")
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()


@functools.cache
def _lzfse_decoder():
    """The reference decoder's lzfse_decode_buffer, exported by the `lzfse` wheel's extension module."""
    import lzfse

    library = ctypes.CDLL(lzfse.__file__)
    try:
        decode = library.lzfse_decode_buffer
    except AttributeError:
        raise SceneError("this build of the lzfse package does not export lzfse_decode_buffer") from None
    decode.restype = ctypes.c_size_t
    decode.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_void_p]
    return decode


def lzfse_decode(data: bytes, expected: int, what: str) -> bytes:
    """LZFSE data that must expand to exactly `expected` bytes, decoded into a buffer of expected + 1
    bytes: a member that would expand further is refused without ever being expanded."""
    out = ctypes.create_string_buffer(expected + 1)
    written = _lzfse_decoder()(out, expected + 1, data, len(data), None) if data else 0
    if written == 0:
        raise SceneError(f"{what} is not LZFSE data (or is empty)")
    if written != expected:
        more = " or more" if written > expected else ""
        raise SceneError(f"{what} expands to {written}{more} bytes, expected {expected}")
    return out.raw[:expected]


def lzfse_decoded_size(data: bytes, limit: int, what: str) -> int:
    """How many bytes LZFSE data expands to, decoded into a buffer of limit + 1 bytes at most."""
    out = ctypes.create_string_buffer(limit + 1)
    written = _lzfse_decoder()(out, limit + 1, data, len(data), None) if data else 0
    if written == 0 or written > limit:
        raise SceneError(f"{what} is not LZFSE data of a depth map at most the colour image's size")
    return written


def _depth_size(archive: R3DArchive, width: int, height: int) -> tuple[int, int]:
    """(dw, dh) of files that predate the dw/dh fields: the first depth map's pixel count, at the
    colour image's aspect ratio."""
    pixels = lzfse_decoded_size(archive.read("rgbd/0.depth"), width * height * 4, "rgbd/0.depth") // 4
    dw = int(round(np.sqrt(pixels * width / height)))
    if dw <= 0 or pixels % dw or abs(pixels // dw * width - dw * height) > height:
        raise SceneError(
            f"{archive.path}: metadata has no dw/dh and rgbd/0.depth's {pixels} pixels fit no {width}:{height} size"
        )
    return dw, pixels // dw


def _metadata(archive: R3DArchive) -> dict:
    try:
        meta = json.loads(archive.read("metadata").decode("utf-8"))
        sizes = {k: int(meta[k]) for k in ("w", "h")}
        if "dw" in meta and "dh" in meta:
            sizes |= {k: int(meta[k]) for k in ("dw", "dh")}
        poses = np.asarray(meta["poses"], dtype=np.float64)
        fps = float(meta.get("fps", 60))
    except (KeyError, TypeError, ValueError, UnicodeDecodeError, AttributeError) as error:
        raise SceneError(f"{archive.path}: metadata is not Record3D's ({type(error).__name__}: {error})") from None
    if not np.isfinite(fps) or fps <= 0:
        raise SceneError(f"{archive.path}: metadata fps must be a positive number, got {meta.get('fps')!r}")
    if poses.ndim != 2 or poses.shape[1] != 7 or len(poses) == 0:
        raise SceneError(f"{archive.path}: metadata poses must be [qx, qy, qz, qw, x, y, z] per frame")
    if "dw" not in sizes:
        sizes["dw"], sizes["dh"] = _depth_size(archive, sizes["w"], sizes["h"])
    return meta | sizes | {"poses": poses, "fps": fps}


def record3d_intrinsics(meta: dict, n: int, what: str) -> np.ndarray:
    """(n, 4) fx, fy, cx, cy of the colour image: perFrameIntrinsicCoeffs when it lists every frame,
    else K (column-major as Record3D writes it; a row-major K is recognised by its zeros)."""
    per_frame = meta.get("perFrameIntrinsicCoeffs")
    if isinstance(per_frame, list) and len(per_frame) == n:
        coeffs = matrix_from(per_frame, (n, 4), f"{what} perFrameIntrinsicCoeffs")
        if (coeffs[:, :2] <= 0).any():
            raise SceneError(f"{what} perFrameIntrinsicCoeffs holds a focal length <= 0")
    else:
        coeffs = np.tile(intrinsics_from_flat(meta.get("K"), f"{what} K"), (n, 1))
    for k in coeffs[:: max(1, n // 16)]:
        check_principal_point(k, (int(meta["w"]), int(meta["h"])), f"{what} intrinsics")
    return coeffs


def open_r3d(path: Path) -> Scene:
    archive = R3DArchive(path)
    meta = _metadata(archive)
    n, depth_shape = len(meta["poses"]), (meta["dh"], meta["dw"])
    intrinsics = record3d_intrinsics(meta, n, f"{path.name} metadata")
    missing = [
        f"rgbd/{i}.{ext}" for i in range(n) for ext in ("jpg", "depth") if f"rgbd/{i}.{ext}" not in archive.names
    ]
    if missing:
        raise SceneError(f"{path} lists {n} frames but lacks {len(missing)} member(s), e.g. {missing[0]}")
    stamps = meta.get("frameTimestamps")
    times = relative_times(stamps) if isinstance(stamps, list) and len(stamps) == n else np.arange(n) / meta["fps"]
    # A frame is read only with its pose: members past the last pose (an interrupted export) are said.
    extra = sum(1 for name in archive.names if re.fullmatch(r"rgbd/\d+\.jpg", name) and int(name[5:-4]) >= n)
    notes = [f"{path.name} holds {extra} frame(s) past its {n} poses; they were left out"] if extra else []

    def load_rgb(i: int) -> np.ndarray:
        data = np.frombuffer(archive.read(f"rgbd/{i}.jpg"), np.uint8)
        check_dimensions(data, f"rgbd/{i}.jpg in {path}", (meta["w"], meta["h"]))
        image = cv2.imdecode(data, COLOR_FLAGS)
        if image is None:
            raise SceneError(f"cannot decode rgbd/{i}.jpg in {path}")
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)

    def load_depth(i: int) -> np.ndarray:
        depth = archive.lzfse(f"rgbd/{i}.depth", np.float32, depth_shape)
        depth[~np.isfinite(depth)] = 0.0
        conf_name = f"rgbd/{i}.conf"
        conf = archive.lzfse(conf_name, np.uint8, depth_shape) if conf_name in archive.names else None
        return masked_depth(depth, conf, ARKIT_MEDIUM, Path(conf_name))

    return Scene(
        LoaderSource(n, load_rgb, load_depth),
        intrinsics,
        arkit_to_opencv(
            np.stack([quaternion_pose(*p, where=f"{path.name} metadata pose {i}") for i, p in enumerate(meta["poses"])])
        ),
        times,
        (meta["w"], meta["h"]),
        (meta["dw"], meta["dh"]),
        name=path.stem if path.is_file() else path.name,
        format="r3d",
        notes=notes,
    )
