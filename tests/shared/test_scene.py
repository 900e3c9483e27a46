import numpy as np
import pytest

from scene_r1.shared.camera import Intrinsics
from scene_r1.shared.scene import Scene, SceneError, summarize_scene

K = Intrinsics(60, 60, 15.5, 11.5, 32, 24)


def frames(n=3, h=24, w=32):
    rgb = [np.full((h, w, 3), 10 * i, np.uint8) for i in range(n)]
    depth = [np.full((h, w), 1.0 + i, np.float32) for i in range(n)]
    return rgb, depth


def make(n=3, **overrides):
    rgb, depth = frames(n)
    args = dict(
        rgb=rgb, depth=depth, intrinsics=K, poses=np.repeat(np.eye(4)[None], n, 0), timestamps=np.arange(n) * 0.5
    )
    args.update(overrides)
    return Scene.from_arrays(**args)


def test_a_valid_scene():
    scene = make()
    assert len(scene) == 3 and scene.duration == 1.0 and scene.fps == 2.0
    frame = scene.frame(1)
    assert frame.rgb[0, 0, 0] == 10 and frame.depth[0, 0] == 2.0 and frame.intrinsics == K
    assert scene.frame_at_time(0.6) == 1
    assert scene.frame(-1).index == 2
    with pytest.raises(IndexError):
        scene.frame(3)


def test_depth_size_may_differ_from_colour():
    rgb, _ = frames(2)
    depth = [np.ones((12, 16), np.float32)] * 2
    scene = Scene.from_arrays(rgb, depth, K, np.repeat(np.eye(4)[None], 2, 0), [0, 1])
    assert scene.depth_size == (16, 12)
    assert scene.depth_intrinsics_at(0) == K.scaled(16, 12)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(rgb=[], depth=[]), "at least one frame"),
        (dict(poses=np.repeat(np.eye(4)[None], 2, 0)), "poses have shape"),
        (dict(poses=np.full((3, 4, 4), np.nan)), "not finite"),
        (dict(poses=np.repeat((2 * np.eye(4))[None], 3, 0)), "last row|rigid"),
        (dict(timestamps=[0.0, 1.0, 0.5]), "must not decrease"),
        (dict(timestamps=[0.0, np.inf, 2.0]), "finite"),
        (dict(depth=[np.ones((24, 32), np.float32)] * 2), "3 colour images but 2 depth maps"),
        (dict(intrinsics=Intrinsics(1e300, 1e300, 15.5, 11.5, 32, 24)), "implausible"),
        (dict(intrinsics=Intrinsics(60, 60, 1e9, 11.5, 32, 24)), "implausible"),
    ],
)
def test_bad_metadata_gives_a_clear_error(overrides, message):
    with pytest.raises(SceneError, match=message):
        make(**overrides)


@pytest.mark.parametrize(
    "rgb, depth, message",
    [
        (np.zeros((24, 32), np.uint8), None, "HxWx3"),
        (np.zeros((24, 32, 3), np.float32), None, "uint8"),
        (np.zeros((20, 32, 3), np.uint8), None, "colour size"),
        (None, np.full((24, 32), -1.0, np.float32), "negative depth"),
        (None, np.full((24, 32), np.inf, np.float32), "infinite"),
        (None, np.ones((24, 32), np.float64), "float32"),
        (None, np.ones((24, 32, 1), np.float32), "HxW"),
    ],
)
def test_bad_frames_give_a_clear_error_when_decoded(rgb, depth, message):
    good_rgb, good_depth = frames(2)
    if rgb is not None:
        good_rgb[1] = rgb
    if depth is not None:
        good_depth[1] = depth
    scene = Scene.from_arrays(good_rgb, good_depth, K, np.repeat(np.eye(4)[None], 2, 0), [0, 1])
    scene.frame(0)
    with pytest.raises(SceneError, match=message):
        scene.frame(1)


def test_depth_beyond_10_km_is_invalid_like_nan():
    rgb, depth = frames(2)
    depth[1] = np.full((24, 32), 1e30, np.float32)
    depth[1][0, 0] = 2.0
    scene = Scene.from_arrays(rgb, depth, K, np.repeat(np.eye(4)[None], 2, 0), [0, 1])
    far = scene.frame(1).depth
    assert far.dtype == np.float32 and far[0, 0] == 2.0 and np.isnan(far[1:]).all()


def test_nan_depth_means_invalid_not_an_error():
    rgb, depth = frames(1)
    depth[0][:5] = np.nan
    depth[0][5:8] = 0
    scene = Scene.from_arrays(rgb, depth, K, np.eye(4)[None], [0])
    assert np.isnan(scene.frame(0).depth).sum() == 5 * 32
    assert "valid depth" in summarize_scene(scene)


def test_huge_frames_are_refused():
    huge = [np.zeros((9000, 2, 3), np.uint8)]
    with pytest.raises(SceneError, match="8192"):
        Scene.from_arrays(
            huge, [np.zeros((9000, 2), np.float32)], Intrinsics(1, 1, 1, 1, 2, 9000), np.eye(4)[None], [0]
        )


def test_frames_are_decoded_lazily_and_cached():
    decoded = []

    class CountingSource:
        def __len__(self):
            return 2000

        def load_rgb(self, i):
            decoded.append(i)
            return np.zeros((24, 32, 3), np.uint8)

        def load_depth(self, i):
            return np.ones((24, 32), np.float32)

    scene = Scene(
        CountingSource(),
        np.tile(K.as_array(), (2000, 1)),
        np.repeat(np.eye(4)[None], 2000, 0),
        np.arange(2000) / 30,
        (32, 24),
        cache_frames=4,
    )
    assert decoded == []
    for i in (5, 5, 6, 5):
        scene.frame(i)
    assert decoded == [5, 6]
    for i in range(10):
        scene.frame(i)
    assert len(scene._cache) == 4
