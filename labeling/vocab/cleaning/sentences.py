"""Answers and captions into clean single sentences.

An LLM answers in lists, markdown and chat ("Sure! Here are five sentences:"); a rater
writes paragraphs. Both become one plain sentence per item: list markers, numbering,
markdown, surrounding quotes and lead-in labels are stripped, and chat preambles, closings
and markdown headings are dropped and counted (`chat_preamble`).
"""

from __future__ import annotations

import dataclasses
import re

_CODE_FENCE = re.compile(r"^\s*```")
_HEADING = re.compile(r"^\s*#{1,6}\s")
# Lower-case letters only: "a) piano" is a list item, "J. S. Bach" is a name.
_LIST_MARKER = re.compile(r"^\s*(?:[-*+•·–—>]+|\(?\d{1,3}[.)\]:]|\(?[a-z][.)](?=\s)|\[\d+\])\s*")
_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_EMPHASIS = re.compile(r"(\*{1,3}|_{2,3}|`+|~~)")
# "Instrumentation: the track...": a label of up to three words before the sentence.
_LABEL = re.compile(r"^[A-Za-z][A-Za-z/&'-]*(?: [A-Za-z/&'-]+){0,2}\s*:\s*(?=\S)")
_QUOTES = "\"'“”‘’«»„‟`"
# Chat openers are short ("Sure!", "Of course, happy to help."); a caption may well begin
# "Here is a fast techno track", so "here is/are" counts only when it points at the answer.
_OPENER = re.compile(
    r"^(?:sure|certainly|of course|absolutely|okay|ok|alright|great question|happy to help|"
    r"(?:i'd|i would|i'm|i am) (?:be )?(?:happy|glad))\b",
    re.IGNORECASE,
)
_POINTER = re.compile(r"\b(?:here|below|following)\b.*\b(?:sentences?|descriptions?|captions?)\b", re.IGNORECASE)
_CLOSING = re.compile(
    r"^(?:i hope|hope (?:this|these|that)|let me know|feel free|if you (?:need|want|would like))\b", re.IGNORECASE
)
_OPENER_WORDS = 8
# "Here are some notes: A calm piece...": a lead-in before a colon, whatever it announces.
_LEAD_IN = re.compile(
    r"^(?:sure|certainly|of course|okay|ok|alright|absolutely|here|below|the following|these are)\b", re.IGNORECASE
)
_ABBREVIATIONS = {
    "e.g",
    "i.e",
    "etc",
    "vs",
    "mr",
    "mrs",
    "ms",
    "dr",
    "st",
    "jr",
    "sr",
    "no",
    "approx",
    "ca",
    "feat",
    "ft",
    "vol",
    "op",
    "cf",
    "al",
    "incl",
}
_BOUNDARY = re.compile(r"([.!?]+)([\"'”’)\]]*)\s+(?=[\"'“‘(\[]?[A-Z0-9ÀÁÂÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÖØÙÚÛÜÝ])")


@dataclasses.dataclass(frozen=True)
class Split:
    sentences: list[str]
    preambles: int  # chat preambles, closings and headings dropped


def split_sentences(text: str) -> Split:
    sentences: list[str] = []
    preambles = 0
    for line in text.splitlines():
        if _CODE_FENCE.match(line):
            continue
        if _HEADING.match(line):
            preambles += 1
            continue
        line = _strip_line(line)
        if not line:
            continue
        for sentence in _split_line(line):
            if _is_preamble(sentence):
                # "Here are five sentences: A calm piece..." keeps what follows the colon.
                _, colon, rest = sentence.partition(":")
                rest = _strip_sentence(rest)
                preambles += 1
                if colon and rest:
                    sentences.append(rest[0].upper() + rest[1:])
                continue
            sentence = _strip_sentence(_LABEL.sub("", sentence, count=1))
            if sentence:
                sentences.append(sentence[0].upper() + sentence[1:])
    return Split(sentences, preambles)


def _is_preamble(sentence: str) -> bool:
    head, colon, _ = sentence.partition(":")
    return (
        sentence.endswith(":")
        or bool(_CLOSING.match(sentence))
        or bool(_POINTER.search(sentence))
        or (bool(colon) and bool(_LEAD_IN.match(head)))
        or (bool(_OPENER.match(sentence)) and len(sentence.split()) <= _OPENER_WORDS)
    )


def _strip_line(line: str) -> str:
    previous = None
    while previous != line:  # "1. - **x**" has two markers
        previous = line
        line = _LIST_MARKER.sub("", line, count=1)
    line = _LINK.sub(r"\1", line)
    return _EMPHASIS.sub("", line).strip()


def _split_line(line: str) -> list[str]:
    pieces, start = [], 0
    for match in _BOUNDARY.finditer(line):
        before = line[start : match.start()].rsplit(None, 1)
        last_word = before[-1].lower().rstrip(".") if before else ""
        if match.group(1) == "." and (last_word in _ABBREVIATIONS or len(last_word) == 1):
            continue  # "e.g. Piano", "J. S. Bach": not an end
        pieces.append(line[start : match.end(2)])
        start = match.end()
    pieces.append(line[start:])
    return [p.strip() for p in pieces if p.strip()]


def _strip_sentence(sentence: str) -> str:
    sentence = sentence.strip()
    # Quotes around the whole sentence, and unbalanced ones left at either end.
    while len(sentence) >= 1 and (sentence[0] in _QUOTES or sentence[-1] in _QUOTES):
        if sentence[0] in _QUOTES:
            sentence = sentence[1:]
        if sentence and sentence[-1] in _QUOTES:
            sentence = sentence[:-1]
        sentence = sentence.strip()
    return re.sub(r"\s+", " ", sentence).strip()
