"""The Blender extension's decisions, as plain functions (no Blender needed)."""

import numpy as np
import pytest

from scene_r1.addon.core.capture import (
    animation_frames,
    bounds_of,
    box_mesh,
    covered_faces,
    orbit_plan,
    thin_points,
    vote_objects,
    with_first_view,
)
from scene_r1.shared.camera import blender_to_opencv_pose
from scene_r1.shared.geometry import project_points


def test_orbit_keeps_the_whole_box_in_view_from_every_side():
    centre, size = bounds_of(np.array([[-1.0, -0.5, 0.0], [1.0, 0.5, 0.8]]))
    plan = orbit_plan(centre, size, frames=12, width=160, height=120)
    corners, _ = box_mesh([centre - size / 2, centre + size / 2])
    for pose in plan.poses:
        uv, depth = project_points(corners, plan.intrinsics, pose)
        assert (depth > 0).all()
        assert (uv >= 0).all() and (uv[:, 0] <= 159).all() and (uv[:, 1] <= 119).all()
        # the optical axis goes through the centre
        centre_uv, _ = project_points(centre[None], plan.intrinsics, pose)
        assert np.allclose(centre_uv[0], [79.5, 59.5], atol=1e-6)
    headings = np.arctan2(plan.poses[:, 1, 3] - centre[1], plan.poses[:, 0, 3] - centre[0])
    assert np.ptp(np.unwrap(headings)) > 1.8 * np.pi  # all the way round
    assert np.allclose(np.diff(plan.timestamps), 0.25)
    for matrix, pose in zip(plan.blender_matrices(), plan.poses):
        assert np.allclose(blender_to_opencv_pose(matrix), pose)


def test_bad_capture_settings_are_refused():
    with pytest.raises(ValueError, match="at least 2 frames"):
        orbit_plan([0, 0, 0], [1, 1, 1], frames=1)
    with pytest.raises(ValueError, match="no geometry"):
        bounds_of(np.zeros((0, 3)))
    with pytest.raises(ValueError, match="empty"):
        animation_frames(10, 5, 4)


def test_animation_frames_are_spread_over_the_range():
    assert animation_frames(1, 250, 5) == [1, 63, 126, 188, 250]
    assert animation_frames(1, 3, 10) == [1, 2, 3]


def test_votes_select_the_covered_object_not_its_neighbours():
    rng = np.random.default_rng(0)
    n = 500
    distances = {
        "Chair": np.where(np.arange(n) < 450, rng.uniform(0, 0.01, n), 0.5),  # 90 % of the points lie on it
        "Floor": np.where(np.arange(n) >= 450, rng.uniform(0, 0.01, n), 0.3),  # 10 % spilled onto the floor
        "Table": np.full(n, 0.4),
    }
    assert vote_objects(distances, radius=0.03) == ["Chair"]
    distances["Floor"][:200] = 0.001  # two objects really covered: both, most votes first
    assert vote_objects(distances, radius=0.03) == ["Chair", "Floor"]
    assert vote_objects({}, 0.03) == [] and vote_objects({"A": np.full(10, 1.0)}, 0.03) == []


def test_covered_faces_matches_brute_force():
    rng = np.random.default_rng(1)
    centres = rng.uniform(-1, 1, (3000, 3))
    points = rng.uniform(-0.3, 0.3, (400, 3))
    expected = np.flatnonzero((((centres[:, None] - points[None]) ** 2).sum(-1) <= 0.05**2).any(1))
    assert covered_faces(centres, points, 0.05).tolist() == expected.tolist()
    assert covered_faces(centres, np.zeros((0, 3)), 0.05).size == 0


def test_box_mesh_and_thinning():
    corners, faces = box_mesh([[0, 0, 0], [1, 2, 3]])
    assert corners.min(0).tolist() == [0, 0, 0] and corners.max(0).tolist() == [1, 2, 3] and len(faces) == 6
    assert all(len(set(f)) == 4 for f in faces) and sorted({i for f in faces for i in f}) == list(range(8))
    points = np.random.default_rng(2).normal(size=(50000, 3))
    assert len(thin_points(points, 1000)) == 1000 and len(thin_points(points[:10], 1000)) == 10


def test_a_first_view_keeps_its_own_intrinsics():
    plan = orbit_plan([0, 0, 0], [1, 1, 1], frames=3, width=64, height=48)
    shifted = plan.intrinsics.cropped(-5, 3, 64, 48)
    pose = plan.poses[0].copy()
    combined = with_first_view(plan, pose, fps=2.0, intrinsics=shifted)
    assert len(combined.poses) == 4 and np.allclose(combined.timestamps, [0, 0.5, 1.0, 1.5])
    assert combined.intrinsics_at(0) == shifted and combined.intrinsics_at(2) == plan.intrinsics
    with pytest.raises(ValueError, match="first view"):
        with_first_view(plan, pose, 2.0, plan.intrinsics.scaled(32, 24))
