"""Rewards on hand-made completions: good, partly right, malformed."""

import pytest

from scene_r1.backend.training.rewards import (
    RewardWeights,
    answer_reward,
    box_reward,
    completion_text,
    format_reward,
    generalized_iou_2d,
    task_rewards,
    temporal_reward,
)

GOOD_SPAN = "<think>The mug appears when the camera turns left.</think><answer>2s to 4s</answer>"


def test_format():
    assert format_reward(GOOD_SPAN, "temporal") == 1.0
    assert format_reward("<think>x</think><answer>never</answer>", "temporal") == 0.5  # tags, but no span
    assert format_reward("<think>x</think> 2s to 4s", "temporal") == 0.25  # two of four tags
    assert format_reward("2s to 4s", "temporal") == 0.0
    assert format_reward('<think>a</think><answer>{"bbox_2d": [1, 2, 3, 4]}</answer>', "image") == 1.0
    assert format_reward("<think>a</think><answer>Two</answer>", "vqa") == 1.0


def test_temporal_iou():
    assert temporal_reward(GOOD_SPAN, [[2, 4]]) == pytest.approx(1.0)
    assert temporal_reward(GOOD_SPAN, [[3, 5]]) == pytest.approx(1 / 3)
    assert temporal_reward(GOOD_SPAN, [[10, 12], [3, 4]]) == pytest.approx(0.5)  # the best of several visible spans
    assert temporal_reward("<answer>whenever</answer>", [[2, 4]]) == 0.0


def test_box_iou_in_frame_pixels():
    # the model saw a 640x480 frame at 644x476: its box [0, 0, 322, 238] is the frame's top-left quarter
    text = '<think>t</think><answer>{"bbox_2d": [0, 0, 322, 238], "label": "mug"}</answer>'
    assert box_reward(text, [0, 0, 320, 240], (640, 480), (644, 476)) == pytest.approx(1.0)
    assert box_reward(text, [0, 0, 640, 240], (640, 480), (644, 476)) == pytest.approx(0.5)
    assert box_reward(text, [0, 0, 320, 240], (640, 480), (644, 476), "relative-1000") == pytest.approx(
        322 * 0.64 * 238 * 0.48 / (320 * 240)
    )
    assert box_reward("<answer>no idea</answer>", [0, 0, 10, 10], (640, 480), (644, 476)) == 0.0
    far = '<answer>{"bbox_2d": [500, 400, 644, 476]}</answer>'
    assert box_reward(far, [0, 0, 100, 100], (640, 480), (644, 476)) == 0.0
    assert 0 < box_reward(far, [0, 0, 100, 100], (640, 480), (644, 476), giou=True) < 0.5  # GIoU still ranks misses


def test_giou():
    assert generalized_iou_2d([0, 0, 2, 2], [0, 0, 2, 2]) == pytest.approx(1.0)
    assert generalized_iou_2d([0, 0, 1, 1], [2, 0, 3, 1]) == pytest.approx(-1 / 3)
    assert generalized_iou_2d([0, 0, 2, 2], [1, 0, 3, 2]) == pytest.approx(1 / 3)


def test_answer_match():
    assert answer_reward("<think>I count them.</think><answer>Two.</answer>", ["2"]) == 1.0
    assert answer_reward("<answer>the Red chair</answer>", ["red chair", "chair"]) == 1.0
    assert answer_reward("<answer>Two.</answer>", ["2"], normalized=False) == 0.0
    assert answer_reward("<answer>three</answer>", "2") == 0.0


def test_task_rewards_follow_trls_calling_convention():
    functions, weights = task_rewards("image", RewardWeights(format=0.3))
    completions = [
        [{"role": "assistant", "content": '<think>a</think><answer>{"bbox_2d": [0, 0, 10, 10]}</answer>'}],
        [{"role": "assistant", "content": "junk"}],
    ]
    columns = {
        "box": [[0, 0, 10, 10]] * 2,
        "frame_size": [(10, 10)] * 2,
        "model_size": [(10, 10)] * 2,
        "convention": ["resized-pixels"] * 2,
        "query": ["x", "x"],
    }
    assert [f.__name__ for f in functions] == ["format", "box_iou"] and weights == [0.3, 1.0]
    assert functions[0](completions, **columns) == [1.0, 0.0]
    assert functions[1](completions, **columns) == [pytest.approx(1.0), 0.0]
    assert completion_text(completions[0]).startswith("<think>")
    with pytest.raises(ValueError):
        task_rewards("dance")


def test_with_several_tasks_each_accuracy_reward_scores_only_its_own_samples():
    functions, weights = task_rewards("all")
    assert [f.__name__ for f in functions] == ["format", "temporal_iou", "box_iou", "answer_match"] and weights == [
        0.5,
        1.0,
        1.0,
        1.0,
    ]
    completions = [
        [{"role": "assistant", "content": "<think>a</think><answer>1s to 2s</answer>"}],
        [{"role": "assistant", "content": '<think>a</think><answer>{"bbox_2d": [0, 0, 10, 10]}</answer>'}],
        [{"role": "assistant", "content": "<think>a</think><answer>two</answer>"}],
    ]
    columns = {
        "task": ["temporal", "image", "vqa"],
        "spans": [[[1.0, 2.0]], None, None],
        "duration": [4.0, None, None],
        "box": [None, [0, 0, 10, 10], None],
        "frame_size": [None, (10, 10), None],
        "model_size": [None, (10, 10), None],
        "convention": [None, "resized-pixels", None],
        "answers": [None, None, ["2"]],
    }
    format_scores, temporal, box, answer = (f(completions, **columns) for f in functions)
    assert format_scores == [1.0, 1.0, 1.0]
    assert temporal[1:] == [None, None] and temporal[0] == pytest.approx(1.0)
    assert box[0] is None and box[2] is None and box[1] == pytest.approx(1.0)
    assert answer == [None, None, 1.0]
