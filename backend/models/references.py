"""Decoding that keeps a model's object references true to the candidate table (issue 18).

A candidate answer's reasoning names objects the way the table does ("mugs: mug 3, mug 5. the red
mug is mug 3.") and its answer lists ids. A small model often writes the right class with a wrong
number ("coffee mug 8" where 8 is the storage box), lists only some rows of the class, then answers
with an id its reasoning never named or did not conclude on. `ReferenceConstraint`, a transformers
logits processor, allows after a table label (or its last words: "mug" for "coffee mug") and a
space only the ids of candidates with that label; a list of a label's rows goes on until it has
them all; inside `<answer>[...]` only the ids its conclusion named (after the list; else any id
the reasoning named, else any id of the table). It bounds what may be written, as the box answers
are bounded to numbers in range; which of the allowed objects is named stays the model's choice.
"""

from __future__ import annotations

import re

import numpy as np


def token_strings(tokenizer) -> list[str]:
    """Each token's text, computed once per tokenizer (kept on it: Qwen's has 151k tokens)."""
    strings = getattr(tokenizer, "_scene_r1_token_strings", None)
    if strings is None or len(strings) != len(tokenizer):
        strings = tokenizer.batch_decode([[i] for i in range(len(tokenizer))])
        tokenizer._scene_r1_token_strings = strings
    return strings


def labelled_ids(references: list[str]) -> dict[str, set[str]]:
    """Table references ("coffee mug 3", "Cube.003 4", "object 7") -> label -> the ids written after it.
    A label's last words name its objects too ("mug 3" for coffee mug 3, "bottle 4" for water bottle 4):
    the model often writes the query's noun rather than the whole label, and without this any number
    could follow it ("bottle 8", the storage box)."""
    labels: dict[str, set[str]] = {}
    for reference in references:
        label, _, number = reference.rpartition(" ")
        if label and number.isdigit():
            words = label.split(" ")
            for first in range(len(words)):  # tails that start with a word ("Chair 2" is not also "2")
                if first == 0 or any(c.isalpha() for c in words[first]):
                    labels.setdefault(" ".join(words[first:]), set()).add(number)
    return labels


def tokens_by_first(tokenizer) -> dict[str, list[tuple[int, str]]]:
    """Tokens (id, text) by their first character, for `force` (kept on the tokenizer, as above)."""
    by_first = getattr(tokenizer, "_scene_r1_by_first", None)
    if by_first is None or getattr(tokenizer, "_scene_r1_by_first_size", None) != len(tokenizer):
        by_first = {}
        for i, piece in enumerate(token_strings(tokenizer)):
            if piece:
                by_first.setdefault(piece[0], []).append((i, piece))
        tokenizer._scene_r1_by_first = by_first
        tokenizer._scene_r1_by_first_size = len(tokenizer)
    return by_first


def force(scores, targets: list[str], by_first) -> None:
    """Only tokens that write the start of a target (or all of it, then a separator) stay possible."""
    import torch

    good = [
        i
        for target in targets
        for i, piece in by_first.get(target[0], [])
        if target.startswith(piece) or (piece.startswith(target) and not piece[len(target)].isalnum())
    ]
    if good:
        keep = torch.full_like(scores, float("-inf"))
        keep[good] = scores[good]
        scores.copy_(keep)


class AnswerConstraint:
    """A LogitsProcessor: what is written inside <answer>...</answer> is one of `answers` (the
    answers the candidate table allows to a question: pipeline/answers.py); the reasoning is free."""

    def __init__(self, tokenizer, prompt_length: int, answers: list[str]):
        self.tokenizer, self.prompt_length, self.answers = tokenizer, prompt_length, answers
        self.by_first = tokens_by_first(tokenizer)

    def __call__(self, input_ids, scores):
        for row in range(input_ids.shape[0]):
            text = self.tokenizer.decode(input_ids[row, self.prompt_length :], skip_special_tokens=False)
            start = text.rfind("<answer>")
            if start < 0 or "</answer>" in text[start:]:
                continue
            inside = text[start + len("<answer>") :]
            targets = [t for answer in self.answers for t in _remaining(answer + "</answer>", inside)]
            if targets:
                force(scores[row], targets, self.by_first)
        return scores


LIST_OPENING = re.compile(r"\s*(?:<think>)?\s*[^.:<\n]{1,80}: ")  # "mugs: " before a list of rows
WHOLE_CLASS = re.compile(r"all the ([a-z]+(?: [a-z]+){0,2})")  # a query for every instance of a class
NOUN_OPENING = re.compile(r"\s*(?:<think>)?\s*([^.:<\n]{1,80}):")  # the same, its noun, before the space
# Words after a referring expression's head noun: "the mug | on the table", "the book | left of the box".
RELATION = re.compile(
    r"\b(?:closest to|nearest to|farthest from|furthest from|left|right|on|under|next|near|between|beside|"
    r"behind|above|below|beneath|underneath|in|inside|with|that|which|of|to|from|over|atop|facing|front)\b"
)
SENTENCE_END = re.compile(r"\.(?=\s|<|$)")  # not the dot inside a name like "Cube.003"
MAX_LISTED = 8  # a label with more rows than this is not listed whole


class ReferenceConstraint:
    """A LogitsProcessor (called with the ids so far and the next token's scores) for one prompt."""

    def __init__(self, tokenizer, prompt_length: int, references: list[str], query: str = "", every=False, **evidence):
        """`evidence`: `prefer(rows)`, the rows the table supports best for the query; `template`,
        whether the model was trained to reason as below (its opening is then forced too); and
        `same_class(reference, noun)`, whether a row is of a noun's class (synonyms: "cupboard 3" and
        "cabinets"; a generic "Cube.003 4" may be a guessed chair)."""
        self.tokenizer, self.prompt_length = tokenizer, prompt_length
        self.references, self.query, self.every = references, query, every
        self.prefer = evidence.get("prefer") or (lambda rows: rows)
        self.same_class = evidence.get("same_class") or _same_label
        self.template = evidence.get("template", False)  # the model was trained on the template below
        self._rows: dict[tuple[str, ...], list[str]] = {}  # nouns -> their rows
        self._preferences: dict[tuple[str, ...], list[str]] = {}  # rows -> prefer(rows)
        self.labels = labelled_ids(references)
        self.order = {
            label: [n for r in references for n in [r.rpartition(" ")[2]] if n in ids]
            for label, ids in self.labels.items()
        }  # each label's ids in the table's order
        self.ids = set().union(*self.labels.values()) if self.labels else set()
        names = "|".join(re.escape(n) for n in sorted(self.labels, key=len, reverse=True))
        self.pattern = re.compile(rf"(?<!\w)({names})( ?)(\d*)$") if names else None
        self.reach = max(map(len, self.labels), default=0) + 16  # the text's tail a reference can span
        self.reference = re.compile(rf"(?<!\w)({names}) (\d+)(?!\d)") if names else None
        strings = token_strings(tokenizer)
        self.by_first = tokens_by_first(tokenizer)
        self.strings = strings
        self.digits = np.array([i for i, s in enumerate(strings) if s[:1].isdigit()], dtype=np.int64)
        self.spaced = np.array([i for i, s in enumerate(strings) if s[:1] == " " and s[1:2].isdigit()], dtype=np.int64)

    def __call__(self, input_ids, scores):
        for row in range(input_ids.shape[0]):
            text = self.tokenizer.decode(input_ids[row, self.prompt_length :], skip_special_tokens=False)
            targets = self._steps(text)
            if targets:
                self._force(scores[row], targets)
                continue
            context = self._context(text)
            if context is not None:
                self._restrict(scores[row], *context)
        return scores

    def _steps(self, text: str) -> list[str]:
        """What must come next, as the chooser was trained to reason ("mugs: mug 3, mug 5. the red mug
        is mug 3."): the rows of the class the reasoning opened with (or the query's own noun), every
        one of them; then the query as it was asked (a small model rewrote "the smallest mug" into
        "the farthest mug"); then one of the listed rows (all of them for "all the <class>"). Empty:
        the model writes freely."""
        if "</think>" in text:
            return self._answer(text)
        opening = NOUN_OPENING.match(text)
        if not self.references or opening is None:
            return self._opening(text)
        noun = opening.group(1).strip()
        template = re.fullmatch(r"[A-Za-z]+(?: [A-Za-z]+){0,2}", noun) and (self.template or self.class_rows(noun))
        if not template:  # not the template ("Let me see: ...", "Analysis: ..."):
            target = self._listing_target(text)  # a larger model reasons its own way, references held only
            return [target] if target else []
        head = head_noun(self.query)
        rows = (self.class_rows(head) if head else []) or self.class_rows(noun)  # the query's noun first
        listing = text[opening.end() :]
        if rows:  # listed whole; a dot at the end may still be the one inside "Cube.004"
            full = " " + ", ".join(rows) + "."
            if len(listing) < len(full) or not listing.startswith(full):
                return _remaining(full, listing)
            after = listing[len(full) :]
        else:
            end = SENTENCE_END.search(text, opening.end())
            if end is None:
                target = self._listing_target(text)
                return [target] if target else []
            after = text[end.end() :]
        restated = f" {self.query} is"
        if not self.query or len(after) < len(restated):
            return _remaining(restated, after) if self.query else []
        if not rows or not after.startswith(restated):
            return []
        whole = WHOLE_CLASS.fullmatch(self.query)
        if self.every and whole:  # "all the mugs": every row of that class (none: the model's choice)
            everything = self.class_rows(whole.group(1))
            choices = [" " + ", ".join(everything) + "."] if everything else []
        elif self.every:  # "all the mugs on the desk": the rows the table supports, when it tells them apart
            chosen = self._preferred(rows)
            choices = [" " + ", ".join(chosen) + "."] if chosen != rows else []
        else:
            choices = [f" {row}." for row in self._preferred(rows)]
        return [t for choice in choices for t in _remaining(choice, after[len(restated) :])]

    def _preferred(self, rows: list[str]) -> list[str]:
        """`prefer(rows)`, computed once per prompt: it is asked at every token of the conclusion."""
        key = tuple(rows)
        if key not in self._preferences:
            self._preferences[key] = self.prefer(rows)
        return self._preferences[key]

    def _opening(self, text: str) -> list[str]:
        """For a model trained on this template (`template`): its reasoning opens with the class the
        query names, when some row is of it ("<think>mugs:"); the shipped chooser sometimes skipped
        the colon ("tables 6. the table is ...") or opened with another class ("tables:" for "the tv")."""
        head = head_noun(self.query)
        if not self.template or not head or not text.startswith("<think>") or not self.class_rows(head):
            return []
        return _remaining(f"{plural(head)}:", text[len("<think>") :])

    def _answer(self, text: str) -> list[str]:
        """The answer lists exactly the ids the reasoning concluded on, in its order ("... is mug 3,
        mug 5." -> [3, 5]); the model once concluded on five mugs and answered with three."""
        start = text.rfind("<answer>")
        if start < 0 or "</answer>" in text[start:]:
            return []
        concluded = self._concluded(text[:start], ordered=True)
        if not concluded:
            return []
        return _remaining("[" + ", ".join(concluded) + "]", text[start + len("<answer>") :].lstrip())

    def class_rows(self, *nouns: str) -> list[str]:
        """The table's references of the nouns' classes (the one the reasoning opened with and the
        query's head noun: "mugs" -> "mug 7", "coffee mug 10"; "carton" -> "carton 9"), in the
        table's order; empty when no row is of them, or there are too many to list."""
        if nouns not in self._rows:
            words = [w.lower() for w in nouns if w and all(p.isalpha() for p in w.split())]
            rows = [r for r in self.references if any(self.same_class(r, w) for w in words)]
            self._rows[nouns] = rows if len(rows) <= MAX_LISTED else []
        return self._rows[nouns]

    def _listing_target(self, text: str) -> str | None:
        """The text that must come next while the reasoning lists a class's rows ("mugs: coffee mug
        3, coffee mug 5, ..."): once it has named a label, the list goes on until it has every row
        of that label (a small model listed some and then chose among those only)."""
        if self.reference is None or "</think>" in text:
            return None
        opening = LIST_OPENING.match(text)
        if opening is None or SENTENCE_END.search(text[opening.end() :]):
            return None
        listing = text[opening.end() :]
        found = list(self.reference.finditer(listing))
        if not found:
            return None
        label, last = found[0].group(1), found[-1]
        listed = {m.group(2) for m in found}
        if len(self.order[label]) > MAX_LISTED:  # e.g. "object N" of many 3D proposals: not worth the tokens
            return None
        remaining = [n for n in self.order[label] if n not in listed]
        tail = listing[last.end() :]
        if not remaining or (not tail and any(v != last.group(2) and v.startswith(last.group(2)) for v in self.ids)):
            return None  # all listed, or the last id may still go on ("1" of "12")
        full = f", {label} {remaining[0]}"
        return full[len(tail) :] if full.startswith(tail) and len(tail) < len(full) else None

    def _force(self, scores, targets: list[str]) -> None:
        force(scores, targets, self.by_first)

    def _concluded(self, reasoning: str, ordered: bool = False):
        """The ids the reasoning settled on: those named after its listing sentence ("mugs: mug 3,
        mug 5. the red mug is mug 3." -> 3), or every id it named when it has no such conclusion.
        A set; or, `ordered`, a list in the order written."""
        if self.reference is None:
            return [] if ordered else set()
        opening = LIST_OPENING.match(reasoning)
        end = SENTENCE_END.search(reasoning, opening.end()) if opening else None
        parts = [reasoning[end.end() :], reasoning] if end else [reasoning]
        restated = f" {self.query} is" if self.query else None
        if restated and restated in reasoning:  # not the ids the query itself names ("left of box 8")
            parts.insert(0, reasoning[reasoning.rindex(restated) + len(restated) :])
        for part in parts:
            named = [n for label, n in self.reference.findall(part) if n in self.labels[label]]
            if named:
                return list(dict.fromkeys(named)) if ordered else set(named)
        return [] if ordered else set()

    def _context(self, text: str) -> tuple[set[str], str, bool] | None:
        """(the ids that may be written, the digits written so far, whether a space comes first)."""
        start = text.rfind("<answer>")
        if start >= 0 and "</answer>" not in text[start:]:
            inside = text[start + len("<answer>") :].lstrip()
            if not inside.startswith("[") or "]" in inside:
                return None
            named = self._concluded(text[:start])
            partial = re.search(r"(\d*)$", inside).group(1)
            return ((named or self.ids), partial, False) if (named or self.ids) else None
        match = self.pattern.search(text[-self.reach :]) if self.pattern is not None else None
        if match is None or (not match.group(2) and match.group(3)):
            return None
        return self.labels[match.group(1)], match.group(3), not match.group(2)

    def _restrict(self, scores, valid: set[str], partial: str, space_first: bool) -> None:
        """Sets the scores of tokens that would write a number outside `valid` to -inf."""
        import torch

        pieces = [] if space_first else [(i, self.strings[i]) for i in self.digits]
        if space_first or not partial:  # "mug| 3", or "[| 3" / "mug | 3" with a second space
            pieces += [(i, self.strings[i][1:]) for i in self.spaced]
        bad = [i for i, piece in pieces if not self._fits(piece, partial, valid)]
        if partial and partial not in valid:  # an unfinished id: only its digits may follow
            good = np.setdiff1d(self.digits, np.asarray(bad, dtype=np.int64))
            if len(good) == 0:  # no token finishes it (a number the table lacks): leave the model be
                return
            keep = torch.full_like(scores, float("-inf"))
            keep[good] = scores[good]
            scores.copy_(keep)
        elif bad:
            scores[bad] = float("-inf")

    @staticmethod
    def _fits(piece: str, partial: str, valid: set[str]) -> bool:
        digits = re.match(r"\d*", piece).group(0)
        number = partial + digits
        if len(digits) == len(piece):  # the number may go on after this token
            return any(v.startswith(number) for v in valid)
        return number in valid


def _remaining(full: str, written: str) -> list[str]:
    """What is left of `full` after `written`, when `written` began it and did not finish it."""
    return [full[len(written) :]] if len(written) < len(full) and full.startswith(written) else []


def head_noun(query: str) -> str:
    """The noun a referring expression is about: its last word before a relation ("the smallest
    coffee mug" -> "mug", "the book left of the box" -> "book", "all the mugs" -> "mugs")."""
    words = re.findall(r"[A-Za-z]+", RELATION.split(query.lower(), maxsplit=1)[0])
    return last_noun(words)


# Words that end a phrase without being its noun: "the cup to the | left of", "the red one".
FUNCTION_WORDS = frozenset({"the", "a", "an", "to", "of", "at", "is", "that", "which", "one", "ones", "this"})


def last_noun(words: list[str]) -> str:
    """The last word that is not a function word ("the cup to the" -> "cup")."""
    content = [w for w in words if w not in FUNCTION_WORDS]
    return content[-1] if content else ""


def plural(phrase: str) -> str:
    """The plural of a noun phrase, kept as it is when it is already plural ("mug" -> "mugs", "shelf"
    -> "shelves", "chairs" -> "chairs")."""
    import inflect

    engine = inflect.engine()
    singular = engine.singular_noun(phrase)
    return phrase if singular and singular != phrase else engine.plural_noun(phrase)


def _same_label(reference: str, noun: str) -> bool:
    """Whether the reference's label, or its last words, is the noun, singular or plural ("coffee mug
    3", "mugs")."""
    import inflect

    label, noun = reference.rpartition(" ")[0].lower(), noun.lower()
    nouns = {noun, inflect.engine().singular_noun(noun) or noun}
    return any(label == n or label.endswith(" " + n) for n in nouns)
