"""The viewport's camera frame <-> captured pixels, for any render aspect, sensor fit, shift, pixel
aspect and capture size (the draw-box and click mapping; no Blender needed)."""

from types import SimpleNamespace

import numpy as np
import pytest

from scene_r1.addon.core.region import (
    blender_camera_for,
    camera_intrinsics,
    capture_size,
    frame_fraction,
    region_box_to_frame,
    region_point_to_pixel,
)
from scene_r1.shared.camera import intrinsics_from_blender

CAMERAS = [  # (lens, sensor fit, shift x, shift y, resolution x, y, pixel aspect x, y, capture limits)
    (50.0, "AUTO", 0.0, 0.0, 1920, 1080, 1.0, 1.0, (320, 240)),  # Blender's default 16:9 into a 4:3 limit
    (35.0, "AUTO", 0.1, -0.05, 1080, 1920, 1.0, 1.0, (320, 240)),  # portrait, shifted
    (24.0, "VERTICAL", 0.0, 0.2, 1000, 333, 1.0, 1.0, (320, 240)),  # odd aspect: the size rounds
    (85.0, "HORIZONTAL", -0.15, 0.0, 720, 576, 16.0, 15.0, (400, 400)),  # non-square pixels (PAL)
    (18.0, "AUTO", 0.0, 0.0, 640, 480, 1.0, 1.0, (320, 240)),
]


def camera_and_render(lens, fit, shift_x, shift_y, res_x, res_y, aspect_x, aspect_y, percentage=100):
    camera = SimpleNamespace(
        lens=lens, sensor_width=36.0, sensor_height=24.0, sensor_fit=fit, shift_x=shift_x, shift_y=shift_y
    )
    render = SimpleNamespace(
        resolution_x=res_x,
        resolution_y=res_y,
        resolution_percentage=percentage,
        pixel_aspect_x=aspect_x,
        pixel_aspect_y=aspect_y,
    )
    return camera, render


def project(points, intrinsics):
    """Camera-space points (OpenCV axes) -> edge coordinates in an image."""
    return (
        np.stack(
            [
                points[:, 0] / points[:, 2] * intrinsics.fx + intrinsics.cx,
                points[:, 1] / points[:, 2] * intrinsics.fy + intrinsics.cy,
            ],
            axis=1,
        )
        + 0.5
    )


def region_of(points_edge, render, frame_low, frame_high):
    """Where the viewport shows image points: the render's frame drawn at frame_low..frame_high (y up)."""
    width, height = render.size
    fraction = points_edge / np.array([width, height])
    return np.stack(
        [
            frame_low[0] + fraction[:, 0] * (frame_high[0] - frame_low[0]),
            frame_high[1] - fraction[:, 1] * (frame_high[1] - frame_low[1]),
        ],
        axis=1,
    )


@pytest.mark.parametrize("lens, fit, shift_x, shift_y, res_x, res_y, aspect_x, aspect_y, limits", CAMERAS)
def test_boxes_and_clicks_over_the_camera_view_land_on_the_same_scene_points(
    lens, fit, shift_x, shift_y, res_x, res_y, aspect_x, aspect_y, limits
):
    camera, render = camera_and_render(lens, fit, shift_x, shift_y, res_x, res_y, aspect_x, aspect_y)
    size = capture_size(res_x, res_y, *limits, aspect_x, aspect_y)
    at_render, at_capture = camera_intrinsics(camera, render, size)
    # The frame as the viewport draws it: at the render's displayed aspect, anywhere in the region.
    display = np.array([res_x * aspect_x, res_y * aspect_y])
    low = np.array([37.0, 91.0])
    high = low + display / display.max() * 700.0
    corners = [tuple(low), (high[0], low[1]), tuple(high), (low[0], high[1])]
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(40):
        points = np.column_stack([rng.uniform(-0.4, 0.4, 2), rng.uniform(-0.25, 0.25, 2), rng.uniform(2, 6, 2)])
        in_render = project(points, at_render)
        if not ((in_render >= 0) & (in_render <= at_render.size)).all():
            continue
        start, end = region_of(in_render, at_render, low, high)
        expected = project(points, at_capture)
        width, height = size
        expected = np.clip(expected, 0, [width, height])
        if (np.abs(expected[0] - expected[1]) < 3).any():
            continue
        box = region_box_to_frame(tuple(start), tuple(end), corners, at_render, at_capture)
        assert box == pytest.approx([*expected.min(axis=0), *expected.max(axis=0)], abs=1e-6)
        column, row = region_point_to_pixel(tuple(start), corners, at_render, at_capture)
        assert (column, row) == (min(int(expected[0, 0]), width - 1), min(int(expected[0, 1]), height - 1))
        checked += 1
    assert checked >= 8


@pytest.mark.parametrize("lens, fit, shift_x, shift_y, res_x, res_y, aspect_x, aspect_y, limits", CAMERAS)
def test_the_capture_sees_the_render_frustum_with_square_pixels(
    lens, fit, shift_x, shift_y, res_x, res_y, aspect_x, aspect_y, limits
):
    camera, render = camera_and_render(lens, fit, shift_x, shift_y, res_x, res_y, aspect_x, aspect_y, 50)
    size = capture_size(res_x, res_y, *limits, aspect_x, aspect_y)
    assert size[0] <= limits[0] and size[1] <= limits[1] and max(size[0] / limits[0], size[1] / limits[1]) > 0.99
    at_render, at_capture = camera_intrinsics(camera, render, size)
    assert at_render.size == (res_x // 2, res_y // 2)  # resolution percentage applies
    assert at_capture.fx == pytest.approx(at_capture.fy)

    # The frame's edges on the image plane (x/z, y/z): horizontal exact, vertical within half a pixel.
    def edges(k):
        width, height = k.size
        return np.array(
            [(-0.5 - k.cx) / k.fx, (width - 0.5 - k.cx) / k.fx, (-0.5 - k.cy) / k.fy, (height - 0.5 - k.cy) / k.fy]
        )

    render_edges, capture_edges = edges(at_render), edges(at_capture)
    assert capture_edges[:2] == pytest.approx(render_edges[:2], abs=1e-9)
    assert np.abs(capture_edges[2:] - render_edges[2:]).max() <= 0.5 / at_capture.fy + 1e-9
    # A Blender camera made from the capture's intrinsics gives them back exactly.
    data = blender_camera_for(at_capture)
    again = intrinsics_from_blender(
        data["lens"], data["sensor_width"], 24.0, data["sensor_fit"], *size, data["shift_x"], data["shift_y"]
    )
    assert again.as_array() == pytest.approx(at_capture.as_array(), abs=1e-9)


def test_bad_gestures_are_refused_in_words():
    k = intrinsics_from_blender(50, 36, 24, "AUTO", 320, 180)
    corners = [(0, 0), (320, 0), (320, 180), (0, 180)]
    with pytest.raises(ValueError, match="too small"):
        region_box_to_frame((10, 10), (11, 11), corners, k, k)
    with pytest.raises(ValueError, match="outside the camera frame"):
        region_box_to_frame((-50, -50), (-10, -10), corners, k, k)
    with pytest.raises(ValueError, match="outside the camera frame"):
        region_point_to_pixel((400, 10), corners, k, k)
    with pytest.raises(ValueError, match="not visible"):
        frame_fraction([(1, 1)], [(5, 5)])
    with pytest.raises(ValueError, match="positive"):
        capture_size(0, 1080, 320, 240)
