"""A lift query's options on the wire: frame, an optional box and optional click points."""

import pytest

from scene_r1.shared.protocol import ProtocolError, check_lift_options


@pytest.mark.parametrize(
    "options",
    [
        {"frame": 0, "box": [1, 2, 30, 40]},
        {"frame": 3, "box": [1, 2, 30, 40], "points": [[10, 12, 1], [5.5, 6, 0]]},
        {"frame": 3, "box": None, "points": [[10, 12, 1]]},
    ],
)
def test_good_lift_options_pass(options):
    check_lift_options(options)


@pytest.mark.parametrize(
    "options, words",
    [
        ({"box": [1, 2, 3, 4]}, "frame"),
        ({"frame": True, "box": [1, 2, 3, 4]}, "frame"),
        ({"frame": 0, "box": "1,2,3,4"}, "a list [x1, y1, x2, y2]"),
        ({"frame": 0, "box": [1, 2, 3, 4], "points": [[1, 2]]}, "[x, y, label]"),
        ({"frame": 0, "box": [1, 2, 3, 4], "points": [[1, float("inf"), 1]]}, "[x, y, label]"),
        ({"frame": 0, "box": [1, 2, 3, 4], "points": [[1, 2, 2]]}, "label 0 or 1"),
        ({"frame": 0, "box": [1, 2, 3, 4], "points": "1,2"}, "a list"),
        ({"frame": 0, "box": [1, 2, 3, 4], "points": [[1, 2, 1]] * 65}, "at most 64"),
        ({"frame": 0, "points": [[1, 2, 0]]}, "a box or at least one point with label 1"),
    ],
)
def test_bad_lift_options_get_a_clear_error(options, words):
    with pytest.raises(ProtocolError) as raised:
        check_lift_options(options)
    assert words in str(raised.value) and raised.value.code == "bad-payload"
