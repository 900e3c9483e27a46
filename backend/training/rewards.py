"""Rule rewards for GRPO (the paper's: format, temporal IoU, box IoU, answer match), each a plain
function of one completion, and their weighted combination per task.

trl calls reward functions with the batch's completions and every extra dataset column as keyword
lists; `trl_reward` adapts a per-completion function to that calling convention.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..eval.metrics import box_iou_2d, temporal_iou
from ..models.parsing import ParseError, Reply, normalize_answer, parse_boxes, parse_ids, parse_span
from ..models.reasoner import box_to_frame

TAGS = ("<think>", "</think>", "<answer>", "</answer>")


def completion_text(completion) -> str:
    """trl passes conversational completions as [{"role": "assistant", "content": ...}]."""
    if isinstance(completion, list):
        completion = "".join(part.get("content", "") if isinstance(part, dict) else str(part) for part in completion)
    return str(completion)


def format_reward(text: str, task: str) -> float:
    """1 when both tag pairs are there, in order, and the answer parses for the task; otherwise
    a quarter of 0.5 per tag present (a gradient towards the format for a model that lacks it)."""
    reply = Reply.parse(text)
    if reply.well_formed:
        try:
            _parse_for(task, reply.answer)
            return 1.0
        except ParseError:
            return 0.5
    return 0.5 * sum(tag in text for tag in TAGS) / len(TAGS)


def _parse_for(task: str, answer: str):
    if task == "temporal":
        return parse_span(answer)
    if task == "image":
        return parse_boxes(answer)
    if task == "candidates":
        return parse_ids(answer, range(1, 10_000))
    if not answer.strip():
        raise ParseError("empty answer")
    return answer


def temporal_reward(text: str, spans, duration: float | None = None) -> float:
    """IoU of the answered span with the best-matching ground-truth span (0 if none parses)."""
    try:
        predicted = parse_span(Reply.parse(text).answer, duration)
    except ParseError:
        return 0.0
    return max((temporal_iou(predicted, span) for span in spans), default=0.0)


def generalized_iou_2d(a, b) -> float:
    """GIoU in [-1, 1]: IoU minus the share of the enclosing box neither covers."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    enclosing = (max(a[2], b[2]) - min(a[0], b[0])) * (max(a[3], b[3]) - min(a[1], b[1]))
    iou = box_iou_2d(a, b)
    if enclosing <= 0:
        return iou
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])
    union = union / (1 + iou) if iou > 0 else union  # |A|+|B| = union + intersection = union (1 + iou)
    return iou - (enclosing - union) / enclosing


def box_reward(text: str, box, frame_size, model_size, convention: str = "resized-pixels", giou: bool = False) -> float:
    """IoU (or GIoU mapped to 0..1) of the first answered box with the ground truth, in frame pixels."""
    try:
        parsed = parse_boxes(Reply.parse(text).answer)[0].box
    except ParseError:
        return 0.0
    predicted = box_to_frame(parsed, convention, tuple(model_size), tuple(frame_size))
    if giou:
        return (generalized_iou_2d(predicted, box) + 1) / 2
    return box_iou_2d(predicted, box)


def answer_reward(text: str, answers, normalized: bool = True) -> float:
    """1 when the answer matches one of the reference answers (normalized: case, punctuation,
    articles, number words), else 0."""
    answer = Reply.parse(text).answer
    if isinstance(answers, str):
        answers = [answers]
    if normalized:
        return float(normalize_answer(answer) in {normalize_answer(a) for a in answers})
    return float(answer.strip() in {a.strip() for a in answers})


def id_reward(text: str, ids) -> float:
    """Candidate grounding: Jaccard overlap of the answered ids with the referred ones (1 when they
    are exactly the referred set; "all the X" earns part credit for part of the set)."""
    try:
        answered = set(parse_ids(Reply.parse(text).answer, range(1, 10_000)))
    except ParseError:
        return 0.0
    wanted = {int(i) for i in ids}
    return len(answered & wanted) / len(answered | wanted) if answered | wanted else 0.0


@dataclass(frozen=True)
class RewardWeights:
    format: float = 0.5
    temporal: float = 1.0
    box: float = 1.0
    answer: float = 1.0
    giou: bool = False


def task_rewards(task: str, weights: RewardWeights = RewardWeights()):
    """(reward functions for trl, their weights): format + each task's accuracy reward. With several
    tasks ("all"), each function scores its own task's samples and returns None for the others,
    which trl leaves out of that reward."""
    from .records import task_list

    tasks = task_list(task)

    def mine(name, sample_tasks, count):
        return [name in tasks and (t is None or t == name) for t in (sample_tasks or [None] * count)]

    def format_component(completions, task=None, **_):
        names = task or [tasks[0]] * len(completions)
        return [format_reward(completion_text(c), t) for c, t in zip(completions, names)]

    def temporal_component(completions, spans, duration, task=None, **_):
        return [
            temporal_reward(completion_text(c), s, d) if ok else None
            for c, s, d, ok in zip(completions, spans, duration, mine("temporal", task, len(completions)))
        ]

    def box_component(completions, box, frame_size, model_size, convention, task=None, **_):
        return [
            box_reward(completion_text(c), b, f, m, v, weights.giou) if ok else None
            for c, b, f, m, v, ok in zip(
                completions, box, frame_size, model_size, convention, mine("image", task, len(completions))
            )
        ]

    def answer_component(completions, answers, task=None, **_):
        return [
            answer_reward(completion_text(c), a) if ok else None
            for c, a, ok in zip(completions, answers, mine("vqa", task, len(completions)))
        ]

    format_component.__name__ = "format"
    temporal_component.__name__ = "temporal_iou"
    box_component.__name__ = "box_giou" if weights.giou else "box_iou"
    answer_component.__name__ = "answer_match"
    accuracy = {
        "temporal": (temporal_component, weights.temporal),
        "image": (box_component, weights.box),
        "vqa": (answer_component, weights.answer),
    }
    return [format_component] + [accuracy[t][0] for t in tasks], [weights.format] + [accuracy[t][1] for t in tasks]
