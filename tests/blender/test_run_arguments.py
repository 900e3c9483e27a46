"""scene_r1.run() refuses a mode, box or clicks it cannot use in its own words, before the
panel's settings change (bpy's errors name a property, and came after the query was set)."""

import pytest

import scene_r1


@pytest.mark.parametrize(
    "arguments, words",
    [
        ({"mode": "dance"}, "mode must be one of ground, ask, lift"),
        ({"mode": "lift", "box": [1, 2, 3]}, "got 3 numbers"),
        ({"mode": "lift", "box": ["a", 1, 2, 3]}, "box takes [x1, y1, x2, y2]"),
        ({"mode": "lift", "points": [[1, 2]]}, "points [[x, y, label], ...]"),
    ],
)
def test_run_refuses_arguments_it_cannot_use_and_leaves_the_panel_alone(addon, arguments, words):
    settings = addon.scene_r1
    settings.mode, settings.query = "ask", "how many chairs?"
    with pytest.raises(ValueError, match=None) as raised:
        scene_r1.run("the red mug", address="tcp://127.0.0.1:1", timeout=5, **arguments)
    assert words in str(raised.value)
    assert (settings.mode, settings.query) == ("ask", "how many chairs?")
