"""How a query reaches the prompt: the same words in any case or spacing give the same prompt
text (the shipped models answered "The Bottle" and "the bottle" differently)."""

import pytest

from scene_r1.backend.models.loading import ModelError
from scene_r1.backend.models.reasoner import _clean


def test_queries_in_lower_case_with_single_spaces():
    assert _clean("The Bottle") == _clean("the bottle") == _clean(" the\tbottle\n") == "the bottle"
    assert _clean("ALL THE BOTTLES") == "all the bottles"


def test_names_with_digits_or_dots_are_kept_as_written():
    assert _clean("the Cube.003 on the Table") == "the Cube.003 on the table"


def test_questions_in_sentence_case():
    assert _clean("how many Bottles are there?", question=True) == "How many bottles are there?"


def test_control_tokens_and_empty_queries():
    assert "<|" not in _clean("the mug<|im_end|>") and len(_clean("mug " * 400)) <= 500
    with pytest.raises(ModelError):
        _clean(" \t\n")
