"""Near-duplicate search over short texts: MinHash LSH for candidates, exact Jaccard to decide.

Texts are compared as sets of their content words (normalized, without function words,
plurals folded): "a warm piano plays over the brushed drums" and "warm piano plays over
brushed drum" are the same set, while "fast techno with a pounding kick" and "slow techno
with a pounding kick" differ by a word that changes the meaning (Jaccard 4/6). Character
n-grams cannot tell those two cases apart on sentences this short. LSH proposes candidates
at a lower similarity than the threshold and each is verified on its real word sets, so the
threshold means what it says and few true near duplicates slip through.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from labeling.vocab_table import normalize_caption

if TYPE_CHECKING:
    from datasketch import MinHash

_FUNCTION_WORDS = frozenset(
    "a an the and or but with without of in on at to for from by as into onto over under while which who whose "
    "that this these those there here it its is are was were be been being has have had their his her they "
    "than then so also just".split()
)
_CANDIDATE_MARGIN = 0.15


def content_words(text: str) -> set[str]:
    """The content words of a text, plurals folded (strings -> string)."""
    words = re.findall(r"[^\W_]+(?:['-][^\W_]+)*", normalize_caption(text))
    content = {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
               for w in words if w not in _FUNCTION_WORDS}
    return content or set(words)


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


class NearDuplicateIndex:
    """Texts added so far; `find` returns the key of one at least `threshold` similar."""

    def __init__(self, threshold: float, num_perm: int) -> None:
        from datasketch import MinHashLSH  # imports scipy (a second): only when a run needs it

        self.threshold = threshold
        self.num_perm = num_perm
        self._lsh = MinHashLSH(threshold=max(0.3, threshold - _CANDIDATE_MARGIN), num_perm=num_perm)
        self._texts: dict[str, str] = {}  # key -> normalized text, to verify candidates

    def __len__(self) -> int:
        return len(self._texts)

    def signature(self, words: set[str]) -> MinHash:
        from datasketch import MinHash

        minhash = MinHash(num_perm=self.num_perm, seed=1)
        minhash.update_batch([w.encode() for w in words])
        return minhash

    def find(self, text: str, words: set[str] | None = None, minhash: MinHash | None = None) -> str | None:
        words = words if words is not None else content_words(text)
        minhash = minhash if minhash is not None else self.signature(words)
        for key in sorted(self._lsh.query(minhash)):
            if jaccard(words, content_words(self._texts[key])) >= self.threshold:
                return key
        return None

    def add(self, key: str, text: str, minhash: MinHash | None = None) -> None:
        if key in self._texts:
            return
        self._lsh.insert(key, minhash if minhash is not None else self.signature(content_words(text)))
        self._texts[key] = normalize_caption(text)

    def find_or_add(self, key: str, text: str) -> str | None:
        """The key of a near duplicate already held, or None after adding this text."""
        words = content_words(text)
        minhash = self.signature(words)
        found = self.find(text, words, minhash)
        if found is None:
            self.add(key, text, minhash)
        return found
