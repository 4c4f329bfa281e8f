"""The short-form vocabulary: tags from the built-in list, the corpus's and song lists'
metadata and the caption datasets' tag columns, each once, each with an aspect.

The first source to bring a tag wins (built-in, then metadata, then datasets), so a tag
keeps the aspect the hand-written list gives it; a tag no source places is `other`.
"""

from __future__ import annotations

import collections
import re
from typing import Any

from labeling.vocab.cleaning.corpus_rules import EVAL_OVERLAP, EvalCaptions
from labeling.vocab.cleaning.rules import NOT_PROSE, TOO_LONG
from labeling.vocab.config import CleaningConfig
from labeling.vocab.table import caption_id
from labeling.vocab.tag_aspects import aspect_of
from labeling.vocab.writer import VocabularyWriter

EMPTY = "empty"
DUPLICATE = "duplicate"
_QUOTES = "\"'“”‘’«»`"


class TagCollector:
    """Tags into the short-form vocabulary; a tag that matches an evaluation caption or one of its
    sentences is dropped as eval_overlap, unless it comes from that evaluation file itself."""

    def __init__(
        self, writer: VocabularyWriter, cleaning: CleaningConfig, eval_captions: EvalCaptions | None = None
    ) -> None:
        self.writer = writer
        self.cleaning = cleaning
        self.eval_captions = eval_captions
        self.candidates = 0
        self.removed: collections.Counter[str] = collections.Counter()
        self._seen: set[str] = set()

    def add(
        self,
        tag: str,
        source: str,
        provenance: dict[str, Any],
        aspect: str | None = None,
        evaluation_source: bool = False,
    ) -> None:
        self.candidates += 1
        text = re.sub(r"\s+", " ", tag.strip().strip(_QUOTES).strip())
        reason = self.check(text)
        if reason is None:
            cid = caption_id(text)
            if cid in self._seen:
                reason = DUPLICATE
            elif not evaluation_source and self.eval_captions is not None and self.eval_captions.overlaps(text, cid):
                reason = EVAL_OVERLAP
            else:
                self._seen.add(cid)
                self.writer.add(text, source, provenance, aspect or aspect_of(text))
                return
        self.removed[reason] += 1

    def check(self, text: str) -> str | None:
        if not text:
            return EMPTY
        if not any(ch.isalnum() for ch in text) or re.search(r"https?://|www\.|[{}<>\\]", text):
            return NOT_PROSE
        if len(text.split()) > self.cleaning.max_tag_words or len(text) > self.cleaning.max_tag_chars:
            return TOO_LONG
        return None

    def summary(self) -> dict[str, Any]:
        return {"candidates": self.candidates, "removed": dict(sorted(self.removed.items())), "kept": self.writer.count}
