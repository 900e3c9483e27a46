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
