"""The answers the candidate table allows to a question about the room.

A question of a form the table can answer (how many X, what colour is the X, is there an X, what
is the <colour> object, what is on the X) has a small set of answers consistent with the table:
the rows of the class asked about (synonyms and the classes guessed for generic names included,
pipeline/shapes.py), narrowed by what the question says of them (pipeline/evidence.py). The
chooser's answer is held to that set (models/references.AnswerConstraint), as its object
references are held to the table's ids: when the set has one answer it is the answer, otherwise
the model chooses among them. Questions of any other form are answered freely.
"""

from __future__ import annotations

import re

from ...shared.candidates import CandidateTable, is_structure
from .evidence import UNKNOWN, Phrase, Reference, best_supported, class_of, same_class

COUNT = re.compile(r"how many (?P<phrase>.+?)(?: are there| are in the room| do you see)?$")
COLOUR = re.compile(r"what colou?r is the (?P<phrase>.+)$")
CLASS = re.compile(r"what (?:is|kind of object is) the (?P<phrase>.+?) (?:object|thing)$")
EXISTS = re.compile(r"(?:is|are) there (?:an?|any) (?P<phrase>.+?)(?: in the room| here)?$")
ON_TOP = re.compile(r"what is (?P<relation>on|under) the (?P<phrase>.+)$")
ANY_OBJECT = frozenset({"object", "objects", "thing", "things", "item", "items"})


def class_word(label: str) -> str:
    """The class a label names, in the vocabulary's word ("coffee mug" -> "mug"), else the label."""
    return class_of(re.findall(r"[a-z]+", label.lower())) or label.lower()


def _rows(table: CandidateTable, phrase: Phrase, labels: dict[int, str]) -> list:
    """The rows a plain noun phrase means: its class (any object for "objects"), then its colour."""
    rows = [
        c
        for c in table.candidates
        if not is_structure(c) and (phrase.noun in ANY_OBJECT or same_class(labels[c.id], phrase.noun))
    ]
    return [c for c in rows if all(c.colour == colour for colour in phrase.colours)]


VERBS = frozenset({"are", "is", "do", "does", "there", "can", "have", "has"})


def _plain(text: str) -> Phrase | None:
    """A noun phrase of colours, superlatives and a noun of one or two words ("the red mugs",
    "potted plants"), or None: anything more ("mugs on the desk", "of the mugs are red") is a
    question the table's answers are not read for."""
    words = re.findall(r"[a-z]+", text)
    while words and words[0] in ("the", "a", "an", "any", "all"):
        words = words[1:]
    phrase = Phrase.parse(" ".join(words))
    attributes = len(phrase.colours) + len(phrase.superlatives)
    plain = phrase.noun and Reference.parse(text).relation == "" and not VERBS & set(words)
    return phrase if plain and len(words) - attributes in (1, 2) else None


def table_answers(table: CandidateTable, question: str, labels: dict[int, str]) -> list[str] | None:
    """The answers consistent with the table, best first; None for a question it cannot answer."""
    text = re.sub(r"\s+", " ", question.lower()).strip(" ?.!")
    if match := COUNT.fullmatch(text):
        phrase = _plain(match.group("phrase"))
        return [str(len(_rows(table, phrase, labels)))] if phrase else None
    if match := EXISTS.fullmatch(text):
        phrase = _plain(match.group("phrase"))
        return (["yes"] if _rows(table, phrase, labels) else ["no"]) if phrase else None
    if match := COLOUR.fullmatch(text):
        reference = Reference.parse(match.group("phrase"))
        if reference.relation == UNKNOWN or not reference.target.noun:
            return None
        rows = _rows(table, reference.target, labels)
        chosen = best_supported(table, match.group("phrase"), [c.reference for c in rows], labels)
        colours = [c.colour for c in rows if c.reference in chosen and c.colour]
        return list(dict.fromkeys(colours)) or None
    if match := CLASS.fullmatch(text):
        phrase = Phrase.parse(match.group("phrase") + " object")
        rows = _rows(table, phrase, labels) if phrase.colours else []
        return list(dict.fromkeys(class_word(labels[c.id]) for c in rows)) or None
    if (match := ON_TOP.fullmatch(text)) and (anchor := _plain(match.group("phrase"))):
        anchors = {c.id for c in _rows(table, anchor, labels)}
        facts = getattr(table, "facts", [])
        subjects = [s for s, word, others in facts if word == match.group("relation") and set(others) & anchors]
        return list(dict.fromkeys(class_word(labels[s]) for s in subjects)) or None
    return None
