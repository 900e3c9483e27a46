"""Scoring: several targets, the majority-answer baseline, the lifting ceiling and proposal recall."""

from types import SimpleNamespace

import numpy as np
import pytest

from scene_r1.backend.data.synth.household_scene import HouseholdConfig, write_household
from scene_r1.backend.eval.candidates import ceiling_report, compare_table, proposal_report
from scene_r1.backend.eval.evaluate import ground_row, summarize_vqa


@pytest.fixture(scope="module")
def rooms(tmp_path_factory):
    out = tmp_path_factory.mktemp("household-eval")
    write_household(HouseholdConfig(seed=50000, frames=16, width=192, height=144), out / "room")
    return out


def _result(boxes):
    instances = [SimpleNamespace(mask3d=SimpleNamespace(aabb=np.array(b, float)), box_2d=None) for b in boxes]
    return SimpleNamespace(instances=instances, span=None, key_frame=None, timings={})


def test_several_targets_need_every_one_and_no_more():
    a, b = {"aabb": [[0, 0, 0], [1, 1, 1]], "boxes": {}}, {"aabb": [[2, 0, 0], [3, 1, 1]], "boxes": {}}
    query = {"text": "all the boxes", "spans": [], "unique": False}
    assert ground_row(_result([b["aabb"], a["aabb"]]), query, a, [a, b])["iou3d"] == 1.0
    assert ground_row(_result([a["aabb"]]), query, a, [a, b])["iou3d"] == 0.0
    assert ground_row(_result([a["aabb"], b["aabb"], a["aabb"]]), query, a, [a, b])["iou3d"] == 0.0


def test_majority_answer_baseline():
    rows = [{"reference": r, "exact_match": e} for r, e in (("1", 1.0), ("One", 0.0), ("no", 1.0), ("2", 0.0))]
    summary = summarize_vqa(rows)["overall"]
    assert summary["majority_answer"] == "1" and summary["majority_baseline"] == 0.5
    assert summary["exact_match"] == 0.5


def test_the_lifting_ceiling_and_proposal_recall(rooms, tmp_path):
    ceiling = ceiling_report(rooms, limit=6)
    assert ceiling["summary"]["overall"]["queries"] == 6
    assert ceiling["summary"]["overall"]["acc@0.5"] >= 0.8  # the right ids' own masks lift tightly
    recall = proposal_report(rooms, tmp_path)
    assert recall["summary"]["objects"] >= 8 and recall["summary"]["recall@0.25"] >= 0.5
    assert (tmp_path / "proposals.md").read_text().startswith("| scene |")


def test_compare_table():
    block = {"queries": 2, "acc@0.25": 0.5, "acc@0.5": 0.5, "seconds": {"total": 1.25}}
    report = {"data": "d", "scenes": 1, "summary": {"overall": block, "unique": {"queries": 0}}}
    text = compare_table({"box": report, "candidates": report})
    assert "| candidates | overall | 2 | 0.500 | 0.500 | 1.25 |" in text and "unique" not in text
