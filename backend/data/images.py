"""Decoding and encoding of the image files RGB-D captures use, with clear errors."""

from __future__ import annotations

import struct
from pathlib import Path

import cv2
import numpy as np

from ...shared.image_header import HeaderError, image_header
from ...shared.scene import MAX_IMAGE_SIDE, SceneError

# The stored pixel grid, never turned by an EXIF orientation tag: capture intrinsics describe the
# sensor's grid (3D Scanner App writes 1920x1440 landscape JPEGs tagged orientation 6 with landscape
# intrinsics), and OpenCV would otherwise rotate the picture away from them.
COLOR_FLAGS = cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION

# A frame file never legitimately needs more; the check runs before decoding.
MAX_FILE_BYTES = 256 * 1024 * 1024


def _read_bytes(path: Path) -> np.ndarray:
    try:
        if not path.is_file():
            raise SceneError(f"missing file: {path}" if not path.exists() else f"{path} is not a file")
        size = path.stat().st_size
        if size == 0:
            raise SceneError(f"empty file: {path}")
        if size > MAX_FILE_BYTES:
            raise SceneError(f"{path} is {size / 1e6:.0f} MB, larger than any frame should be")
        return np.fromfile(path, dtype=np.uint8)
    except OSError as error:  # a symlink loop, no permission, a vanished file
        raise SceneError(f"cannot read {path}: {error.strerror or error}") from None


def check_dimensions(data: np.ndarray, path: Path | str, expected: tuple[int, int] | None = None) -> None:
    """The image's own header, before decoding: a PNG or JPEG whose header reads (the whole buffer is
    parsed, however long its leading segments), no side above MAX_IMAGE_SIDE, and the size the
    capture says (width, height) when given. A 20000x20000 frame is refused, not decoded."""
    try:
        width, height, _, _ = image_header(memoryview(np.ascontiguousarray(data, dtype=np.uint8)).cast("B"))
    except (HeaderError, IndexError, ValueError, struct.error) as error:
        raise SceneError(f"{path} is not a PNG or JPEG image with a readable header ({error})") from None
    if not (0 < width <= MAX_IMAGE_SIDE and 0 < height <= MAX_IMAGE_SIDE):
        raise SceneError(f"{path} is {width}x{height}; sides must be between 1 and {MAX_IMAGE_SIDE} pixels")
    if expected is not None and (width, height) != tuple(expected):
        raise SceneError(f"{path} is {width}x{height} but the capture's frames are {expected[0]}x{expected[1]}")


def read_color(path: Path, expected: tuple[int, int] | None = None) -> np.ndarray:
    """HxWx3 uint8 RGB from a JPEG or PNG file (expected: its (width, height), checked first)."""
    data = _read_bytes(path)
    check_dimensions(data, path, expected)
    # imdecode on bytes rather than imread: works for any path encoding, and fails loudly.
    image = cv2.imdecode(data, COLOR_FLAGS)
    if image is None:
        raise SceneError(f"cannot decode colour image {path} (corrupt or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_depth_png(
    path: Path, metres_per_unit: float, invalid_values: tuple[int, ...] = (), expected: tuple[int, int] | None = None
) -> np.ndarray:
    """float32 metres from a 16-bit depth PNG; 0 and `invalid_values` become 0 (invalid)."""
    data = _read_bytes(path)
    check_dimensions(data, path, expected)
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise SceneError(f"cannot decode depth image {path} (corrupt or not an image)")
    if raw.ndim != 2 or raw.dtype != np.uint16:
        raise SceneError(
            f"depth image {path} must be a single-channel 16-bit PNG, got {raw.dtype} with shape {raw.shape}"
        )
    depth = raw.astype(np.float32) * np.float32(metres_per_unit)
    for value in invalid_values:
        depth[raw == value] = 0.0
    return depth


def read_label_png(path: Path) -> np.ndarray:
    data = _read_bytes(path)
    check_dimensions(data, path)
    raw = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 2:
        raise SceneError(f"cannot decode label image {path} (needs a single-channel PNG)")
    return raw.astype(np.int32)


def read_exr_depth(path: Path) -> np.ndarray:
    """float32 metres from a single-channel (or first-channel) OpenEXR depth file."""
    import OpenEXR  # OpenCV's wheels ship without EXR support, so use the format's own library

    _read_bytes(path)  # existence and size checks with our wording
    try:
        with OpenEXR.File(str(path)) as exr:
            channels = exr.channels()
            name = next((c for c in ("Z", "Y", "R", "depth", "Depth") if c in channels), None) or next(iter(channels))
            pixels = np.asarray(channels[name].pixels)
    except Exception as error:  # OpenEXR raises bare RuntimeErrors
        raise SceneError(f"cannot decode EXR depth {path}: {error}") from None
    if pixels.ndim == 3:
        pixels = pixels[..., 0]
    depth = pixels.astype(np.float32)
    depth[~np.isfinite(depth)] = np.nan
    return depth


def write_color(path: Path, rgb: np.ndarray, jpeg_quality: int = 95) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, jpeg_quality] if path.suffix.lower() in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise SceneError(f"cannot encode {path}")
    data.tofile(path)


def write_png16(path: Path, values: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", values.astype(np.uint16))
    if not ok:
        raise SceneError(f"cannot encode {path}")
    data.tofile(path)


def depth_to_units(depth: np.ndarray, metres_per_unit: float) -> np.ndarray:
    """Metres to 16-bit units for a depth PNG; invalid (0/NaN) and out-of-range become 0."""
    units = np.nan_to_num(depth, nan=0.0) / metres_per_unit
    units = np.rint(units)
    units[(units < 0) | (units > 65535)] = 0
    return units.astype(np.uint16)


def write_exr_depth(path: Path, depth: np.ndarray, channel: str = "Z") -> None:
    import OpenEXR

    header = {"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}
    with OpenEXR.File(header, {channel: np.ascontiguousarray(depth, dtype=np.float32)}) as exr:
        exr.write(str(path))
