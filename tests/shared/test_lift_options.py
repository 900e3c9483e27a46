"""A lift query's options on the wire: frame, a box and/or click points [x, y, label]."""

import pytest

from scene_r1.shared.protocol import ProtocolError
from scene_r1.shared.queries import check_query


@pytest.mark.parametrize(
    "options",
    [
        {"frame": 0, "box": [1, 2, 30, 40]},
        {"frame": 3, "box": [1, 2, 30, 40], "points": [[10, 12, 1], [5.5, 6, 0]]},
        {"frame": 3, "box": [1, 2, 30, 40], "points": [[10, 12, 0]]},
        {"frame": 3, "points": [[10, 12, 1]]},
        {"frame": 3, "box": None, "points": [[10, 12, 1], [1, 1, 0]]},
    ],
)
def test_good_lift_options_pass(options):
    check_query("lift", "", options)


@pytest.mark.parametrize(
    "options, words",
    [
        ({"frame": 0, "box": [1, 2, 3, 4], "points": [[1, 2]]}, "[x, y, label]"),
        ({"frame": 0, "box": [1, 2, 3, 4], "points": [[1, float("inf"), 1]]}, "[x, y, label]"),
        ({"frame": 0, "box": [1, 2, 3, 4], "points": [[1, True, 1]]}, "[x, y, label]"),
        ({"frame": 0, "box": [1, 2, 3, 4], "points": [[1, 2, 2]]}, "label is 1"),
        ({"frame": 0, "box": [1, 2, 3, 4], "points": "1,2"}, "a list"),
        ({"frame": 0, "box": [1, 2, 3, 4], "points": [[1, 2, 1]] * 65}, "at most 64"),
        ({"frame": 0, "points": [[1, 2, 0]]}, "or a point with label 1"),
        ({"frame": 0}, "or a point with label 1"),
    ],
)
def test_bad_lift_options_get_a_clear_error(options, words):
    with pytest.raises(ProtocolError) as raised:
        check_query("lift", "", options)
    assert words in str(raised.value) and raised.value.code == "bad-payload"
