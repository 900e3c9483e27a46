"""Where key frames come from: a per-scene set of views (the same for every query, so a segmenter's
image embeddings computed for one query serve the next), DBSCAN on a bounded grid, and which frames
between key frames are segmented (spread over the sides the object is seen from)."""

import numpy as np
import open3d as o3d

from scene_r1.backend.geometry.frame_selection import ViewSettings
from scene_r1.backend.geometry.keyframes import KeyFrameSettings, View, key_frame_pool, key_frame_views, spread_views
from scene_r1.backend.geometry.segmentation import cluster_points


def walk(frames: int, step: float = 0.05) -> np.ndarray:
    poses = np.repeat(np.eye(4)[None], frames, axis=0)
    poses[:, 0, 3] = np.arange(frames) * step
    return poses


def test_the_views_depend_on_the_poses_alone_and_are_capped():
    settings = KeyFrameSettings(candidates=8)
    views = key_frame_views(walk(60), settings)
    assert 6 <= len(views) <= 8 and views == sorted(set(views)) and views[0] == 0
    assert key_frame_views(walk(60), settings) == views  # reproducible
    still = KeyFrameSettings(views=ViewSettings(min_translation=0.5, min_rotation=90))
    assert key_frame_views(walk(10, 0.01), still) == [0]  # a camera that hardly moves: one view


def test_every_query_draws_from_the_same_views():
    """Two prompts on different frames, tracked over frames that include the views (as the pipeline
    passes them), get the same candidates but their own prompted frame."""
    poses, settings = walk(60), KeyFrameSettings(candidates=8)
    views = key_frame_views(poses, settings)
    near_a = sorted(set(range(0, 60, 3)) | set(views) | {7})
    near_b = sorted(set(range(1, 60, 4)) | set(views) | {41})
    pool_a = key_frame_pool(poses, near_a, 7, settings)
    pool_b = key_frame_pool(poses, near_b, 41, settings)
    assert pool_a == [v for v in views if v != 7] and pool_b == [v for v in views if v != 41]


def test_a_caller_that_tracks_a_few_frames_keeps_its_own():
    poses, settings = walk(60), KeyFrameSettings(candidates=8)
    assert key_frame_pool(poses, [3, 10, 12, 27], 12, settings) == [3, 10, 27]
    thinned = key_frame_pool(poses, range(1, 60, 2), 1, KeyFrameSettings(candidates=5, views=ViewSettings(5.0, 90)))
    assert len(thinned) == 5 and 1 not in thinned and thinned == sorted(thinned)


def test_clustering_on_the_grid_finds_the_same_clusters_as_on_every_point():
    rng = np.random.default_rng(0)
    # Two dense 10 cm squares 5 cm apart (pixels 2 mm apart), and a few stray points far away.
    grid = np.stack(np.meshgrid(np.arange(0, 0.1, 0.002), np.arange(0, 0.1, 0.002)), -1).reshape(-1, 2)
    a = np.column_stack([grid, np.full(len(grid), 1.0)])
    b = a + [0.15, 0, 0]
    stray = rng.uniform(2, 3, (3, 3))
    points = np.concatenate([a, b, stray]) + rng.normal(0, 0.0005, (len(a) * 2 + 3, 3))
    labels = cluster_points(points, eps=0.02, min_points=4)
    full = np.asarray(o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points)).cluster_dbscan(0.02, 4))
    for ours, theirs in ((labels, full),):
        assert len(set(ours[: len(a)])) == 1 and len(set(ours[len(a) : 2 * len(a)])) == 1
        assert ours[0] != ours[len(a)] and ours[0] >= 0 and (ours[-3:] == -1).all()
        assert (theirs[-3:] == -1).all() and theirs[0] != theirs[len(a)]
    assert (cluster_points(points, eps=0.02, min_points=4) == labels).all()  # deterministic
    assert len(cluster_points(np.zeros((0, 3)), 0.02, 4)) == 0


def view_at(index: int, degrees: float) -> View:
    """A view of the object from `degrees` around it (in the ground plane)."""
    angle = np.radians(degrees)
    box = np.array([0.0, 0.0, 10.0, 10.0])
    return View(index, np.zeros((40, 2)), 40, box, np.array([np.cos(angle), np.sin(angle), 0.0]))


def test_frames_between_key_frames_are_spread_over_the_sides_not_yet_seen():
    """A camera circling the object: seen from 0 degrees by the key frame, then the frames farthest
    from every side covered so far, in the order picked."""
    views = [view_at(i, a) for i, a in enumerate([5, 10, 80, 95, 180, 185, 273])]
    assert spread_views(views, [np.array([1.0, 0.0, 0.0])], 1) == [4]  # the far side first
    assert spread_views(views, [np.array([1.0, 0.0, 0.0])], 3) == [4, 6, 3]  # 180, then 273, then 95
    assert spread_views(views, [], 2) == [0, 5]  # nothing seen yet: the first view (5), then its opposite (185)
    assert sorted(spread_views(views, [np.array([1.0, 0.0, 0.0])], 20)) == list(range(7))  # fewer than asked: all
    assert spread_views(views, [np.array([1.0, 0.0, 0.0])], 0) == []


def test_equally_new_views_go_to_the_earlier_frame():
    views = [view_at(7, 90), view_at(3, -90), view_at(5, 90)]
    assert spread_views(views, [np.array([1.0, 0.0, 0.0])], 1) == [3]
    assert spread_views(list(reversed(views)), [np.array([1.0, 0.0, 0.0])], 2) == [3, 5]  # then 5: 90 deg from both


def test_a_view_without_a_direction_is_never_picked():
    broken = view_at(9, 0)
    broken.direction = np.array([np.nan, 0.0, 0.0])
    views = [view_at(1, 90), broken, view_at(2, 180)]
    assert spread_views(views, [np.array([1.0, 0.0, 0.0])], 3) == [2, 1]
    assert spread_views(views, [np.array([np.nan, 0.0, 0.0])], 1) == [1]  # a broken covered side counts as none
