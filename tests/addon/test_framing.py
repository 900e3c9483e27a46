"""The default capture frames what the camera sees: background surfaces left out, an orbit that keeps
the target in view from the camera's side, and the capture's pixel-area figure."""

import numpy as np

from scene_r1.addon.core.framing import (
    Box,
    background_objects,
    camera_orbit,
    orbit_distance,
    pixel_areas,
    seen_objects,
    small_objects,
    target_bounds,
)
from scene_r1.shared.camera import Intrinsics, look_at
from scene_r1.shared.geometry import project_points

BOXES = {
    "Floor": Box(np.array([-4.0, -4.0, 0.0]), np.array([4.0, 4.0, 0.0])),
    "Wall": Box(np.array([-4.0, 2.0, 0.0]), np.array([4.0, 2.02, 3.0])),
    "Table": Box(np.array([-0.6, -0.4, 0.0]), np.array([0.6, 0.4, 0.75])),
    "Mug": Box(np.array([0.1, 0.0, 0.75]), np.array([0.18, 0.08, 0.85])),
    "Chair": Box(np.array([-1.2, -0.3, 0.0]), np.array([-0.7, 0.2, 0.9])),
    "Rug": Box(np.array([-0.5, -0.5, 0.0]), np.array([0.5, 0.5, 0.01])),  # flat but not large: an object
}


def test_floors_and_walls_are_background_small_flat_things_are_not():
    assert background_objects(BOXES) == {"Floor", "Wall"}
    pixels = {"Floor": 9000, "Wall": 5000, "Table": 3000, "Mug": 40, "Chair": 900, "Rug": 500}
    assert seen_objects(pixels, BOXES) == ["Chair", "Mug", "Rug", "Table"]
    assert seen_objects(pixels | {"Mug": 5}, BOXES) == ["Chair", "Rug", "Table"]  # 5 px: not seen
    assert seen_objects({"Floor": 9000}, BOXES) == ["Floor"]  # only the floor: orbit the floor
    assert small_objects(pixels, ["Chair", "Mug", "Table"]) == [("Mug", 40)]


def test_the_orbit_starts_at_the_camera_and_keeps_the_target_in_view():
    camera = look_at(np.array([0.5, -3.5, 1.8]), np.array([0.0, 0.0, 0.6]))
    shifted = Intrinsics(400.0, 400.0, 150.0, 95.0, 320, 180)
    centre, size = target_bounds(["Table", "Mug", "Chair"], BOXES)
    plan = camera_orbit(camera, shifted, centre, size, frames=12, fps=4.0, description="what it sees")
    assert np.allclose(plan.poses[0], camera) and plan.intrinsics_at(0) == shifted
    orbit = plan.intrinsics_at(1)
    assert (orbit.cx, orbit.cy, orbit.fx) == (159.5, 89.5, 400.0) and plan.description == "what it sees"
    corners = np.array(
        [
            [x, y, z]
            for x in (centre[0] - size[0] / 2, centre[0] + size[0] / 2)
            for y in (centre[1] - size[1] / 2, centre[1] + size[1] / 2)
            for z in (centre[2] - size[2] / 2, centre[2] + size[2] / 2)
        ]
    )
    for pose in plan.poses[1:]:
        uv, depth = project_points(corners, orbit, pose)
        assert (depth > 0).all() and (uv >= 0).all() and (uv[:, 0] <= 319).all() and (uv[:, 1] <= 179).all()
    distances = np.linalg.norm(plan.poses[1:, :3, 3] - centre, axis=1)
    assert np.allclose(distances, orbit_distance(size, orbit))
    # far closer than an orbit that must keep the 8 m floor in view
    floor_centre, floor_size = target_bounds(list(BOXES), BOXES)
    assert orbit_distance(floor_size, orbit) > 3 * distances[0]
    headings = np.arctan2(plan.poses[1:, 1, 3] - centre[1], plan.poses[1:, 0, 3] - centre[0])
    assert np.ptp(np.unwrap(headings)) > 1.6 * np.pi  # all the way round


def test_pixel_areas_are_medians_over_the_frames_that_see_each_object():
    maps = [np.array([[1, 1, 2], [0, 1, 2]]), np.array([[1, 0, 0], [0, 0, 0]]), np.zeros((2, 3), int)]
    assert pixel_areas(maps, ["A", "B", "C"]) == {"A": 2.0, "B": 2.0, "C": 0.0}
