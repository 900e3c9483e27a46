"""Which of the scene's objects a box or a result's masks select, from exact object-index maps."""

import numpy as np
import pytest

from scene_r1.addon.core.selection import (
    decode_rle,
    object_at,
    objects_for_result,
    objects_in_box,
    objects_in_masks,
)
from scene_r1.shared.results import Instance, QueryResult

NAMES = ["Floor", "Table", "Mug", "Seat", "Back"]
GROUPS = {"Floor": "Floor", "Table": "Table", "Mug": "Mug", "Seat": "Chair", "Back": "Chair"}


def room() -> np.ndarray:
    """A 120x160 view: floor everywhere, a table, a mug on the table, a chair of two touching parts."""
    index = np.full((120, 160), 1, np.int32)
    index[:20] = 0  # sky: nothing
    index[50:90, 20:100] = 2  # table
    index[40:52, 50:58] = 3  # mug standing on it
    index[45:95, 115:140] = 4  # seat
    index[20:45, 118:137] = 5  # back
    return index


def test_a_box_around_each_object_selects_it_and_nothing_else():
    index = room()
    assert objects_in_box(index, NAMES, [49, 39, 59, 53]).objects == ["Mug"]
    table = objects_in_box(index, NAMES, [18, 48, 102, 92])
    assert table.objects == ["Table"]
    # a loosely drawn box (a few pixels off on each side) still picks the mug, not the table around it
    assert objects_in_box(index, NAMES, [46, 36, 62, 56]).objects == ["Mug"]
    # parts of one thing: a box around the whole chair selects both parts, best first
    assert objects_in_box(index, NAMES, [113, 18, 142, 97], GROUPS).objects == ["Seat", "Back"]
    assert objects_in_box(index, NAMES, [113, 18, 142, 97]).objects == ["Seat"]  # no groups known


def test_a_box_that_frames_no_single_object_says_why():
    index = room()
    sky = objects_in_box(index, NAMES, [0, 0, 150, 15])
    assert sky.objects == [] and "empty background" in sky.reason
    scan = np.ones((120, 160), np.int32)  # one scanned mesh of many things
    part = objects_in_box(scan, ["Scan"], [40, 40, 60, 60])
    assert part.objects == [] and "scanned mesh" in part.reason
    with pytest.raises(ValueError, match="x1 < x2"):
        objects_in_box(index, NAMES, [10, 10, 5, 20])


def test_a_click_selects_the_object_under_it():
    index = room()
    assert object_at(index, NAMES, (53, 45)) == "Mug" and object_at(index, NAMES, (5, 5)) is None


def test_masks_vote_over_frames():
    index = room()
    mug = index == 3
    spill = mug.copy()
    spill[52:54, 50:58] = True  # the mask spills two rows onto the table
    assert objects_in_masks([index, index], NAMES, {0: mug, 1: spill}).objects == ["Mug"]
    chair = (index == 4) | (index == 5)
    assert objects_in_masks([index], NAMES, {0: chair}, GROUPS).objects == ["Seat", "Back"]
    floor_patch = np.zeros_like(mug)
    floor_patch[100:110, 10:20] = True
    assert "none of them whole" in objects_in_masks([index], NAMES, {0: floor_patch}).reason
    with pytest.raises(ValueError, match="frames 0..0"):
        objects_in_masks([index], NAMES, {3: mug})
    with pytest.raises(ValueError, match="the capture is"):
        objects_in_masks([index], NAMES, {0: mug[:10]})


def rle_of(mask: np.ndarray) -> dict:
    """COCO's compressed RLE text, written out here as pycocotools does (column-major runs)."""
    flat = mask.T.ravel().astype(np.uint8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    runs = np.diff(np.concatenate([[0], changes, [flat.size]])).tolist()
    if flat[0]:
        runs = [0, *runs]
    text = []
    for i, count in enumerate(runs):
        value = count - runs[i - 2] if i > 2 else count
        more = True
        while more:
            chunk = value & 0x1F
            value >>= 5
            more = not ((value == 0 and not chunk & 0x10) or (value == -1 and chunk & 0x10))
            text.append(chr(chunk + 48 + (0x20 if more else 0)))
    return {"size": list(mask.shape), "counts": "".join(text)}


def test_rle_decoding_matches_coco():
    rng = np.random.default_rng(3)
    masks = [room() == 3, rng.random((37, 23)) > 0.6, np.ones((5, 4), bool), np.zeros((6, 3), bool)]
    for mask in masks:
        assert (decode_rle(rle_of(mask)) == mask).all()
    try:
        from pycocotools import mask as coco
    except ImportError:
        coco = None
    if coco is not None:  # the backend's own encoder (backend environment)
        for mask in masks:
            encoded = coco.encode(np.asfortranarray(mask.astype(np.uint8)))
            assert (decode_rle({"size": encoded["size"], "counts": encoded["counts"].decode()}) == mask).all()
            assert rle_of(mask)["counts"] == encoded["counts"].decode()
    with pytest.raises(ValueError, match="add up"):
        decode_rle({"size": [3, 3], "counts": "12"})


def test_a_result_becomes_the_scene_objects_or_a_reason_in_words():
    index = room()
    masks = {0: rle_of(index == 3), 1: rle_of(index == 3)}
    found = QueryResult("the mug", "s", instances=[Instance("mug", [49, 39, 59, 53], masks)], key_frame=0)
    assert objects_for_result(found, [index, index], NAMES, GROUPS).objects == ["Mug"]
    boxed = QueryResult("the table", "s", instances=[Instance("table", [18, 48, 102, 92])], key_frame=1)
    assert objects_for_result(boxed, [index, index], NAMES).objects == ["Table"]
    sky = QueryResult("the sky", "s", instances=[Instance("sky", [0, 0, 150, 15])], key_frame=0)
    assert objects_for_result(sky, [index], NAMES).reason == (
        "the model's box covers no object that has depth (only empty background)"
    )
    unparsed = QueryResult("x", "s", stages={"image": {"error": "no JSON in the answer"}})
    assert objects_for_result(unparsed, [index], NAMES).reason == "the model did not answer in the expected form"
    assert "np." not in objects_for_result(QueryResult("x", "s"), [index], NAMES).reason


def test_a_stage_the_model_answered_out_of_form_is_reported_by_its_real_key():
    from scene_r1.addon.core.selection import no_instance_reason

    # backend/pipeline/results.stage_report's key is well_formed (there is no "parsed")
    malformed = QueryResult("x", "s", stages={"image": {"reasoning": "", "answer": "", "well_formed": False}})
    assert no_instance_reason(malformed) == "the model did not answer in the expected form"
    fine = QueryResult("x", "s", stages={"image": {"reasoning": "r", "answer": "[]", "well_formed": True}})
    assert no_instance_reason(fine) == "the model's answer named no object in the scene"


def test_a_click_on_a_large_object_selects_it_and_a_click_on_background_is_marked_empty():
    from scene_r1.addon.core.selection import object_clicked

    index = room()
    # the table is 80x40 px: a 2 px box around the click would fail objects_in_box's IoU test
    click = [60.5, 70.5, 62.5, 72.5]
    assert objects_in_box(index, NAMES, click).objects == []
    assert object_clicked(index, NAMES, click).objects == ["Table"]
    sky = object_clicked(index, NAMES, [10, 5, 12, 7])
    assert sky.objects == [] and sky.empty
    assert objects_in_box(index, NAMES, [0, 0, 150, 15]).empty  # structured, not matched from the text
    assert not objects_in_box(index, NAMES, [0, 19, 150, 25]).empty
    with pytest.raises(ValueError, match="outside"):
        object_clicked(index, NAMES, [200, 5, 202, 7])


def test_a_candidate_answer_selects_exactly_the_objects_of_its_ids():
    from scene_r1.addon.core.selection import objects_for_ids

    index = room()
    chosen = QueryResult(
        "the mug",
        "s",
        instances=[Instance("mug", [0, 0, 160, 120])],  # its masks would vote for the floor: the ids decide
        stages={"choose": {"ids": [3], "source": "capture", "well_formed": True}},
    )
    assert objects_for_result(chosen, [index], NAMES, GROUPS).objects == ["Mug"]
    both = QueryResult("the chair", "s", stages={"choose": {"ids": [5, 4], "source": "capture"}})
    assert objects_for_result(both, [index], NAMES).objects == ["Back", "Seat"]
    none = QueryResult("the moon", "s", stages={"choose": {"ids": [], "source": "capture"}})
    assert objects_for_result(none, [index], NAMES).reason == "the model's answer named no object in the scene"
    with pytest.raises(ValueError, match="ids 1..5"):
        objects_for_ids([6], NAMES)


def test_a_capture_table_numbers_objects_as_the_index_maps_do():
    from scene_r1.addon.core.candidates import ObjectFacts, capture_table

    def box(low, high):
        return np.array([[x, y, z] for x in (low[0], high[0]) for y in (low[1], high[1]) for z in (low[2], high[2])])

    objects = [
        ObjectFacts("Table", box((0, 0, 0), (1, 1, 0.7)), ("Wood",), (0.4, 0.25, 0.1, 1)),
        ObjectFacts("Coffee_Mug", box((0.4, 0.4, 0.7), (0.5, 0.5, 0.82)), ("Material.002",), (0.8, 0.05, 0.05)),
        ObjectFacts("Cube.003", box((2, 0, 0), (2.4, 0.4, 0.4)), (), None),
    ]
    table = capture_table(objects, ["Table", "Coffee_Mug", "Cube.003"], np.eye(4))
    assert table.ids == [1, 2, 3]
    mug = table.by_id(2)
    assert (mug.name, mug.colour, mug.classes) == ("Coffee_Mug", "red", ("coffee mug",))
    assert mug.materials == ("Material.002",)
    assert table.by_id(3).classes == () and table.by_id(3).colour == ""  # a generic name says nothing
    assert any(r.startswith("on table 1") for r in table.relations[2])
    with pytest.raises(ValueError, match="no object facts"):
        capture_table(objects, ["Lamp"], None)
