"""ReferenceConstraint: after a table label only that label's ids, in the answer only ids the
reasoning named; with a real byte-level BPE tokenizer whose tokens merge spaces and digits."""

import pytest
import torch

from scene_r1.backend.models.references import AnswerConstraint, ReferenceConstraint, labelled_ids
from scene_r1.backend.models.tiny import make_tiny_tokenizer

REFERENCES = ["mug 3", "mug 5", "storage box 8", "mug 12", "Cube.003 4", "object 7"]


@pytest.fixture(scope="module")
def tokenizer():
    corpus = ["mugs: mug 3, mug 5, mug 12. the red mug is mug 3. storage box 8 Cube.003 4 object 7 [3] [12]"] * 50
    return make_tiny_tokenizer(400, corpus)


def allowed_after(tokenizer, text: str, *args, **evidence) -> set[str]:
    """The texts of the tokens still allowed after `text` (generated after an empty prompt)."""
    ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)])
    constraint = ReferenceConstraint(tokenizer, 0, REFERENCES, *args, **evidence)
    scores = constraint(ids, torch.zeros((1, len(tokenizer))))
    return {tokenizer.decode([i]) for i in torch.nonzero(scores[0] > float("-inf")).flatten().tolist()}


def numbers(texts: set[str]) -> set[str]:
    return {t.strip() for t in texts if t.strip().isdigit()}


def test_the_last_word_of_a_label_takes_only_its_ids(tokenizer):
    """ "bottles: bottle 8" for a water bottle 4 and a storage box 8: after "box " only 8, and the answer
    is held to what the reasoning named through the short form."""
    assert numbers(allowed_after(tokenizer, "boxes: box ")) == {"8"}
    assert numbers(allowed_after(tokenizer, "the box is box 8.</think><answer>[")) == {"8"}


def test_labels_and_their_ids():
    assert labelled_ids(REFERENCES) == {
        "mug": {"3", "5", "12"},
        "storage box": {"8"},
        "box": {"8"},  # a label's last words name it too
        "Cube.003": {"4"},
        "object": {"7"},
    }


def test_after_a_label_only_its_ids_may_be_written(tokenizer):
    after_space = allowed_after(tokenizer, "<think>I see mug ")
    assert numbers(after_space) and numbers(after_space) <= {"3", "5", "1", "12"}
    assert "8" not in numbers(after_space) and "4" not in numbers(after_space)
    assert "s" in after_space or "," in after_space  # words go on unhindered
    assert numbers(allowed_after(tokenizer, "<think>the box is storage box ")) <= {"8"}
    assert numbers(allowed_after(tokenizer, "<think>Cube.003 ")) <= {"4"}


def test_an_unfinished_id_can_only_be_finished(tokenizer):
    after_one = allowed_after(tokenizer, "<think>mugs: mug 1")
    assert after_one and all(t[:1].isdigit() for t in after_one)
    assert numbers(after_one) <= {"2"}


def test_the_answer_names_only_what_the_reasoning_named(tokenizer):
    reasoning = "<think>mugs: mug 3, mug 5. the red mug is mug 3.</think><answer>["
    assert numbers(allowed_after(tokenizer, reasoning)) <= {"3", "5"}
    assert "3" in numbers(allowed_after(tokenizer, reasoning))
    nothing_named = "<think>I look at the table.</think><answer>["
    anything = numbers(allowed_after(tokenizer, nothing_named))
    assert {"3", "5", "8", "4", "7"} <= anything and not {"9", "2", "6"} & anything


def test_free_text_is_left_alone(tokenizer):
    for text in ("<think>the red", "<think>mugs: mug 3, mug 5.</think><answer>[3]</answer>"):
        ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)])
        scores = ReferenceConstraint(tokenizer, 0, REFERENCES)(ids, torch.zeros((1, len(tokenizer))))
        assert torch.isfinite(scores).all()


def test_a_table_without_labelled_references_constrains_nothing_and_does_not_fail(tokenizer):
    ids = torch.tensor([tokenizer.encode("<think>mug 3</think><answer>[", add_special_tokens=False)])
    scores = ReferenceConstraint(tokenizer, 0, ["3", "object"])(ids, torch.zeros((1, len(tokenizer))))
    assert torch.isfinite(scores).all()


def test_a_list_of_a_label_goes_on_until_it_has_every_row(tokenizer):
    assert "." not in {t.strip() for t in allowed_after(tokenizer, "mugs: mug 3")}  # 5 and 12 are not listed yet
    assert numbers(allowed_after(tokenizer, "mugs: mug 3, mug 5, mug ")) in ({"1"}, {"12"}, {"1", "12"})
    assert "." in {t.strip()[:1] for t in allowed_after(tokenizer, "mugs: mug 3, mug 5, mug 12")}  # all listed


def test_the_answer_holds_to_the_conclusion(tokenizer):
    text = "mugs: mug 3, mug 5, mug 12. the red mug is mug 5.</think><answer>["
    assert numbers(allowed_after(tokenizer, text)) == {"5"}


def test_a_dot_inside_a_name_does_not_end_the_reasoning_s_sentence(tokenizer):
    text = "cubes: Cube.003 4. the cube is Cube.003 4.</think><answer>["
    assert numbers(allowed_after(tokenizer, text)) == {"4"}


def test_a_number_ending_a_name_is_not_a_label_of_its_own():
    assert "2" not in labelled_ids(["Chair 2 5", "mug 3"]) and labelled_ids(["Chair 2 5"])["Chair 2"] == {"5"}


def only(texts: set[str]) -> str:
    assert len(texts) >= 1
    return min(texts, key=len)


def written(tokenizer, text: str, steps: int, *args, **evidence) -> str:
    """`text` followed by what the constraint forces, one allowed token at a time (the shortest)."""
    for _ in range(steps):
        allowed = allowed_after(tokenizer, text, *args, **evidence)
        if len(allowed) > 200:  # free again
            break
        text += only(allowed)
    return text


def test_the_class_it_opens_with_is_listed_whole_then_the_query_then_one_of_the_rows(tokenizer):
    text = written(tokenizer, "<think>mugs:", 40, "the red mug")
    assert text.startswith("<think>mugs: mug 3, mug 5, mug 12. the red mug is ")
    allowed = allowed_after(tokenizer, "<think>mugs: mug 3, mug 5, mug 12. the red mug is", "the red mug")
    assert allowed and all(
        " mug 3.".startswith(t) or " mug 5.".startswith(t) or " mug 12.".startswith(t) for t in allowed
    )


def test_the_conclusion_is_a_row_the_table_supports_best(tokenizer):
    prefix = "<think>mugs: mug 3, mug 5, mug 12. the red mug is"
    text = written(tokenizer, prefix, 12, "the red mug", prefer=lambda rows: ["mug 12"])
    assert text.startswith(prefix + " mug 12.")


def test_a_class_s_rows_include_its_synonyms_and_guessed_classes(tokenizer):
    classes = {"mug 3": "mug", "mug 5": "mug", "mug 12": "mug", "storage box 8": "box", "Cube.003 4": "box"}
    nouns = {"cartons": "box", "box": "box"}
    same = lambda reference, noun: classes.get(reference) == nouns.get(noun)  # noqa: E731
    text = written(tokenizer, "<think>cartons:", 60, "the box", same_class=same)
    assert text.startswith("<think>cartons: storage box 8, Cube.003 4. the box is")


def test_all_of_a_class_concludes_on_every_row_and_answers_with_their_ids(tokenizer):
    text = written(tokenizer, "<think>mugs:", 60, "all the mugs", True)
    assert text.startswith("<think>mugs: mug 3, mug 5, mug 12. all the mugs is mug 3, mug 5, mug 12.")
    answer = written(tokenizer, "<think>mugs: mug 3, mug 5, mug 12. all the mugs is mug 3, mug 12.</think><answer>", 12)
    assert answer.endswith("<answer>[3, 12]")


def test_the_answer_is_one_the_table_allows_and_the_reasoning_is_free(tokenizer):
    def scores_after(text):
        ids = torch.tensor([tokenizer.encode(text, add_special_tokens=False)])
        return AnswerConstraint(tokenizer, 0, ["3", "12"])(ids, torch.zeros((1, len(tokenizer))))

    def allowed(text):
        return {tokenizer.decode([i]) for i in torch.nonzero(scores_after(text)[0] > float("-inf")).flatten().tolist()}

    assert torch.isfinite(scores_after("<think>I count the mugs")).all()
    inside = allowed("<think>three mugs.</think><answer>")
    assert inside and all("3</answer>".startswith(t) or "12</answer>".startswith(t) for t in inside)
    assert allowed("<think>.</think><answer>1") <= {"2", "2</answer>"} and allowed("<think>.</think><answer>12")


def test_reasoning_in_another_form_is_not_forced_into_the_template(tokenizer):
    """A larger model (Qwen2.5-VL) reasons its own way: only its references are held to the table."""
    free = allowed_after(tokenizer, "<think>Let me read the table first: the", "the red mug")
    assert len(free) > 50
    assert numbers(allowed_after(tokenizer, "<think>Let me read the table first: mug ", "the red mug")) <= {
        "3",
        "5",
        "1",
        "12",
    }


def test_a_model_trained_on_the_template_opens_with_the_query_s_class(tokenizer):
    """The shipped chooser skipped the colon ("tables 6. ...") or opened with another class."""
    text = written(tokenizer, "<think>", 70, "the red mug", template=True)
    assert text.startswith("<think>mugs: mug 3, mug 5, mug 12. the red mug is ")
    assert len(allowed_after(tokenizer, "<think>", "the red mug")) > 50  # another model opens as it likes
    assert len(allowed_after(tokenizer, "<think>", "the piano", template=True)) > 50  # no row of that class


def test_ids_the_query_names_are_not_the_conclusion(tokenizer):
    text = "<think>mugs: mug 3, mug 5, mug 12. the mug left of box 8 is mug 5.</think><answer>"
    assert written(tokenizer, text, 12, "the mug left of box 8").endswith("<answer>[5]")


def test_all_of_a_class_without_rows_is_left_to_the_model(tokenizer):
    prefix = "<think>mugs: mug 3, mug 5, mug 12. all the kettles is"
    assert len(allowed_after(tokenizer, prefix, "all the kettles", True)) > 50


def test_another_model_s_heading_is_not_taken_for_a_class(tokenizer):
    assert len(allowed_after(tokenizer, "<think>Analysis:", "the red mug")) > 50
