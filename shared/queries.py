"""What a query may say: checked by the client (and the add-on) before sending, and by the server on
arrival, with the protocol's one list of modes, options and limits."""

from __future__ import annotations

import math

from .protocol import MAX_QUERY_CHARS, QUERY_MODES, QUERY_OPTIONS, ProtocolError


# ---- what a query may say (the client checks it before sending, the server on arrival) ------------
def check_query(mode, text, options) -> None:
    """ProtocolError("bad-payload") unless mode, text and options make a query this protocol
    carries: a mode of QUERY_MODES, text of at most MAX_QUERY_CHARS (needed except for lift), and
    only the options of QUERY_OPTIONS[mode], each of its type."""
    if mode not in QUERY_MODES:
        text = f"query mode must be one of {', '.join(QUERY_MODES)}, got {str(mode)[:40]!r}"
        raise ProtocolError("bad-payload", text)
    if not isinstance(text, str) or len(text) > MAX_QUERY_CHARS:
        raise ProtocolError("bad-payload", f"a query's text must be a string of at most {MAX_QUERY_CHARS} characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # e.g. a command line's undecodable bytes, kept as lone surrogates
        raise ProtocolError("bad-payload", "a query's text is not valid UTF-8 text") from None
    if any(ord(c) < 32 and c not in "\t\n\r" or ord(c) == 127 for c in text):  # NUL, escapes: not a sentence
        raise ProtocolError("bad-payload", "a query's text must not contain control characters")
    if mode != "lift" and not text.strip():
        raise ProtocolError("bad-payload", f"{'an' if mode == 'ask' else 'a'} {mode} query needs text")
    if not isinstance(options, dict):
        raise ProtocolError("bad-payload", "a query's options must be an object")
    unknown = sorted(set(options) - set(QUERY_OPTIONS[mode]))
    if unknown:
        raise ProtocolError(
            "bad-payload",
            f"a {mode} query takes the options {', '.join(QUERY_OPTIONS[mode])}; unknown: {', '.join(unknown)[:80]}",
        )
    for flag in ("no_cache", "every"):
        if options.get(flag) is not None and not isinstance(options[flag], bool):
            raise ProtocolError("bad-payload", f"option {flag} must be true or false")
    if mode == "lift":
        frame, box = options.get("frame"), options.get("box")
        if not isinstance(frame, int) or isinstance(frame, bool) or not 0 <= frame < 1 << 31:
            raise ProtocolError("bad-payload", "a lift query needs option frame: a frame index (an integer >= 0)")
        points = _check_points(options.get("points", []))
        if box is None and any(point[2] == 1 for point in points):
            return  # clicks alone
        if not isinstance(box, list) or len(box) != 4 or not all(_is_number(v) and abs(v) < 1e7 for v in box):
            raise ProtocolError(
                "bad-payload", "a lift query needs option box: [x1, y1, x2, y2] in pixels (or a point with label 1)"
            )


MAX_POINTS = 64


def _check_points(points) -> list:
    """A lift query's clicks: a list of at most MAX_POINTS [x, y, label], label 1 on the object, 0 not."""
    if not isinstance(points, list) or len(points) > MAX_POINTS:
        raise ProtocolError("bad-payload", f"option points is a list of at most {MAX_POINTS} [x, y, label]")
    for point in points:
        if not (isinstance(point, list) and len(point) == 3 and all(_is_number(v) and abs(v) < 1e7 for v in point)):
            raise ProtocolError("bad-payload", f"a point is [x, y, label] in pixels, got {str(point)[:60]}")
        if point[2] not in (0, 1):
            raise ProtocolError("bad-payload", f"a point's label is 1 (on the object) or 0 (not), got {point[2]!r}")
    return points


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
