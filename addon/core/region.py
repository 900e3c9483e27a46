"""The viewport's camera frame and the captured image, exactly.

Looking through the camera, Blender draws the render's frame (its aspect, sensor fit and lens shift
included: `Camera.view_frame`) somewhere in the region. A rectangle dragged or a point clicked there
is first made relative to that frame (0..1 from the left and from the top), which is a place on the
render's image plane; a ray through it is then projected with the capture's own intrinsics. Nothing
assumes that the capture has the render's aspect or resolution, so the mapping is exact for any
aspect, fit, shift, pixel aspect and capture size.

Coordinates: region pixels have y up; image boxes are edge coordinates (x right, y down, [0, W] spans
the image); pixel centres sit at integers (OpenCV), so edge = centre + 0.5.
"""

from __future__ import annotations

import numpy as np

from ...shared.camera import Intrinsics

MIN_BOX_PIXELS = 2.0


def frame_fraction(points, frame_corners) -> np.ndarray:
    """Region pixels (y up) -> fractions of the camera frame (0..1 from the left, 0..1 from the top)."""
    corners = np.asarray(frame_corners, float).reshape(-1, 2)
    if len(corners) < 2:
        raise ValueError("the camera frame is not visible in this view (look through the camera: Numpad 0)")
    low, high = corners.min(axis=0), corners.max(axis=0)
    if (high - low).min() <= 0:
        raise ValueError("the camera frame is not visible in this view (look through the camera: Numpad 0)")
    fractions = (np.asarray(points, float).reshape(-1, 2) - low) / (high - low)
    fractions[:, 1] = 1.0 - fractions[:, 1]
    return fractions


def fraction_to_pixels(fractions, render: Intrinsics, capture: Intrinsics) -> np.ndarray:
    """Fractions of the render's frame -> edge coordinates in the captured image (same camera pose)."""
    fractions = np.asarray(fractions, float).reshape(-1, 2)
    width, height = render.size
    centres = fractions * np.array([width, height]) - 0.5  # render pixel-centre coordinates
    rays = np.stack([(centres[:, 0] - render.cx) / render.fx, (centres[:, 1] - render.cy) / render.fy], axis=1)
    return np.stack([rays[:, 0] * capture.fx + capture.cx, rays[:, 1] * capture.fy + capture.cy], axis=1) + 0.5


def region_box_to_frame(start, end, frame_corners, render: Intrinsics, capture: Intrinsics) -> list[float]:
    """A rectangle dragged over the camera view (region pixels) -> [x1, y1, x2, y2] in the captured
    image's edge coordinates, clipped to the image."""
    fractions = np.clip(frame_fraction([start, end], frame_corners), 0.0, 1.0)
    pixels = fraction_to_pixels(fractions, render, capture)
    width, height = capture.size
    xs, ys = np.clip(pixels[:, 0], 0, width), np.clip(pixels[:, 1], 0, height)
    box = [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]
    if box[2] - box[0] < MIN_BOX_PIXELS or box[3] - box[1] < MIN_BOX_PIXELS:
        raise ValueError("the rectangle is too small, or outside the camera frame")
    return box


def region_point_to_pixel(point, frame_corners, render: Intrinsics, capture: Intrinsics) -> tuple[int, int]:
    """A click over the camera view -> the (column, row) of the captured pixel under it."""
    fraction = frame_fraction([point], frame_corners)[0]
    if not ((fraction >= 0.0) & (fraction <= 1.0)).all():
        raise ValueError("the click is outside the camera frame")
    x, y = fraction_to_pixels(fraction, render, capture)[0]
    width, height = capture.size
    return min(max(int(np.floor(x)), 0), width - 1), min(max(int(np.floor(y)), 0), height - 1)


def capture_size(
    resolution_x: int,
    resolution_y: int,
    max_width: int,
    max_height: int,
    pixel_aspect_x: float = 1.0,
    pixel_aspect_y: float = 1.0,
) -> tuple[int, int]:
    """The largest image with the render's displayed aspect that fits max_width x max_height (square
    pixels): what the capture renders for the camera's own view, so its frame is the viewport's."""
    if min(resolution_x, resolution_y, max_width, max_height) <= 0 or min(pixel_aspect_x, pixel_aspect_y) <= 0:
        raise ValueError(
            f"resolution and size limits must be positive (render {resolution_x}x{resolution_y},"
            f" capture at most {max_width}x{max_height})"
        )
    aspect = (resolution_x * pixel_aspect_x) / (resolution_y * pixel_aspect_y)
    if max_width / max_height > aspect:
        width, height = max_height * aspect, float(max_height)
    else:
        width, height = float(max_width), max_width / aspect
    return max(8, int(round(width))), max(8, int(round(height)))


def camera_intrinsics(camera, render, size: tuple[int, int]) -> tuple[Intrinsics, Intrinsics]:
    """(render, capture) intrinsics of a camera: at the render's resolution (with its pixel aspect),
    and at `size` (square pixels) for the same frustum. `camera` and `render` carry Blender's field
    names (lens, sensor_width, sensor_height, sensor_fit, shift_x, shift_y; resolution_x,
    resolution_y, resolution_percentage, pixel_aspect_x, pixel_aspect_y)."""
    from ...shared.camera import intrinsics_from_blender

    scale = render.resolution_percentage / 100.0
    res_x, res_y = max(1, int(render.resolution_x * scale)), max(1, int(render.resolution_y * scale))
    lens = (camera.lens, camera.sensor_width, camera.sensor_height, camera.sensor_fit)
    shift = (camera.shift_x, camera.shift_y)
    at_render = intrinsics_from_blender(
        *lens, res_x, res_y, *shift, pixel_aspect_x=render.pixel_aspect_x, pixel_aspect_y=render.pixel_aspect_y
    )
    # The same frustum at `size` with square pixels: the horizontal span fixes the focal length, the
    # vertical centre is kept (a rounded size crops or pads at most half a pixel at top and bottom).
    width, height = size
    width_px, height_px = at_render.size
    left, right = (-0.5 - at_render.cx) / at_render.fx, (width_px - 0.5 - at_render.cx) / at_render.fx
    top, bottom = (-0.5 - at_render.cy) / at_render.fy, (height_px - 0.5 - at_render.cy) / at_render.fy
    focal = width / (right - left)
    at_capture = Intrinsics(
        focal, focal, -0.5 - focal * left, (height - 1) / 2 - focal * (top + bottom) / 2, width, height
    )
    return at_render, at_capture


def blender_camera_for(intrinsics: Intrinsics, sensor_width: float = 36.0) -> dict:
    """Camera data settings (horizontal fit) under which Blender renders exactly `intrinsics` at its
    size: the inverse of shared.camera.intrinsics_from_blender for square pixels."""
    width, height = intrinsics.size
    if abs(intrinsics.fx - intrinsics.fy) > 1e-6 * intrinsics.fx:
        raise ValueError(f"a capture camera needs square pixels (fx {intrinsics.fx} != fy {intrinsics.fy})")
    return {
        "sensor_fit": "HORIZONTAL",
        "sensor_width": sensor_width,
        "lens": intrinsics.fx * sensor_width / width,
        "shift_x": (width / 2.0 - 0.5 - intrinsics.cx) / width,
        "shift_y": (intrinsics.cy + 0.5 - height / 2.0) / width,
    }
