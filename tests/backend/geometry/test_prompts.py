"""Click prompts: parsing (CLI, viewer) and validation against the frame."""

import numpy as np
import pytest

from scene_r1.backend.cli.common import parse_point
from scene_r1.backend.geometry.segmentation import check_points, click_hint, prompt_box
from scene_r1.backend.viewer.logic import BOX_PROMPT_HELP, parse_box_prompt
from scene_r1.shared.scene import SceneError


def test_cli_points():
    assert parse_point("10,20") == [10.0, 20.0, 1.0]
    assert parse_point("10,20,0") == [10.0, 20.0, 0.0]
    for bad in ("10", "10,20,2", "a,b", "1,2,3,4"):
        with pytest.raises(SceneError, match="--point takes x,y"):
            parse_point(bad)


def test_points_are_checked_against_the_frame():
    points = check_points([[10, 20], [30, 40, 0]], (64, 48))
    assert points.tolist() == [[10, 20, 1], [30, 40, 0]]
    for bad, words in (
        ([[70, 20, 1]], "outside the 64x48 frame"),
        ([[1, float("nan"), 1]], "finite"),
        ([[1, 2, 5]], "label"),
        ([[1, 2, 3, 4]], "rows"),
        ("nonsense", "list of"),
    ):
        with pytest.raises(SceneError, match=words):
            check_points(bad, (64, 48))


def test_clicks_without_a_box_search_around_the_positive_ones():
    points = check_points([[30, 20, 1], [5, 5, 0]], (640, 480))
    assert prompt_box(None, points, (640, 480)).tolist() == [0, 0, 78, 68]
    with pytest.raises(SceneError, match="a box or at least one positive point"):
        prompt_box(None, points[1:], (640, 480))
    hint = click_hint(points, (64, 48), 1)
    assert hint[20, 30] and not hint[5, 5] and click_hint(points[1:], (64, 48), 1) is None


def test_viewer_box_mode_text():
    assert parse_box_prompt("12 1,2,30,40") == {"frame": 12, "box": [1, 2, 30, 40]}
    assert parse_box_prompt("3 +10,12 -5,6") == {"frame": 3, "box": None, "points": [[10, 12, 1], [5, 6, 0]]}
    assert parse_box_prompt("3 1,2,30,40 7,8")["points"] == [[7, 8, 1]]
    for bad in ("", "x 1,2,3,4", "3", "3 -1,2", "3 1,2,3"):
        with pytest.raises(ValueError, match="box mode"):
            parse_box_prompt(bad)
    assert "+x,y" in BOX_PROMPT_HELP and np.isfinite(1)


def test_cli_lift_from_clicks_on_the_real_kitchen(real_sequence, tmp_path, capsys):
    """`scene-r1 lift --point` (frame numbers as the capture names them: frame-000240 is the 13th)."""
    import json

    from scene_r1.backend.cli import main

    argv = ["lift", str(real_sequence), "--frame", "240", "--point", "240,335", "--point", "330,360,0"]
    assert main([*argv, "--segmenter", "geometric", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "result.json").read_text())
    assert "segmenter: geometric" in result["notes"] and result["point_count"] > 100
    aabb = np.array(result["aabb"])
    assert np.all(aabb[1] - aabb[0] < 0.25)  # a mug, not the table it stands on
    assert main([*argv[:4], "--point", "240", "--out", str(tmp_path)]) != 0
    assert "--point takes x,y" in capsys.readouterr().err
