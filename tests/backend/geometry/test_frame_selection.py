"""Frame selection for long scans: a new view every so many centimetres or degrees."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scene_r1.backend.geometry.frame_selection import ALL_FRAMES, ViewSettings, rotation_degrees, select_views
from scene_r1.shared.scene import SceneError

REAL = Path(__file__).resolve().parents[4] / "shared" / "data" / "redkitchen-1000"


def rotation_y(degrees: float) -> np.ndarray:
    a = np.radians(degrees)
    return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]])


def path(translations, angles=None) -> np.ndarray:
    poses = np.repeat(np.eye(4)[None], len(translations), axis=0)
    poses[:, :3, 3] = translations
    for i, angle in enumerate(angles if angles is not None else []):
        poses[i, :3, :3] = rotation_y(angle)
    return poses


def test_a_still_camera_gives_only_the_key_frame():
    assert select_views(path(np.zeros((30, 3))), 7) == [7]


def test_a_straight_walk_gives_a_view_every_step_both_ways_from_the_key_frame():
    poses = path(np.outer(np.arange(40) * 0.01, [1, 0, 0]))  # 1 cm a frame
    assert select_views(poses, 12, ViewSettings(min_translation=0.045, min_rotation=90)) == [
        2,
        7,
        12,
        17,
        22,
        27,
        32,
        37,
    ]


def test_turning_on_the_spot_gives_a_view_every_few_degrees():
    poses = path(np.zeros((20, 3)), angles=np.arange(20) * 1.0)  # 1 degree a frame
    assert select_views(poses, 0, ViewSettings(min_translation=1.0, min_rotation=2.5)) == [0, 3, 6, 9, 12, 15, 18]


def test_every_frame_and_candidates_and_cap():
    poses = path(np.outer(np.arange(50) * 0.01, [1, 0, 0]))
    assert select_views(poses, 3, ALL_FRAMES) == list(range(50))
    assert select_views(poses, 3, ALL_FRAMES, candidates=range(0, 50, 10)) == [0, 3, 10, 20, 30, 40]
    capped = select_views(poses, 3, ViewSettings(max_views=5, min_translation=0, min_rotation=0))
    assert len(capped) == 5 and 3 in capped and capped == sorted(set(capped))


def test_the_target_rule_takes_a_view_where_the_objects_projection_moves():
    # The camera slides 2 mm a frame (under the 10 cm rule) 0.5 m from the target: its image
    # moves about 2 px a frame at a 500 px focal length.
    poses = path(np.outer(np.arange(30) * 0.002, [1, 0, 0]))
    target = np.array([0.0, 0.0, 0.5])
    assert select_views(poses, 0) == [0]
    views = select_views(poses, 0, ViewSettings(min_shift=9.0), target=target, focal=500.0)
    assert views == [0, 5, 10, 15, 20, 25]


def test_bad_input_gets_a_clear_error():
    with pytest.raises(SceneError, match="out of range"):
        select_views(path(np.zeros((3, 3))), 5)
    with pytest.raises(SceneError, match="Nx4x4"):
        select_views(np.eye(4), 0)
    with pytest.raises(SceneError, match=">= 0"):
        ViewSettings(min_translation=-1)
    with pytest.raises(SceneError, match="candidate"):
        select_views(path(np.zeros((3, 3))), 0, candidates=[0, 9])


def _check_coverage(poses, key, views, step_m, step_deg):
    """Each direction: kept frames are new views of the previous kept one, and every skipped frame
    is within the thresholds of the last kept frame before it (nothing seen only there is far)."""
    assert views == sorted(set(views)) and key in views
    for direction in (range(key + 1, len(poses)), range(key - 1, -1, -1)):
        kept = key
        for index in direction:
            moved = np.linalg.norm(poses[index, :3, 3] - poses[kept, :3, 3])
            turned = rotation_degrees(poses[kept, :3, :3], poses[index, :3, :3])
            if index in views:
                assert moved >= step_m or turned >= step_deg
                kept = index
            else:
                assert moved < step_m and turned < step_deg


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 60), st.floats(0.01, 0.2), st.floats(1.0, 20.0))
def test_selection_covers_a_random_walk(seed, frames, step_m, step_deg):
    rng = np.random.default_rng(seed)
    poses = path(np.cumsum(rng.normal(0, 0.02, (frames, 3)), axis=0), angles=np.cumsum(rng.normal(0, 2.0, frames)))
    key = int(rng.integers(frames))
    _check_coverage(poses, key, select_views(poses, key, ViewSettings(step_m, step_deg)), step_m, step_deg)


@pytest.mark.skipif(not REAL.is_dir(), reason=f"real data not here: {REAL}")
def test_real_scan_is_covered_by_a_fraction_of_its_frames():
    from scene_r1.backend.data import open_scene

    poses = open_scene(REAL).poses
    views = select_views(poses, 0)
    assert len(views) < len(poses) / 5
    _check_coverage(poses, 0, views, 0.10, 10.0)
