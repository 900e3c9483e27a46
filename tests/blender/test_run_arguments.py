"""scene_r1.run() refuses a mode, box or clicks it cannot use in its own words, before the
panel's settings change (bpy's errors name a property, and came after the query was set)."""

import bpy
import pytest
from rooms import build_study

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


def test_run_prompts_with_its_own_arguments_and_reports_no_stale_selection(addon):
    from test_artist_path import drawn_box

    things = build_study(bpy.context)
    globe = drawn_box(things["Globe"], (320, 180))
    assert scene_r1.run(mode="lift", box=globe).selected == ["Globe"]  # the object-index map: no backend
    missed = scene_r1.run(mode="lift", box=[500, 500, 600, 600])
    assert missed.state == "failed" and missed.selected == []  # Globe stays selected, but not by this run
    centre = [(globe[0] + globe[2]) / 2, (globe[1] + globe[3]) / 2, 1]
    clicked = scene_r1.run(mode="lift", points=[centre], address="tcp://127.0.0.1:1", timeout=10)
    assert "500" not in clicked.message  # not the last call's box
    assert list(addon.scene_r1.box) == [0, 0, 0, 0]
