"""Reading candidate ids out of what models write."""

import pytest

from scene_r1.backend.models.parsing import ParseError, parse_ids


@pytest.mark.parametrize(
    "answer,ids",
    [
        ("[3]", [3]),
        ("[2, 5]", [2, 5]),
        ("```json\n[4, 4, 7]\n```", [4, 7]),
        ("The mug is object 3.", [3]),
        ("ids 2 and 5", [2, 5]),
        ("[12] (the one at 1.5, 2.0)", [12]),  # bracketed numbers win over positions in prose
        ("[99, 3]", [3]),  # ids outside the table are dropped
    ],
)
def test_ids(answer, ids):
    assert parse_ids(answer, range(1, 20)) == ids


@pytest.mark.parametrize("answer", ["", "the red one", "[0]", "[42]", "1.5"])
def test_no_usable_id_is_a_clear_error(answer):
    with pytest.raises(ParseError, match="no candidate id"):
        parse_ids(answer, range(1, 20))
