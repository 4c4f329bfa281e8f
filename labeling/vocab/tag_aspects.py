"""The aspect of a free-form tag (a dataset's aspect list, a song list's tags).

A tag the built-in vocabulary holds takes its aspect from there. Others are read by
keywords and by the built-in tags they contain ("mellow piano melody" names an instrument,
"soft female vocal" vocals); what none of that places is `other`, never dropped.
"""

from __future__ import annotations

import ast
import functools
import re

from labeling.vocab.builtin_tags import load_builtin_tags
from labeling.vocab.table import normalize_caption

OTHER = "other"

# Ordered: the first rule that matches decides. Vocals before instruments, because
# "female vocal over piano" is first of all about the voice.
_KEYWORDS: tuple[tuple[str, str], ...] = (
    (
        "vocals",
        r"\b(vocals?|voices?|vocalists?|singers?|singing|sung|rap|rapping|rappers?|choirs?|choral|a "
        r"cappella|falsetto|whisper\w*|humming|chant\w*|scream\w*|growl\w*|yodel\w*)\b",
    ),
    ("tempo", r"\b(tempo|bpm)\b"),
    (
        "production",
        r"\b(quality|recordings?|recorded|mix|mixed|mono|stereo|reverb\w*|echo\w*|delay|noise|noisy|hiss\w*|crackl\w*|distort\w*|compress\w*|lo-?fi|hi-?fi|fidelity|master\w*|effects?|filter\w*|panned|live|audio)\b",
    ),
)
_LATE_KEYWORDS: tuple[tuple[str, str], ...] = (
    ("era", r"\b(\d0s|\d{4}s|vintage|retro|modern|old|century|decade)\b"),
    ("rhythm", r"\b(rhythm\w*|beats?|groov\w*|syncopat\w*|swing|shuffle|time signature|percussive|danceable)\b"),
    ("harmony", r"\b(key|major|minor|chords?|scales?|modal|dissonan\w*|harmon(y|ic)|atonal)\b"),
    ("tempo", r"\b(fast|slow|quick|uptempo|downtempo|mid-?tempo|speedy)\b"),
)


def aspect_of(tag: str) -> str:
    normalized = normalize_caption(tag)
    known = _builtin_aspects().get(normalized)
    if known:
        return known
    for aspect, pattern in _KEYWORDS:
        if re.search(pattern, normalized):
            return aspect
    for aspect in ("instrument", "genre"):
        if _containment(aspect).search(normalized):
            return aspect
    for aspect, pattern in _LATE_KEYWORDS:
        if re.search(pattern, normalized):
            return aspect
    if _containment("mood").search(normalized):
        return "mood"
    return OTHER


@functools.cache
def _builtin_aspects() -> dict[str, str]:
    return {normalize_caption(t.tag): t.aspect for t in load_builtin_tags()}


@functools.cache
def _containment(aspect: str) -> re.Pattern[str]:
    """Any built-in tag of `aspect` as whole words (plural allowed), longest first."""
    tags = sorted({normalize_caption(t.tag) for t in load_builtin_tags() if t.aspect == aspect}, key=len, reverse=True)
    return re.compile(r"\b(?:" + "|".join(re.escape(t) for t in tags) + r")(?:e?s)?\b")


def parse_tags(value: object) -> list[str]:
    """A tag cell as a list: a list already (Parquet, JSON), a Python or JSON list literal
    ("['piano', 'calm']", as MusicCaps' aspect_list is written), or text split on , ; |."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:
        text = str(value).strip()
        items = None
        if text.startswith("[") and text.endswith("]"):
            try:
                literal = ast.literal_eval(text)
            except (ValueError, SyntaxError, MemoryError, RecursionError):
                literal = None
            if isinstance(literal, (list, tuple)):
                items = [str(v) for v in literal]
        if items is None:
            items = re.split(r"\s*[,;|]\s*", text.strip("[]"))
    return [t for t in (item.strip().strip("'\"").strip() for item in items) if t]
