"""The candidate table: colour words, relations from geometry, JSON, bad input."""

import numpy as np
import pytest

from scene_r1.shared.camera import look_at
from scene_r1.shared.candidates import (
    Candidate,
    CandidateError,
    CandidateTable,
    colour_word,
    relate,
    renumbered,
)


def box(low, high):
    return (tuple(float(v) for v in low), tuple(float(v) for v in high))


def room():
    """A table with a mug and a book on it, a chair beside it, a lamp far away."""
    return [
        Candidate(1, "Table", ("table",), ("Wood",), "brown", box((0, 0, 0), (1.2, 0.7, 0.74))),
        Candidate(2, "Mug", ("mug",), ("Red_Ceramic",), "red", box((0.2, 0.3, 0.74), (0.3, 0.4, 0.84))),
        Candidate(3, "Book", ("book",), (), "blue", box((0.8, 0.3, 0.74), (1.0, 0.45, 0.78))),
        Candidate(4, "Chair", ("chair",), (), "gray", box((1.3, 0.1, 0), (1.75, 0.55, 0.9))),
        Candidate(5, "Mug.001", ("mug",), (), "green", box((3.0, 3.0, 0.0), (3.12, 3.1, 0.12))),
    ]


@pytest.mark.parametrize(
    "rgb,word",
    [
        ((0.8, 0.12, 0.1), "red"),
        ((0.12, 0.25, 0.8), "blue"),
        ((0.15, 0.62, 0.2), "green"),
        ((0.92, 0.92, 0.9), "white"),
        ((0.08, 0.08, 0.09), "black"),
        ((0.5, 0.5, 0.52), "gray"),
        ((0.45, 0.28, 0.15), "brown"),
        ((242, 128, 20), "orange"),  # 0..255 works too
        ((0.4, 0.06, 0.05), "red"),  # a red in shadow stays red
    ],
)
def test_colour_words(rgb, word):
    assert colour_word(rgb) == word


def test_support_next_to_between_and_superlatives():
    table = relate(room())
    facts = set(table.facts)
    assert (2, "on", (1,)) in facts and (3, "on", (1,)) in facts
    assert (1, "under", (2,)) in facts and (1, "under", (3,)) in facts
    assert (4, "next to", (1,)) in facts and (1, "next to", (4,)) in facts
    assert (2, "next to", (3,)) not in facts  # 0.5 m apart
    assert (5, "largest", ()) in facts and (2, "smallest", ()) in facts  # the two mugs
    assert not any(f[0] == 5 and f[1] in ("left of", "right of") for f in facts)  # 3 m from everything
    assert "on table 1" in table.row(table.by_id(2))


def test_left_and_right_depend_on_the_key_view():
    # Seen from y = -3 looking at +y, world x grows to the right; from y = +4 looking back, it flips.
    front = look_at(np.array([0.6, -3.0, 1.5]), np.array([0.6, 0.3, 0.5]))
    back = look_at(np.array([0.6, 4.0, 1.5]), np.array([0.6, 0.3, 0.5]))
    assert (2, "left of", (3,)) in relate(room(), front).facts
    assert (2, "right of", (3,)) in relate(room(), back).facts


def test_between():
    candidates = [
        Candidate(1, "Chair", ("chair",), aabb=box((0, 0, 0), (0.4, 0.4, 0.9))),
        Candidate(2, "Lamp", ("lamp",), aabb=box((0.9, 0, 0), (1.1, 0.2, 1.5))),
        Candidate(3, "Sofa", ("sofa",), aabb=box((1.8, 0, 0), (2.4, 0.4, 0.8))),
    ]
    assert (2, "between", (1, 3)) in relate(candidates).facts
    assert "between chair 1 and sofa 3" in relate(candidates).to_text()


def test_json_round_trip_and_text():
    view = look_at(np.array([0.6, -3.0, 1.5]), np.array([0.6, 0.3, 0.5]))
    table = relate(room(), view)
    again = CandidateTable.from_json(table.to_json())
    assert again.to_text() == table.to_text()
    assert again.facts == table.facts
    assert "2: Mug; red; material Red_Ceramic; size 0.10x0.10x0.10" in table.to_text()
    assert "4: Chair" in table.to_text()


def test_generic_names_have_no_class_and_are_named_by_their_name():
    candidates = [
        Candidate(1, "Cube", (), ("Material",), "brown", box((0, 0, 0), (1, 1, 0.7))),
        Candidate(2, "Cylinder.001", (), ("Material.001",), "red", box((0.4, 0.4, 0.7), (0.5, 0.5, 0.8))),
    ]
    assert "on Cube 1" in relate(candidates).to_text()


def test_renumbered_keeps_a_map_back():
    table = relate(room()[1:])
    short, mapping = renumbered(table)
    assert short.ids == [1, 2, 3, 4] and mapping == {1: 2, 2: 3, 3: 4, 4: 5}


def test_bad_tables_are_refused_clearly():
    with pytest.raises(CandidateError, match="repeat"):
        CandidateTable([room()[0], room()[0]])
    with pytest.raises(CandidateError, match="> 0"):
        Candidate.from_json({"id": 0, "aabb": [[0, 0, 0], [1, 1, 1]]})
    with pytest.raises(CandidateError, match="aabb"):
        Candidate.from_json({"id": 3, "aabb": [[0, 0], [1, 1]]})
    with pytest.raises(CandidateError, match="candidates"):
        CandidateTable.from_json({"objects": []})
    with pytest.raises(CandidateError, match="no candidate 9"):
        relate(room()).by_id(9)


def _scene_with_objects(with_table=True):
    from scene_r1.shared.camera import Intrinsics
    from scene_r1.shared.scene import Scene

    rgb = [np.full((12, 16, 3), 100, np.uint8) for _ in range(2)]
    depth = [np.full((12, 16), 2.0, np.float32) for _ in range(2)]
    instance = [np.zeros((12, 16), np.int32) for _ in range(2)]
    instance[0][2:5, 3:6] = 2
    poses = np.stack([np.eye(4)] * 2)
    return Scene.from_arrays(
        rgb,
        depth,
        Intrinsics(10, 10, 7.5, 5.5, 16, 12),
        poses,
        np.arange(2.0),
        instance=instance,
        candidates=relate(room()) if with_table else None,
    )


def test_candidates_and_id_maps_travel_with_the_scene():
    from scene_r1.shared.protocol import Message, ProtocolError, decode, encode
    from scene_r1.shared.scene_wire import scene_from_wire, scene_to_wire

    meta, arrays = scene_to_wire(_scene_with_objects())
    assert "candidates" in meta and "instance/0" in arrays
    message = decode(encode(Message("scene.upload", payload=meta, arrays=arrays), codec="zlib"))
    scene = scene_from_wire(message.payload, message.arrays)
    assert scene.candidates.to_text() == relate(room()).to_text()
    assert (scene.instance(0) == _scene_with_objects().instance(0)).all()
    plain_meta, plain_arrays = scene_to_wire(_scene_with_objects(with_table=False))
    assert "candidates" not in plain_meta and "instance/0" not in plain_arrays
    assert scene_from_wire(plain_meta, plain_arrays).candidates is None
    del arrays["instance/1"]
    with pytest.raises(ProtocolError):
        scene_from_wire(meta, arrays)


def test_a_blender_object_as_a_candidate():
    from scene_r1.shared.candidates import candidate_from_object, class_words

    corners = [[x, y, z] for x in (1, 1.1) for y in (2, 2.1) for z in (0.74, 0.84)]
    mug = candidate_from_object(3, "Coffee_Mug.001", ["Red_Ceramic"], (0.8, 0.1, 0.1, 1.0), corners)
    assert mug.classes == ("coffee mug",) and mug.colour == "red" and mug.aabb[0] == (1.0, 2.0, 0.74)
    assert class_words("Cube.003") == () and class_words("FloorLamp") == ("floor lamp",)
    with pytest.raises(CandidateError, match="corners"):
        candidate_from_object(4, "Cube", [], None, [[0, 0, float("nan")], [1, 1, 1]])


def test_a_floor_and_a_wall_stay_choosable_rows_but_anchor_no_relation():
    """Artists' scenes have floor planes and walls: every object would be "next to" or "on" them."""
    floor = Candidate(6, "Plane", (), ("Floor",), "gray", box((-4, -4, 0), (4, 4, 0)))
    wall = Candidate(7, "Wall", ("wall",), (), "white", box((-4, 4, 0), (4, 4.1, 2.5)))
    plain = relate(room())
    with_structure = relate([*room(), floor, wall])
    assert with_structure.relations[6] == [] and with_structure.relations[7] == []
    assert all(with_structure.relations[c.id] == plain.relations[c.id] for c in room())
    assert {6, 7} <= set(with_structure.ids) and "Plane" in with_structure.to_text()
    rug = Candidate(8, "Rug", ("rug",), (), "red", box((0, 0, 0), (2.0, 1.4, 0.01)))  # not room-sized: an object
    assert any("rug 8" in phrase for phrase in relate([*room(), rug]).relations[4])
    board = Candidate(9, "Shelf", ("shelf",), (), "brown", box((-1.0, 0.8, 1.0), (2.5, 1.1, 1.02)))  # long, narrow
    assert relate([*room(), board]).relations[9] != []
