"""The vocabulary table: the contract between `soundry vocab` and `soundry label`.

A vocabulary folder holds one Parquet table per named vocabulary (`<vocab>.parquet`) and
`manifest.json`, written last, which names each table with its version. A version is a
hash of the table's content, so the same inputs give the same version on every run.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from typing import Any, Literal

import pyarrow as pa

from curation.core.errors import UserError
from curation.core.storage import exists, join, read_json, read_table

Kind = Literal["long_form", "short_form"]

VOCAB_SCHEMA = pa.schema(
    [
        pa.field("vocab", pa.string(), nullable=False),  # the vocabulary's name, e.g. llm_long
        pa.field("caption_id", pa.string(), nullable=False),  # caption_id(text)
        pa.field("text", pa.string(), nullable=False),
        pa.field("kind", pa.string(), nullable=False),  # long_form | short_form
        pa.field("aspect", pa.string()),  # genre, instrument, mood, ... (short_form only)
        pa.field("source", pa.string(), nullable=False),  # llm:<model>, rater:<dataset>, builtin, metadata, template
        pa.field("provenance", pa.string()),  # JSON: where the caption came from (prompt hash, file, row)
    ]
)

MANIFEST = "manifest.json"


def normalize_caption(text: str) -> str:
    """The form captions are compared and hashed in: NFKC, lower case, single spaces, no end punctuation."""
    text = unicodedata.normalize("NFKC", text).lower()
    return re.sub(r"\s+", " ", text).strip().rstrip(".!;,").strip()


def caption_id(text: str) -> str:
    """Stable id of a caption: the same text, however spaced or cased, has one id everywhere."""
    return hashlib.sha256(normalize_caption(text).encode()).hexdigest()[:16]


def vocabulary_version(table: pa.Table) -> str:
    """Hash of the content (not of row order, not of provenance): same captions, same version."""
    rows = sorted(
        zip(table["caption_id"].to_pylist(), table["kind"].to_pylist(), table["aspect"].to_pylist(), strict=True),
        key=lambda r: (r[0], r[2] or ""),
    )
    digest = hashlib.sha256()
    for row in rows:
        digest.update("\t".join(v or "" for v in row).encode() + b"\n")
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class Vocabulary:
    name: str
    version: str
    table: pa.Table


class VocabularyError(UserError):
    """A vocabulary folder that is missing, unpublished or damaged; the message names it."""


def read_vocabularies(root: str, names: list[str] | None = None) -> dict[str, Vocabulary]:
    """The vocabularies a manifest lists (all, or the named ones), checked against their versions."""
    manifest_url = join(root, MANIFEST)
    if not exists(manifest_url):
        raise VocabularyError(f"{root}: no {MANIFEST}; build the vocabularies with `soundry vocab` first")
    listed: dict[str, Any] = read_json(manifest_url)["vocabularies"]
    wanted = names if names is not None else sorted(listed)
    unknown = [n for n in wanted if n not in listed]
    if unknown:
        raise VocabularyError(f"{root}: no vocabulary named {', '.join(unknown)} (it has: {', '.join(sorted(listed))})")
    vocabularies = {}
    for name in wanted:
        entry = listed[name]
        table = read_table(join(root, entry["file"])).cast(VOCAB_SCHEMA)
        if vocabulary_version(table) != entry["version"]:
            raise VocabularyError(
                f"{join(root, entry['file'])}: content does not match version {entry['version']} "
                "in the manifest; rebuild it with `soundry vocab`"
            )
        vocabularies[name] = Vocabulary(name, entry["version"], table)
    return vocabularies


def read_evaluation_sources(root: str) -> frozenset[str]:
    """The sources (rater:<name>) whose sentences come from an evaluation file: they may serve as
    labels but, by default, not as training prompts."""
    return frozenset(read_json(join(root, MANIFEST)).get("evaluation_sources", []))
