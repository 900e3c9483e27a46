"""Image dimensions from a PNG or JPEG header, read before anything is decoded.

A compressed image can declare (and inflate to) far more pixels than its bytes suggest; the
protocol compares these header dimensions with the buffer's declared shape before a decoder
allocates anything. Standard library only (runs in Blender's Python).
"""

from __future__ import annotations

import struct

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> channels: grey, RGB, palette (decoded to RGB), grey+alpha, RGBA.
PNG_CHANNELS = {0: 1, 2: 3, 3: 3, 4: 2, 6: 4}
# JPEG start-of-frame markers (baseline, extended, progressive, lossless...); C4, C8, CC are not frames.
JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


class HeaderError(ValueError):
    """Bytes that do not start like a PNG or JPEG image with readable dimensions."""


def image_header(data: bytes) -> tuple[int, int, int, int]:
    """(width, height, channels, bits per sample) from a PNG or JPEG header."""
    if data[:8] == PNG_SIGNATURE:
        return _png(data)
    if data[:2] == b"\xff\xd8":
        return _jpeg(data)
    raise HeaderError("neither a PNG nor a JPEG image")


def _png(data: bytes) -> tuple[int, int, int, int]:
    if len(data) < 29 or data[12:16] != b"IHDR":
        raise HeaderError("a PNG without an IHDR header")
    width, height, bits, colour = struct.unpack(">IIBB", data[16:26])
    if colour not in PNG_CHANNELS:
        raise HeaderError(f"a PNG of unknown colour type {colour}")
    return width, height, PNG_CHANNELS[colour], bits


def _jpeg(data: bytes) -> tuple[int, int, int, int]:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            raise HeaderError("a JPEG whose segments are out of step")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            position += 2
            continue
        (length,) = struct.unpack(">H", data[position + 2 : position + 4])
        if length < 2:
            raise HeaderError("a JPEG segment with a length below 2")
        if marker in JPEG_SOF:
            if position + 10 > len(data):
                break
            bits, height, width, channels = struct.unpack(">BHHB", data[position + 4 : position + 10])
            return width, height, channels, bits
        if marker == 0xD9:
            break
        position += 2 + length
    raise HeaderError("a JPEG without a frame header")
