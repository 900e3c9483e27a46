"""Export names come from scene.json's `name`: made a safe file stem, never a path (issue 15)."""

import numpy as np

from scene_r1.backend.viewer.logic import export_result, safe_stem
from scene_r1.shared.results import QueryResult


def test_names_become_safe_stems():
    assert safe_stem("scene0000_00") == "scene0000_00"
    assert safe_stem("../../../../X") == "X"
    assert safe_stem("/etc/passwd") == "etc_passwd"
    assert safe_stem("..") == "scene" and safe_stem("") == "scene" and safe_stem(["a"]) == "a_"
    assert safe_stem("küche 1") == "k_che_1" and len(safe_stem("a" * 500)) == 80


def test_an_export_named_to_escape_stays_in_its_folder(tmp_path):
    folder = tmp_path / "exports" / "result-0"
    vertices, colors = np.zeros((4, 3)), np.zeros((4, 3))
    paths = export_result(folder, "../../../../escaped", vertices, colors, QueryResult(query="q", scene="s"))
    assert all(folder in path.parents for path in paths.values())
    assert not list(tmp_path.glob("escaped*")) and not list((tmp_path / "exports").glob("escaped*"))
