"""Up in a scan's images: a phone held in portrait stores its frames sideways (the sensor's
landscape orientation); they are shown to the model upright and its boxes turned back."""

import numpy as np

from scene_r1.backend.data.synth import SynthConfig, build_synthetic
from scene_r1.backend.geometry.upright import turn_image, unturn_box, upright_turns


def test_a_sideways_capture_is_turned_upright():
    scene = build_synthetic(SynthConfig(seed=3, frames=12, width=80, height=60)).scene
    poses = np.asarray(scene.poses, np.float64)
    upright = scene.frame(0).rgb
    assert upright_turns(poses) == 0
    for stored, columns in ((1, [[0, -1], [1, 0]]), (3, [[0, 1], [-1, 0]])):
        roll = np.eye(4)
        roll[:2, :2] = columns  # the camera turned about its optical axis as the image was
        sideways = np.rot90(upright, stored)
        turns = upright_turns(poses @ roll)
        assert np.array_equal(turn_image(sideways, turns), upright), stored


def test_a_box_on_the_turned_image_comes_back_in_the_frame_s_pixels():
    rng = np.random.default_rng(0)
    frame = np.zeros((48, 64), np.uint8)
    for _ in range(20):
        x1, y1 = rng.integers(0, 50), rng.integers(0, 30)
        x2, y2 = x1 + rng.integers(1, 14), y1 + rng.integers(1, 18)
        frame[:] = 0
        frame[y1:y2, x1:x2] = 1
        for turns in range(4):
            v, u = np.nonzero(turn_image(frame, turns))
            drawn = (u.min(), v.min(), u.max() + 1, v.max() + 1)
            assert unturn_box(drawn, turns, (64, 48)) == (x1, y1, x2, y2)
