"""Constrained decoding of an answer's numbers: a format of literal token pieces and Number slots,
decoded token by token with only the tokens that can still complete it allowed (transformers'
prefix_allowed_tokens_fn). The reasoner uses it when a weak model's free answer does not parse."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Number:
    """A slot of 1 to 4 digits in a constrained answer format, at most `high`, and above the
    value of slot `above` (an index among the format's numbers) when given."""

    high: int = 9999
    above: int | None = None
    low: int = -1  # the value must be above this (when `above` names no slot)


def next_allowed(pieces: list, generated: list[int], digits: dict[int, str], eos: int) -> list[int]:
    """Token ids allowed next, replaying `generated` through the format's pieces (literal token
    lists and Number slots)."""
    piece, offset, current, values = 0, 0, "", []
    for token in generated:
        if piece >= len(pieces):
            return [eos]
        if isinstance(pieces[piece], Number):
            if token in digits and len(current + digits[token]) <= 4:
                current += digits[token]
                continue
            values.append(int(current or 0))  # the number ended with the next literal
            piece, offset, current = piece + 1, 0, ""
        if piece < len(pieces):
            offset += 1
            if offset == len(pieces[piece]):
                piece, offset = piece + 1, 0
    if piece >= len(pieces):
        return [eos]
    slot = pieces[piece]
    if not isinstance(slot, Number):
        return [slot[offset]]
    low = values[slot.above] if slot.above is not None and slot.above < len(values) else slot.low
    options = [t for t, d in digits.items() if current != "0" and can_reach(current + d, low, slot.high)]
    if current and (int(current) > low or not options):
        following = pieces[piece + 1] if piece + 1 < len(pieces) else None
        options.append(following[0] if following else eos)
    return options or [eos]


def can_reach(prefix: str, low: int, high: int) -> bool:
    """Whether some number of at most 4 digits starting with `prefix` lies in (low, high]."""
    if len(prefix) > 4 or (len(prefix) > 1 and prefix[0] == "0"):
        return False
    if prefix == "0":  # no digit may follow a leading zero
        return low < 0 <= high
    value = int(prefix)
    for extra in range(5 - len(prefix)):
        smallest, largest = value * 10**extra, (value + 1) * 10**extra - 1
        if smallest <= high and largest > low:
            return True
    return False
