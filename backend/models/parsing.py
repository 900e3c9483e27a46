"""Reading what vision-language models actually emit.

The paper's format is `<think>...</think><answer>...</answer>`. Real models drop tags, add
prose, wrap JSON in code fences, return a list of boxes, swap corners or step outside the
image. These functions take what is usable and say plainly when nothing is. Plain Python:
the rewards in training use the same parsers.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from .loading import ModelError

_THINK = re.compile(r"<think>(.*?)(?:</think>|$)", re.S | re.I)
_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.S | re.I)
_NUMBER = r"[-+]?\d+(?:\.\d+)?"


class ParseError(ModelError):
    """The model answered, but not with anything usable for this task."""


@dataclass(frozen=True)
class Reply:
    """One model answer split into its reasoning and its answer."""

    text: str  # everything the model generated
    think: str
    answer: str
    well_formed: bool  # both tag pairs present, in order

    @classmethod
    def parse(cls, text: str) -> Reply:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        think_match, answer_match = _THINK.search(text), _ANSWER.search(text)
        think = think_match.group(1).strip() if think_match else ""
        if answer_match:
            answer = answer_match.group(1).strip()
        else:  # no answer tag: whatever follows the reasoning is the answer
            answer = (text[think_match.end() :] if think_match else text).strip()
        well_formed = bool(re.fullmatch(r"\s*<think>.*?</think>\s*<answer>.*?</answer>\s*", text, re.S | re.I))
        return cls(text, think, answer, well_formed)


def parse_span(answer: str, duration: float | None = None) -> tuple[float, float]:
    """A time span in seconds from answers like "3.5s to 7s", "from 00:03 to 00:07", "[3.5, 7]".

    Swapped ends are put in order; with `duration`, the span is clipped to [0, duration].
    """
    text = answer.strip()
    clock = re.findall(r"(\d+):(\d{1,2}(?:\.\d+)?)", text)
    if len(clock) >= 2:
        values = [int(m) * 60 + float(s) for m, s in clock[:2]]
    else:
        values = [float(v) for v in re.findall(_NUMBER, text)[:2]]
    if len(values) == 1:
        values = values * 2  # a single moment
    if len(values) != 2:
        raise ParseError(f"no time span in the answer {answer[:120]!r}")
    start, end = sorted(values)
    if duration is not None:
        start, end = min(max(start, 0.0), duration), min(max(end, 0.0), duration)
    return start, end


@dataclass(frozen=True)
class ParsedBox:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the model's coordinate convention
    label: str = ""


def _boxes_from_json(text: str) -> list[ParsedBox]:
    text = re.sub(r"```(?:json)?", "", text)
    for start in (m.start() for m in re.finditer(r"[\[{]", text)):
        for end in range(len(text), start, -1):
            if text[end - 1] not in "]}":
                continue
            try:
                value = json.loads(text[start:end])
            except ValueError:
                continue
            items = value if isinstance(value, list) else [value]
            boxes = []
            for item in items:
                if isinstance(item, dict):
                    coords = item.get("bbox_2d", item.get("bbox", item.get("box")))
                    label = str(item.get("label", ""))
                else:
                    coords, label = item, ""
                if isinstance(coords, list) and len(coords) == 4 and all(isinstance(c, (int, float)) for c in coords):
                    boxes.append(ParsedBox(tuple(float(c) for c in coords), label))
            if boxes:
                return boxes
    return []


def parse_boxes(answer: str) -> list[ParsedBox]:
    """Every 2D box in an answer: JSON objects with "bbox_2d" (or a list of them), a bare list of
    four numbers, or four numbers in prose. Corners are put in order (x1 <= x2, y1 <= y2)."""
    boxes = _boxes_from_json(answer)
    if not boxes:
        prose = re.sub(r"[A-Za-z_][A-Za-z_0-9]*", " ", answer)  # "x1", "bbox_2d": names, not numbers
        numbers = [float(v) for v in re.findall(_NUMBER, prose)]
        boxes = [ParsedBox(tuple(numbers[i : i + 4])) for i in range(0, len(numbers) - len(numbers) % 4, 4)]
    ordered = []
    for parsed in boxes:
        x1, y1, x2, y2 = parsed.box
        ordered.append(ParsedBox((min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)), parsed.label))
    if not ordered:
        raise ParseError(f"no box in the answer {answer[:120]!r}")
    return ordered


def normalize_answer(text: str) -> str:
    """Lower case, no punctuation or articles, numbers as digits: for exact-match scoring."""
    words = {
        "zero": "0",
        "one": "1",
        "two": "2",
        "three": "3",
        "four": "4",
        "five": "5",
        "six": "6",
        "seven": "7",
        "eight": "8",
        "nine": "9",
        "ten": "10",
    }
    text = re.sub(r"[^\w\s]", " ", text.lower())
    tokens = [words.get(t, t) for t in text.split() if t not in ("a", "an", "the")]
    return " ".join(tokens)


def parse_ids(answer: str, allowed) -> list[int]:
    """The candidate ids an answer names, in order and once each, keeping only `allowed` ones:
    "[3]", "[2, 5]", "ids 2 and 5", "object #3". Numbers inside brackets win over numbers in prose."""
    allowed = {int(a) for a in allowed}
    text = re.sub(r"```(?:json)?", "", answer)
    bracketed = re.findall(r"\[([^\[\]]*)\]", text)
    integer = r"(?<!\d)(?<!\d\.)\d+(?!\d)(?!\.\d)"  # whole numbers, not parts of decimals
    numbers = [int(v) for group in bracketed for v in re.findall(integer, group)]
    if not any(n in allowed for n in numbers):
        numbers = [int(v) for v in re.findall(integer, text)]
    ids = list(dict.fromkeys(n for n in numbers if n in allowed))
    if not ids:
        raise ParseError(f"no candidate id (one of {sorted(allowed)[:20]}) in the answer {answer[:120]!r}")
    return ids
