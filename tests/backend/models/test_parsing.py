"""What real vision-language models emit, and what we make of it."""

import pytest

from scene_r1.backend.models.constrained import Number, can_reach, next_allowed
from scene_r1.backend.models.parsing import ParseError, Reply, normalize_answer, parse_boxes, parse_span
from scene_r1.backend.models.reasoner import box_to_frame


def test_reply_splits_reasoning_and_answer():
    reply = Reply.parse("<think>The mug is left of the laptop.</think>\n<answer>3.5s to 7s</answer>")
    assert reply.well_formed and reply.think == "The mug is left of the laptop." and reply.answer == "3.5s to 7s"


@pytest.mark.parametrize(
    "text, answer, well_formed",
    [
        ("3.5s to 7s", "3.5s to 7s", False),  # no tags at all
        ("<think>hmm</think> It is seen from 3.5s to 7s.", "It is seen from 3.5s to 7s.", False),  # no answer tag
        ("<answer>2 to 4", "2 to 4", False),  # unclosed
        ("Sure! <think>a</think><answer>x</answer> Hope this helps.", "x", False),  # prose around
        ("<THINK>a</THINK><ANSWER>x</ANSWER>", "x", True),
        (b"<answer>caf\xe9</answer>", "caf\ufffd", False),  # not UTF-8
    ],
)
def test_reply_tolerates_what_models_emit(text, answer, well_formed):
    reply = Reply.parse(text)
    assert reply.answer == answer and reply.well_formed == well_formed


@pytest.mark.parametrize(
    "answer, span",
    [
        ("3.5s to 7s", (3.5, 7.0)),
        ("from 7 to 3.5 seconds", (3.5, 7.0)),  # swapped
        ("[2, 4.25]", (2.0, 4.25)),
        ("00:03 - 00:07.5", (3.0, 7.5)),
        ("01:02 to 01:10", (62.0, 70.0)),
        ("at 5s", (5.0, 5.0)),
        ("-2s to 199s", (0.0, 100.0)),  # clipped to the duration
    ],
)
def test_spans(answer, span):
    assert parse_span(answer, duration=100.0) == pytest.approx(span)


@pytest.mark.parametrize("answer", ["", "the whole video", "soon"])
def test_no_span_is_said_plainly(answer):
    with pytest.raises(ParseError, match="no time span"):
        parse_span(answer)


@pytest.mark.parametrize(
    "answer, boxes",
    [
        ('{"bbox_2d": [10, 20, 110, 220], "label": "mug"}', [((10, 20, 110, 220), "mug")]),
        (
            '```json\n[{"bbox_2d": [1, 2, 3, 4], "label": "a"}, {"bbox_2d": [5, 6, 7, 8], "label": "b"}]\n```',
            [((1, 2, 3, 4), "a"), ((5, 6, 7, 8), "b")],
        ),
        ('{"bbox_2d": [110, 220, 10, 20]}', [((10, 20, 110, 220), "")]),  # swapped corners
        ("The box is [12.5, 30, 40, 60.5].", [((12.5, 30, 40, 60.5), "")]),
        ("x1=5, y1=6, x2=50, y2=60", [((5, 6, 50, 60), "")]),  # prose numbers
        ('{"bbox": [1, 2, 3, 4], "label": "cup"} and more text {', [((1, 2, 3, 4), "cup")]),
    ],
)
def test_boxes(answer, boxes):
    assert [(b.box, b.label) for b in parse_boxes(answer)] == [
        (tuple(float(v) for v in box), label) for box, label in boxes
    ]


@pytest.mark.parametrize("answer", ["", "no object", '{"bbox_2d": [1, 2, 3]}', "1 2 3"])
def test_no_box_is_said_plainly(answer):
    with pytest.raises(ParseError, match="no box"):
        parse_boxes(answer)


def test_normalized_answers():
    assert normalize_answer("Two.") == normalize_answer("2") == "2"
    assert normalize_answer("The Red  chair!") == "red chair"


def test_box_conventions_map_back_to_frame_pixels():
    # Qwen2.5-VL saw a 640x480 frame resized to 644x476 (multiples of 28): its pixels scale back.
    assert box_to_frame([0, 0, 644, 476], "resized-pixels", (644, 476), (640, 480)).tolist() == pytest.approx(
        [0, 0, 640, 480]
    )
    assert box_to_frame([322, 238, 644, 476], "resized-pixels", (644, 476), (640, 480)).tolist() == pytest.approx(
        [320, 240, 640, 480]
    )
    # Qwen2-VL / Qwen3-VL answer on 0..1000 whatever the input size.
    assert box_to_frame([250, 500, 750, 1000], "relative-1000", (644, 476), (640, 480)).tolist() == pytest.approx(
        [160, 240, 480, 480]
    )


def test_constrained_numbers_stay_in_range_and_ordered():
    assert can_reach("1", 0, 168) and can_reach("16", 0, 168) and can_reach("17", 0, 168) is not False
    assert not can_reach("2", 0, 1)  # 2 > high, and 2x is larger still
    assert not can_reach("01", -1, 99) and can_reach("0", -1, 99) and not can_reach("0", 0, 99)
    digits = {10 + d: str(d) for d in range(10)}
    end, comma, close = 1, 2, 3
    pieces = [Number(50), [comma], Number(50, above=0), [close]]
    # first number: any digit; after "4": digits keeping it <= 50 ("40".."49", "50" is not a 2-digit "4x") or the comma
    allowed = next_allowed(pieces, [14], digits, end)
    assert comma in allowed and 19 in allowed
    # second number must exceed the first (45): "4" alone cannot end, "3" cannot start
    assert 13 not in next_allowed(pieces, [14, 15, comma], digits, end)
    assert close not in next_allowed(pieces, [14, 15, comma, 14], digits, end)
    assert close in next_allowed(pieces, [14, 15, comma, 14, 17], digits, end)
    assert next_allowed(pieces, [14, 15, comma, 14, 17, close], digits, end) == [end]
