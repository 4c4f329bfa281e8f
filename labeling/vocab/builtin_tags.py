"""The built-in tag vocabulary: about a thousand music tags, each with its aspect.

Written by hand for this project (labeling/vocab/builtin_tags.csv, columns tag,aspect), in the
words people tag music with: genres, instruments, moods, tempo, eras, production, vocals,
rhythm, harmony, texture, structure and usage.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import hashlib
import io
from importlib import resources

ASPECTS = (
    "genre",
    "instrument",
    "mood",
    "tempo",
    "era",
    "production",
    "vocals",
    "rhythm",
    "harmony",
    "texture",
    "structure",
    "usage",
)
FILE = "builtin_tags.csv"


@dataclasses.dataclass(frozen=True)
class BuiltinTag:
    tag: str
    aspect: str
    line: int  # line of the CSV, for provenance


def builtin_tags_bytes() -> bytes:
    return resources.files("labeling.vocab").joinpath(FILE).read_bytes()


def builtin_tags_sha256() -> str:
    return hashlib.sha256(builtin_tags_bytes()).hexdigest()


@functools.cache
def load_builtin_tags() -> tuple[BuiltinTag, ...]:
    reader = csv.DictReader(io.StringIO(builtin_tags_bytes().decode("utf-8")))
    # Line numbers count the header as line 1.
    return tuple(BuiltinTag(row["tag"], row["aspect"], line) for line, row in enumerate(reader, start=2))


@functools.cache
def tags_by_aspect() -> dict[str, tuple[str, ...]]:
    grouped: dict[str, list[str]] = {aspect: [] for aspect in ASPECTS}
    for tag in load_builtin_tags():
        grouped[tag.aspect].append(tag.tag)
    return {aspect: tuple(tags) for aspect, tags in grouped.items()}
