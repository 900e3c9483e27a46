"""SAM2 (transformers' port; a tiny random-weight model here) takes click prompts as well as boxes."""

import numpy as np
import pytest

from scene_r1.backend.models.sam2 import Sam2Settings, Sam2Tracker
from scene_r1.shared.scene import SceneError


@pytest.fixture(scope="module")
def tiny_sam2(tiny_models):
    return Sam2Tracker(Sam2Settings(model=str(tiny_models["tracker"])))


def test_clicks_with_or_without_a_box_give_a_mask_per_frame(tiny_sam2, synthetic):
    scene = synthetic.scene
    clicks = np.array([[40, 30, 1], [100, 80, 0]])
    for box in (None, [20, 10, 90, 70]):
        masks = tiny_sam2.track(scene, 2, box, frames=[1, 2, 3], points=clicks)
        assert sorted(masks) == [1, 2, 3] and all(m.shape == (120, 160) and m.dtype == bool for m in masks.values())
    with pytest.raises(SceneError, match="a box or at least one positive point"):
        tiny_sam2.track(scene, 2, None, frames=[2])
