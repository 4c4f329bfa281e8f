"""The songs that prompt the LLM: the curated corpus's container tags and the users' song lists.

A song is what its tags say: title, artist, album, and the facts an LLM or the template
backend can use (genre, era from the date, a list's own tags by aspect). The corpus is read
part by part, only its tag columns; a song appears once however many clips it has.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator

import pyarrow.parquet as pq

from curation.clip import clip_parts
from curation.core.storage import filesystem
from labeling.vocab.config import SongList
from labeling.vocab.table import normalize_caption
from labeling.vocab.tag_aspects import aspect_of, parse_tags
from labeling.vocab.text_tables import TableReader

CORPUS_COLUMNS = ["title", "artist", "album", "genre", "date"]


@dataclasses.dataclass(frozen=True)
class Song:
    title: str | None
    artist: str | None
    album: str | None
    facts: dict[str, tuple[str, ...]]  # aspect -> tags (genre, era, ...)
    origin: str  # corpus:<folder> or songs:<file>
    where: str  # the part file or list line it was first seen at, for provenance

    @property
    def key(self) -> tuple[str, str]:
        return normalize_caption(self.title or ""), normalize_caption(self.artist or "")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(n for n in (self.title, self.artist, self.album) if n)


def split_genres(value: str | None) -> list[str]:
    """ID3 and Vorbis comments hold several genres as "Rock; Pop", "Rock/Pop" or "Rock, Pop"."""
    return [g for g in (p.strip() for p in re.split(r"[;,|/\x00]", value or "")) if g]


def era_of(date: str | None) -> str | None:
    """The decade of a date tag ("2019", "2019-05-01"): 2010s."""
    match = re.match(r"\s*(1[89]\d\d|20\d\d)", date or "")
    return f"{match.group(1)[:3]}0s" if match else None


def corpus_songs(folder: str) -> Iterator[Song]:
    """Distinct songs of a curated clip table, in part order, reading only the tag columns."""
    seen: set[tuple[str | None, ...]] = set()
    for part in clip_parts(folder):
        fs, path = filesystem(part)
        with fs.open(path, "rb") as f:
            parquet = pq.ParquetFile(f)
            columns = [c for c in CORPUS_COLUMNS if c in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(columns=columns, batch_size=8192):
                for row in batch.to_pylist():
                    key = tuple(row.get(c) for c in CORPUS_COLUMNS)
                    if key in seen or not any(key):
                        continue
                    seen.add(key)
                    facts: dict[str, tuple[str, ...]] = {}
                    if genres := split_genres(row.get("genre")):
                        facts["genre"] = tuple(genres)
                    if era := era_of(row.get("date")):
                        facts["era"] = (era,)
                    yield Song(row.get("title"), row.get("artist"), row.get("album"), facts, f"corpus:{folder}", part)


def list_songs(
    source: SongList, max_line_bytes: int, on_reader: Callable[[TableReader], None] = lambda r: None
) -> Iterator[Song]:
    """Songs of a user's list, in file order; bad rows are counted by the reader handed to on_reader."""
    reader = TableReader(
        source.path,
        [source.title_column, source.artist_column],
        [source.tags_column],
        source.format,
        source.encoding,
        max_line_bytes,
        option="songs[].title_column / artist_column / tags_column",
    )
    on_reader(reader)
    for line, row in reader:
        facts: dict[str, list[str]] = {}
        for tag in parse_tags(row.get(source.tags_column)) if source.tags_column else []:
            facts.setdefault(aspect_of(tag), []).append(tag)
        yield Song(
            row[source.title_column],
            row[source.artist_column],
            None,
            {aspect: tuple(tags) for aspect, tags in facts.items()},
            f"songs:{source.path}",
            f"line {line}",
        )
