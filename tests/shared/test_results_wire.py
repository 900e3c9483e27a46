"""result_from_wire refuses a result whose buffers do not agree with each other."""

import numpy as np
import pytest

from scene_r1.shared.results import Instance, Mask3D, QueryResult, result_from_wire, result_to_wire


def lifted(points: int = 5) -> QueryResult:
    rng = np.random.default_rng(0)
    mask3d = Mask3D(
        points=rng.random((points, 3), dtype=np.float32),
        confidence=np.linspace(0.2, 1.0, points, dtype=np.float32),
        aabb=np.array([[0.0, 0, 0], [1, 1, 1]]),
        obb_center=np.full(3, 0.5),
        obb_extent=np.ones(3),
        obb_rotation=np.eye(3),
    )
    cube = Instance(label="cube", box_2d=[1, 2, 30, 40], mask3d=mask3d)
    return QueryResult(query="the cube", scene="room", instances=[cube])


def test_a_result_survives_the_wire():
    back = result_from_wire(*result_to_wire(lifted()))
    assert np.array_equal(back.instances[0].mask3d.confidence, lifted().instances[0].mask3d.confidence)


@pytest.mark.parametrize("confidence", [np.ones(4, np.float32), np.ones(6, np.float32), None])
def test_confidence_of_another_length_than_the_points_is_refused(confidence):
    payload, arrays = result_to_wire(lifted(5))
    if confidence is None:
        del arrays["confidence/0"]
    else:
        arrays["confidence/0"] = confidence
    with pytest.raises(ValueError, match="confidence values for 5 points"):
        result_from_wire(payload, arrays)
