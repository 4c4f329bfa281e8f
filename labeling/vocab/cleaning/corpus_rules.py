"""The corpus-wide caption rules: exact duplicates, evaluation overlap, near duplicates.

A vocabulary's captions pass through one Deduplicator in a fixed order (the prompts' order,
the dataset rows' order), so which of two duplicates is kept never depends on the workers.
Memory: one id per kept caption, plus its LSH entry when near duplicates are searched; the
vocabulary itself, which the labeling stage holds whole, is the larger of the two.
"""

from __future__ import annotations

from collections.abc import Iterable

from labeling.vocab.cleaning.near_duplicates import NearDuplicateIndex, overlap_words
from labeling.vocab.config import CleaningConfig
from labeling.vocab.table import caption_id

DUPLICATE = "duplicate"
EVAL_OVERLAP = "eval_overlap"
NEAR_DUPLICATE = "near_duplicate"


class EvalCaptions:
    """Evaluation captions (whole and split into sentences) no training caption may match: the
    same text, or nearly the same words once hyphens, inflections and function words are set
    aside (overlap_words), which catches paraphrases the near-duplicate rule lets through."""

    def __init__(self, config: CleaningConfig) -> None:
        self.ids: set[str] = set()
        self.index = (
            NearDuplicateIndex(config.near_duplicate_threshold, config.minhash_permutations, overlap_words)
            if config.near_duplicate_threshold is not None
            else None
        )

    def add(self, texts: Iterable[str]) -> None:
        for text in texts:
            cid = caption_id(text)
            if cid in self.ids:
                continue
            self.ids.add(cid)
            if self.index is not None:
                self.index.add(cid, text)

    def __len__(self) -> int:
        return len(self.ids)

    def overlaps(self, text: str, cid: str) -> bool:
        return cid in self.ids or (self.index is not None and self.index.find(text) is not None)


class Deduplicator:
    def __init__(self, config: CleaningConfig, eval_captions: EvalCaptions | None = None) -> None:
        self.eval_captions = eval_captions
        self._seen: set[str] = set()
        self._near = (
            NearDuplicateIndex(config.near_duplicate_threshold, config.minhash_permutations)
            if config.near_duplicate_threshold is not None
            else None
        )

    def check(self, text: str, evaluation_source: bool = False) -> str | None:
        """The rule that drops `text`, or None: then it is kept and later texts are compared with it.
        A sentence of an evaluation file itself (`evaluation_source`) is not compared with the
        evaluation captions: it is one of them (and is kept out of prompts instead)."""
        cid = caption_id(text)
        if cid in self._seen:
            return DUPLICATE
        if not evaluation_source and self.eval_captions is not None and self.eval_captions.overlaps(text, cid):
            return EVAL_OVERLAP
        if self._near is not None and self._near.find_or_add(cid, text) is not None:
            return NEAR_DUPLICATE
        self._seen.add(cid)
        return None
