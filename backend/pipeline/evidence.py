"""What the candidate table itself says about a referring expression, row by row.

The table states each object's colour, its superlatives within its class ("largest mug") and its
relations to the others ("on desk 3", "left of chair 4"). A referring expression states the same
kinds of facts: "the yellow mug on the cabinet" says yellow, and on a cabinet. `table_evidence`
counts, for every row, the expression's facts that the table states for it. The chooser's decoding
(models/references.py) then concludes on one of the rows of the right class with the most facts,
when some row has more than another; which of them stays the model's choice, as do the class and
every query the table says nothing about (a generic "Cube.003" has no class, a "mug" no colour).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ...shared.candidates import COLOUR_WORDS, SUPERLATIVES, CandidateTable, superlatives_of, view_coordinates
from ..models.references import RELATION, WHOLE_CLASS, last_noun

# Relation phrases as people write them -> the table's relation words; longer phrases first.
RELATION_WORDS = {
    "to the left of": "left of",
    "to the right of": "right of",
    "on top of": "on",
    "left of": "left of",
    "right of": "right of",
    "next to": "next to",
    "beside": "next to",
    "near": "next to",
    "underneath": "under",
    "beneath": "under",
    "below": "under",
    "under": "under",
    "on": "on",
    "between": "between",
}
SUPERLATIVE_WORDS = dict(
    {w: w for w in SUPERLATIVES},
    biggest="largest",
    tiniest="smallest",
    nearest="closest",
    furthest="farthest",
)
COLOURS = dict({w: w for w in COLOUR_WORDS}, grey="gray")
RELATION_PATTERN = re.compile(r"\b(" + "|".join(sorted(RELATION_WORDS, key=len, reverse=True)) + r")\b")
UNKNOWN = "?"  # a relation the table does not state: no evidence from it


@dataclass
class Phrase:
    """A noun phrase's head noun and the attributes written before it."""

    noun: str = ""
    colours: list[str] = field(default_factory=list)
    superlatives: list[str] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Phrase:
        words = re.findall(r"[a-z]+", text.lower())
        return cls(
            noun=last_noun([w for w in words if w not in COLOURS and w not in SUPERLATIVE_WORDS]),
            colours=[COLOURS[w] for w in words if w in COLOURS],
            superlatives=[SUPERLATIVE_WORDS[w] for w in words if w in SUPERLATIVE_WORDS],
        )


@dataclass
class Reference:
    """A referring expression: the object it is about, and at most one relation to others."""

    target: Phrase
    relation: str = ""  # a table relation word ("on", "left of", "between"...), or ""
    anchors: list[Phrase] = field(default_factory=list)

    @classmethod
    def parse(cls, query: str) -> Reference:
        text = query.lower()
        # Where the phrase ends (references.RELATION); before any relation the table states, it ends
        # at one the table does not: "the mug | in front of the chair", "the cup | closest to ...".
        match, other = RELATION_PATTERN.search(text), RELATION.search(text)
        if other is not None and (match is None or other.start() < match.start()):
            return cls(Phrase.parse(text[: other.start()]), UNKNOWN)
        if match is None:
            return cls(Phrase.parse(text))
        relation = RELATION_WORDS[match.group(1)]
        rest = text[match.end() :]
        anchors = re.split(r"\band\b", rest, maxsplit=1) if relation == "between" else [rest]
        return cls(Phrase.parse(text[: match.start()]), relation, [Phrase.parse(a) for a in anchors])


def _class_words() -> dict[str, str]:
    """Household class words and their synonyms -> the class ("cupboard" -> "cabinet", "coffee mug"
    -> "mug"): the vocabulary the synthetic rooms are written in, which is everyday English."""
    from ..data.synth.household import KINDS

    return {synonym: kind.word for kind in KINDS.values() for synonym in (kind.word, *kind.synonyms)}


CLASS_WORDS = _class_words()


def class_of(words: list[str]) -> str | None:
    """The vocabulary class a name's words say, read from its end: its last words first ("table
    lamp" is a lamp), then any of its words ("mug ceramic", "SM Cup 02", "Desk Side L")."""
    phrases = [" ".join(words[i:]) for i in range(len(words))]
    phrases += [" ".join(words[i:j]) for j in range(len(words) - 1, 0, -1) for i in range(j)]
    return next((CLASS_WORDS[p] for p in phrases if p in CLASS_WORDS), None)


def same_class(label: str, noun: str) -> bool:
    """Whether a table label names the noun's class: "coffee mug" and "mugs", "Cupboard" and
    "cabinet", "carton" and "boxes", "chair wood" and "chair"; or, for a word outside the
    vocabulary, whether the label ends with it ("Kettle" and "kettles")."""
    import inflect

    words = re.findall(r"[a-z]+", label.lower())
    noun = noun.lower()
    nouns = {noun, inflect.engine().singular_noun(noun) or noun}
    classes = {CLASS_WORDS[n] for n in nouns if n in CLASS_WORDS}
    if classes and class_of(words) in classes:
        return True
    return any(" ".join(words[i:]) in nouns for i in range(len(words)))


def _anchor_ids(table: CandidateTable, anchor: Phrase, labels: dict[int, str]) -> set[int] | None:
    """The rows an anchor phrase may mean: those its noun names (narrowed by its colour), or those of
    its colour when no label has its noun; None when the table cannot tell."""
    named = [c for c in table.candidates if anchor.noun and same_class(labels[c.id], anchor.noun)]
    coloured = [c for c in (named or table.candidates) if c.colour in anchor.colours]
    if named:
        return {c.id for c in (coloured or named)}
    return {c.id for c in coloured} if anchor.colours else None


def _superlatives(table: CandidateTable, phrase: Phrase, labels: dict[int, str]) -> dict[str, int]:
    """Superlative word -> the id it picks among the phrase's class ("the closest mug": of every row
    named a mug, coffee mugs included; the table's own superlatives group rows by exact label)."""
    members = [c for c in table.candidates if phrase.noun and same_class(labels[c.id], phrase.noun)]
    return {word: i for i, word in superlatives_of(members, view_coordinates(members, table.view))}


def table_evidence(table: CandidateTable, query: str, labels: dict[int, str] | None = None) -> dict[int, int]:
    """Candidate id -> how many of the query's facts about its object the table states for that row.
    `labels`: each candidate's class word (shapes.class_labels); its table label by default."""
    labels = labels or {c.id: c.label for c in table.candidates}
    reference = Reference.parse(query)
    facts = getattr(table, "facts", [])
    evidence = {c.id: 0 for c in table.candidates}
    for candidate in table.candidates:
        evidence[candidate.id] += sum(candidate.colour == colour for colour in reference.target.colours)
    for word, identifier in _superlatives(table, reference.target, labels).items():
        evidence[identifier] += word in reference.target.superlatives
    anchors = [_anchor_ids(table, a, labels) for a in reference.anchors]
    if reference.relation in ("", UNKNOWN) or any(a is None for a in anchors):
        return evidence
    for subject, word, others in facts:
        if word != reference.relation or len(others) != len(anchors):
            continue
        if (
            len(others) == 1
            and others[0] in anchors[0]
            or len(others) == 2
            and (
                (others[0] in anchors[0] and others[1] in anchors[1])
                or (others[1] in anchors[0] and others[0] in anchors[1])
            )
        ):
            evidence[subject] += 1
    return evidence


def best_supported(
    table: CandidateTable, query: str, rows: list[str], labels: dict[int, str] | None = None
) -> list[str]:
    """Of the given references ("mug 7", ...), those with the most evidence, when the table tells
    them apart (some have more than others); else all of them."""
    evidence = table_evidence(table, query, labels)
    by_reference = {c.reference: evidence[c.id] for c in table.candidates}
    scores = [by_reference.get(r, 0) for r in rows]
    if not scores or max(scores) == min(scores):
        return rows
    return [r for r, s in zip(rows, scores) if s == max(scores)]


def absent_class(table: CandidateTable, query: str, labels: dict[int, str]) -> str | None:
    """The class an "all the <class>" query asks for when the table can say the room has none: a
    household class (the vocabulary's, so that a size guess could have named it) that no row's
    class, known or guessed, is, in a table whose every row is of a vocabulary class. None
    otherwise (the chooser is asked)."""
    import inflect

    whole = WHOLE_CLASS.fullmatch(query)
    if whole is None:
        return None
    noun = whole.group(1)
    if CLASS_WORDS.get(inflect.engine().singular_noun(noun) or noun, CLASS_WORDS.get(noun)) is None:
        return None
    # Every row must be of a class the vocabulary knows: an "Armchair" or a "Flask" may be what is asked.
    if not all(class_of(re.findall(r"[a-z]+", labels[c.id].lower())) for c in table.candidates):
        return None
    return None if any(same_class(labels[c.id], noun) for c in table.candidates) else noun
