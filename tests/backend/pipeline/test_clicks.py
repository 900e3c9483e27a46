"""The box-prompt path through the pipeline with clicks instead of (or beside) a box."""

import numpy as np
import pytest

from scene_r1.backend.data.synth.generate import visible_boxes
from scene_r1.backend.eval.metrics import box_iou_3d
from scene_r1.backend.pipeline.pipeline import Pipeline
from scene_r1.backend.pipeline.settings import PipelineSettings
from scene_r1.shared.scene import SceneError


@pytest.fixture(scope="module")
def geometric():
    return Pipeline(PipelineSettings(segmenter="geometric"))


def biggest_object(synthetic):
    best = None
    for index in range(len(synthetic.scene)):
        instance = synthetic.scene.instance(index)
        for object_id, (box, count) in visible_boxes(instance, 50).items():
            if best is None or count > best[0]:
                best = (count, index, object_id, box, instance)
    return best[1:]


def test_one_click_lifts_the_object_under_it(synthetic, geometric):
    index, object_id, box, instance = biggest_object(synthetic)
    v, u = np.nonzero(instance == object_id)
    centre = np.argmin((u - u.mean()) ** 2 + (v - v.mean()) ** 2)  # a pixel of the object near its middle
    result = geometric.lift(synthetic.scene, index, None, points=[[float(u[centre]), float(v[centre]), 1]])
    truth = next(o for o in synthetic.room.objects if o.id == object_id)
    assert box_iou_3d(result.instances[0].mask3d.aabb, truth.aabb) > 0.5
    assert "segmenter: geometric" in result.notes and result.stages["tracking"]["tracker"] == "geometric"


def test_bad_clicks_are_refused_with_a_clear_error(synthetic, geometric):
    with pytest.raises(SceneError, match="outside the 160x120 frame"):
        geometric.lift(synthetic.scene, 0, None, points=[[500, 5, 1]])
    with pytest.raises(SceneError, match="a box or at least one positive point"):
        geometric.lift(synthetic.scene, 0, None, points=[[5, 5, 0]])
    with pytest.raises(SceneError, match="unknown segmenter"):
        Pipeline(PipelineSettings(segmenter="sam9"))
