"""Counts on the command line are checked where they are parsed: a negative --limit once dropped
the last query of every scene, a negative --seed or --sample was an internal error."""

import pytest

from scene_r1.backend.cli.main import main


@pytest.mark.parametrize(
    "argv",
    [
        ["synth", "--seed", "-1", "--out", "{tmp}/room"],
        ["info", "{tmp}", "--sample", "-5"],
        ["eval", "--task", "ground", "--data", "{tmp}", "--out", "{tmp}/eval", "--limit", "0"],
        ["eval", "--task", "ground", "--data", "{tmp}", "--out", "{tmp}/eval", "--limit", "-1"],
        ["label", "{tmp}", "--classes", "mug", "--out", "{tmp}/labels", "--threads", "0"],
    ],
)
def test_a_count_out_of_range_is_refused_in_one_line(tmp_path, capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main([a.format(tmp=tmp_path) for a in argv])
    assert exit_.value.code == 2
    assert "takes an integer >=" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_bad_synthetic_settings_say_which_setting(tmp_path, capsys):
    assert main(["synth", "--seed", "1", "--out", str(tmp_path / "room"), "--frames", "0"]) == 2
    assert "frames >= 1" in capsys.readouterr().err and not (tmp_path / "room").exists()
