import json
import subprocess
import sys

from scene_r1.backend.cli import main


def test_synth_then_info(tmp_path, capsys):
    out = tmp_path / "scene"
    assert main(["synth", "--seed", "5", "--out", str(out), "--frames", "4", "--width", "64", "--height", "48"]) == 0
    gt = json.loads((out / "gt.json").read_text())
    assert {"objects", "queries", "qa"} <= gt.keys()
    assert main(["info", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "scene-r1" in printed and "64x48" in printed and "4" in printed


def test_info_on_the_real_sequence(real_sequence, capsys):
    assert main(["info", str(real_sequence)]) == 0
    printed = capsys.readouterr().out
    assert "7scenes" in printed and "640x480" in printed and "50" in printed


def test_bad_folder_exits_2_with_a_sentence(tmp_path, capsys):
    assert main(["info", str(tmp_path / "missing")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_bench_prints_ratios(real_sequence):
    # The console script, as a user runs it; tiny sizes keep it quick.
    result = subprocess.run(
        [sys.executable, "-m", "scene_r1.backend.cli", "bench", "--frames", "2", "--width", "64", "--height", "48"],
        capture_output=True,
        text=True,
        check=True,
    )
    ratios = [line for line in result.stdout.splitlines() if line.startswith("ratio ")]
    assert [line.split(":")[0] for line in ratios] == ["ratio render", "ratio reader"]
    assert all(float(line.split(":")[1].split("x")[0]) > 0 for line in ratios)


def test_demo_writes_its_picture(tmp_path):
    assert main(["demo", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "query.png").stat().st_size > 1000
    assert (tmp_path / "synthetic-scene" / "gt.json").is_file()
    result = json.loads((tmp_path / "lift" / "result.json").read_text())
    assert (
        result["mode"] == "lift" and result["instances"][0]["mask_3d"]["point_count"] > 0
    )  # through the real backend process
    assert (tmp_path / "lift" / "mask.ply").stat().st_size > 100 and (
        tmp_path / "lift" / "mask_over_frame.png"
    ).stat().st_size > 1000
