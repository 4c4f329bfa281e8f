"""Near-duplicate search over short texts: MinHash bands for candidates, exact Jaccard to decide.

Texts are compared as sets of their content words (normalized, without function words,
plurals folded): "a warm piano plays over the brushed drums" and "warm piano plays over
brushed drum" are the same set, while "fast techno with a pounding kick" and "slow techno
with a pounding kick" differ by a word that changes the meaning (Jaccard 4/6). Character
n-grams cannot tell those two cases apart on sentences this short.

Candidates come from LSH banding of MinHash signatures (datasketch computes them); the
bands are our own small integer tables rather than datasketch's MinHashLSH, which keeps a
set per bucket: about 1 KB per kept text here against about 5 KB there. Bands and rows are
chosen so that a pair exactly at the threshold is proposed with probability at least 0.95
(more above it), and every candidate is verified on its real word sets, so the threshold
means what it says.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from labeling.vocab.table import normalize_caption

if TYPE_CHECKING:
    import numpy as np

_FUNCTION_WORDS = frozenset(
    "a an the and or but with without of in on at to for from by as into onto over under while which who whose "
    "that this these those there here it its is are was were be been being has have had their his her they "
    "than then so also just".split()
)
_RECALL_AT_THRESHOLD = 0.95


def content_words(text: str) -> set[str]:
    """The content words of a text, plurals folded (strings -> string)."""
    words = re.findall(r"[^\W_]+(?:['-][^\W_]+)*", normalize_caption(text))
    content = {
        w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
        for w in words
        if w not in _FUNCTION_WORDS
    }
    return content or set(words)


# Words that carry the meaning of a comparison between an evaluation caption and a training one,
# even though they are short: a caption "without drums" is not one "with drums".
_NEGATIONS = frozenset({"no", "not", "never", "without", "nor"})
_OVERLAP_STOP_WORDS = (_FUNCTION_WORDS - _NEGATIONS) | frozenset("s t some any very quite much many".split())
# Words nearly every caption has, in their folded form: "song" or "track" changes no meaning.
_GENERIC_WORDS = frozenset("song track piece music record audio sound".split())


def overlap_words(text: str) -> set[str]:
    """The words an evaluation overlap is judged on: content words with hyphens and apostrophes
    split ("low-quality" = "low quality"), plurals and simple inflections folded (vocals, vocal;
    plays, playing, played, play), function words and the words every caption shares left out,
    negations kept."""
    words = re.findall(r"[^\W_]+", normalize_caption(text))
    content = {_stem(w) for w in words if w not in _OVERLAP_STOP_WORDS} - _GENERIC_WORDS
    return content or set(words)


def _stem(word: str) -> str:
    """A light suffix fold, plural then -ing or -ed: enough for the inflections paraphrases
    change (recordings, recording, recorded: record), never below 3 letters."""
    if len(word) <= 3:
        return word
    if word.endswith("ies") and len(word) > 4:
        word = word[:-3] + "y"
    elif word.endswith("sses") or (word.endswith("es") and word[-3] in "xz") or word.endswith(("ches", "shes")):
        word = word[:-2]
    elif word.endswith("s") and not word.endswith(("ss", "us", "is")):
        word = word[:-1]
    for suffix in ("ing", "ed"):
        stem = word[: -len(suffix)]
        if word.endswith(suffix) and len(stem) >= 4:
            # a doubled last consonant undone (strumming, stopped), not a word's own (rolling, buzzed)
            return stem[:-1] if stem[-1] == stem[-2] and stem[-1] not in "lsz" else stem
    return word


def jaccard(a: set[str] | frozenset[str], b: set[str] | frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


def bands_and_rows(threshold: float, num_perm: int) -> tuple[int, int]:
    """The fewest bands (least memory, fewest false candidates) that still propose a pair
    of similarity `threshold` with probability at least 0.95."""
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1 - (1 - threshold**rows) ** bands >= _RECALL_AT_THRESHOLD:
            return bands, rows
    return num_perm, 1


class NearDuplicateIndex:
    """Texts added so far; `find` returns the key of one at least `threshold` similar, comparing
    the sets of words `words` makes of each text."""

    def __init__(self, threshold: float, num_perm: int, words: Callable[[str], set[str]] = content_words) -> None:
        from datasketch import MinHash  # imports scipy (a second): only when a run needs it

        self.words_of = words
        self.threshold = threshold
        self.bands, self.rows = bands_and_rows(threshold, num_perm)
        prototype = MinHash(num_perm=num_perm, seed=1)
        # Building a MinHash draws its permutations anew; sharing one set is several times faster.
        self._make = lambda: MinHash(
            num_perm=num_perm, seed=1, permutations=prototype.permutations, scheme=prototype.scheme
        )
        self._tables: list[dict[int, int | list[int]]] = [{} for _ in range(self.bands)]
        self._keys: list[str] = []
        # Word sets to verify candidates against; the words interned, so a word shared by a
        # thousand texts is stored once.
        self._words: list[frozenset[str]] = []

    def __len__(self) -> int:
        return len(self._keys)

    def band_hashes(self, words: set[str]) -> list[int]:
        minhash = self._make()
        minhash.update_batch([w.encode() for w in words])
        values: np.ndarray = minhash.hashvalues
        return [hash(values[b * self.rows : (b + 1) * self.rows].tobytes()) for b in range(self.bands)]

    def find(self, text: str, words: set[str] | None = None, bands: list[int] | None = None) -> str | None:
        words = words if words is not None else self.words_of(text)
        bands = bands if bands is not None else self.band_hashes(words)
        candidates: set[int] = set()
        for table, band in zip(self._tables, bands, strict=True):
            found = table.get(band)
            if found is not None:
                candidates.update(found if isinstance(found, list) else (found,))
        for index in sorted(candidates):
            if jaccard(words, self._words[index]) >= self.threshold:
                return self._keys[index]
        return None

    def add(self, key: str, text: str, words: set[str] | None = None, bands: list[int] | None = None) -> None:
        words = words if words is not None else self.words_of(text)
        bands = bands if bands is not None else self.band_hashes(words)
        index = len(self._keys)
        self._keys.append(key)
        self._words.append(frozenset(sys.intern(w) for w in words))
        for table, band in zip(self._tables, bands, strict=True):
            held = table.get(band)
            if held is None:
                table[band] = index  # most buckets hold one text: an int, not a list
            elif isinstance(held, list):
                held.append(index)
            else:
                table[band] = [held, index]

    def find_or_add(self, key: str, text: str) -> str | None:
        """The key of a near duplicate already held, or None after adding this text."""
        words = self.words_of(text)
        bands = self.band_hashes(words)
        found = self.find(text, words, bands)
        if found is None:
            self.add(key, text, words, bands)
        return found
