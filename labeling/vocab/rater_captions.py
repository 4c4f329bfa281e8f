"""Rater captions: a caption dataset's captions split into sentences, and its tag column.

Sentences pass the same per-sentence rules as LLM sentences (a rater's caption names no
prompted song, so names_song does not apply); tags go to the short-form vocabulary. Rows
come in file order, so which of two duplicates is kept is the same every run.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from typing import Any, Literal

from labeling.vocab.cleaning.rules import SentenceRules
from labeling.vocab.cleaning.sentences import split_sentences
from labeling.vocab.config import CaptionSource, CleaningConfig
from labeling.vocab.tag_aspects import parse_tags
from labeling.vocab.text_tables import TableReader

Item = tuple[Literal["sentence", "tag"], str, dict[str, Any]]


def caption_reader(source: CaptionSource, cleaning: CleaningConfig, option: str) -> TableReader:
    return TableReader(
        source.path,
        [source.caption_column],
        [source.tags_column],
        source.format,
        source.encoding,
        cleaning.max_line_bytes,
        option=option,
    )


def rater_items(
    reader: TableReader,
    source: CaptionSource,
    cleaning: CleaningConfig,
    removed: collections.Counter[str],
    seen: Callable[[str], None] = lambda key: None,
) -> Iterator[Item]:
    """("sentence", text, provenance) for each sentence kept by the per-sentence rules and
    ("tag", text, provenance) for each tag; `removed` counts what was dropped and why,
    `seen` is told "captions" and "sentences" as they are read."""
    rules = SentenceRules(cleaning)
    for line, row in reader:
        for tag in parse_tags(row.get(source.tags_column)) if source.tags_column else []:
            yield "tag", tag, {"file": source.path, "line": line}
        caption = row.get(source.caption_column)
        if not caption:
            removed["empty_caption"] += 1
            continue
        if len(caption) > cleaning.max_caption_chars:
            removed["caption_too_long"] += 1
            continue
        seen("captions")
        split = split_sentences(caption)
        if split.preambles:
            removed["chat_preamble"] += split.preambles
        for position, sentence in enumerate(split.sentences):
            seen("sentences")
            reason = rules.check(sentence)
            if reason:
                removed[reason] += 1
            else:
                yield "sentence", sentence, {"file": source.path, "line": line, "sentence": position}
