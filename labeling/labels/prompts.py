"""A clip's prompt candidates and structured fields, from its labels and its metadata.

Noise2Music trained on one candidate drawn at random per example: each long-form label is
a candidate; the short tags and the metadata, joined into one comma-separated string, are
split into chunks that fit the text encoder's token limit, each chunk a candidate. The
structured fields (genre, instrument, mood, ... from the tags' aspects, plus the metadata)
are what the loader draws Stable Audio style prompts from (shards.loader.prompts.build_prompt).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from curation.core.extras import needs_extra
from labeling.labels.table import Candidate
from labeling.vocab.table import normalize_caption

TokenCount = Callable[[str], int]

_WORDS = re.compile(r"\w+|[^\w\s]")
_GENRE_SPLIT = re.compile(r"\s*[,;/|]\s*")


def count_words(text: str) -> int:
    """Words and punctuation marks: the count without a tokenizer (subword tokenizers count more)."""
    return len(_WORDS.findall(text))


def token_counter(tokenizer_folder: str | None) -> TokenCount:
    """Counts a text's tokens with the training text encoder's tokenizer, or words without one."""
    if tokenizer_folder is None:
        return count_words
    with needs_extra("label", "counting prompt tokens with labels.tokenizer", "transformers"):
        from transformers import AutoTokenizer

    from labeling.clap.tokenizer import check_tokenizer

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_folder, local_files_only=True)
    check_tokenizer(tokenizer, tokenizer_folder)
    return lambda text: len(tokenizer(text)["input_ids"])


def metadata_values(field: str, value: str | None) -> list[str]:
    """A container tag's prompt values: genre tags often list several ("Rock; Pop")."""
    if not value or not value.strip():
        return []
    return [v for v in _GENRE_SPLIT.split(value.strip()) if v] if field == "genre" else [value.strip()]


def _unique(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for value in values:
        key = normalize_caption(value)
        if key and key not in seen:
            seen.add(key)
            out.append(value)
    return out


def _truncate(text: str, max_tokens: int, count: TokenCount) -> str:
    words = text.split()
    while words and count(" ".join(words)) > max_tokens:
        words.pop()
    return " ".join(words)


def tag_chunks(items: Sequence[str], max_tokens: int, count: TokenCount) -> list[str]:
    """Items joined with ", " into as few strings as fit max_tokens each, in order; an item
    too long on its own is cut to its first words that fit."""
    chunks: list[str] = []
    current: list[str] = []
    for item in _unique(items):
        if count(item) > max_tokens:
            item = _truncate(item, max_tokens, count)
            if not item:
                continue
        if current and count(", ".join([*current, item])) > max_tokens:
            chunks.append(", ".join(current))
            current = []
        current.append(item)
    if current:
        chunks.append(", ".join(current))
    return chunks


def structured_fields(
    short_labels: Sequence[Candidate], metadata: Mapping[str, str | None], fields: Sequence[str]
) -> dict[str, list[str]]:
    """Values by aspect: the drawn tags under their aspects, then the metadata fields."""
    grouped: dict[str, list[str]] = {}
    for label in short_labels:
        grouped.setdefault(label.aspect or "tag", []).append(label.text)
    for field in fields:
        values = metadata_values(field, metadata.get(field))
        if values:
            grouped.setdefault(field, []).extend(values)
    return {aspect: _unique(values) for aspect, values in sorted(grouped.items())}


def prompt_candidates(
    long_labels: Sequence[Candidate],
    short_labels: Sequence[Candidate],
    metadata: Mapping[str, str | None],
    fields: Sequence[str],
    max_tokens: int,
    count: TokenCount,
    extra_tags: Sequence[str] = (),
) -> list[str]:
    """Each long-form label, then the tag chunks (tags in draw order, then metadata, then extra_tags)."""
    items = [label.text for label in short_labels]
    items += [v for field in fields for v in metadata_values(field, metadata.get(field))]
    items += extra_tags
    return _unique(label.text for label in long_labels) + tag_chunks(items, max_tokens, count)
