"""A labeled set (the truth): known tags and captions per clip or source, matched to a clip table.

The table is Parquet or CSV with an id column and a tags column and/or a caption column
(MusicCaps: ytid, aspect_list, caption). Its ids name clips through a column of the clip
table (clip_id, source_id, source_uri, a tag column, or source_stem: the source file's name
without extension, as MusicCaps audio is usually saved as <ytid>.wav). Rows naming the same
id add up; every clip of a named source gets its source's tags and captions.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.csv as pa_csv

from curation.clip import clip_parts
from curation.core.errors import UserError
from curation.core.storage import filesystem, read_table
from labeling.labels.config import QualitySettings
from labeling.vocab.tag_aspects import parse_tags

ID_COLUMNS = ("clip_id", "source_id", "source_uri")
SOURCE_STEM = "source_stem"


class TruthTableError(UserError):
    """A labeled set that cannot be read or matched; the message names the file and the column."""


@dataclass(frozen=True)
class Truth:
    url: str
    id_column: str
    clip_column: str
    tags: dict[str, list[str]]  # id -> known tags, in table order, without repeats
    captions: dict[str, list[str]]  # id -> known captions


def read_truth(url: str, settings: QualitySettings) -> Truth:
    table = _read(url)
    names = table.column_names
    id_column = settings.id_column or next((c for c in ID_COLUMNS if c in names), None)
    if id_column is None or id_column not in names:
        wanted = settings.id_column or f"one of {', '.join(ID_COLUMNS)}"
        raise TruthTableError(
            f"truth table {url}: no id column {wanted} (it has {', '.join(names)}); name it with quality.id_column"
        )
    present = [c for c in (settings.tags_column, settings.caption_column) if c in names]
    if not present:
        raise TruthTableError(
            f"truth table {url}: no tags column {settings.tags_column} and no caption column "
            f"{settings.caption_column} (it has {', '.join(names)}); name them with quality.tags_column and "
            "quality.caption_column"
        )
    data = table.select([id_column, *present]).to_pydict()
    tags: dict[str, list[str]] = {}
    captions: dict[str, list[str]] = {}
    for row, item in enumerate(data[id_column]):
        if item is None or not str(item).strip():
            raise TruthTableError(f"truth table {url}, row {row + 1}: column {id_column} is empty")
        item = str(item).strip()
        for tag in parse_tags(data[settings.tags_column][row]) if settings.tags_column in data else []:
            if tag not in tags.setdefault(item, []):
                tags[item].append(tag)
        caption = data[settings.caption_column][row] if settings.caption_column in data else None
        if caption is not None and str(caption).strip():
            captions.setdefault(item, []).append(str(caption).strip())
    if not any(tags.values()) and not captions:
        raise TruthTableError(
            f"truth table {url}: every row's tags ({settings.tags_column}) and captions ({settings.caption_column}) "
            "are empty; nothing to score the labels against"
        )
    return Truth(url, id_column, settings.clip_column or id_column, tags, captions)


def match_clips(truth: Truth, clips_root: str) -> dict[str, str]:
    """clip_id -> the truth id it has, for every clip of the clip table the truth names."""
    known = truth.tags.keys() | truth.captions.keys()
    matched: dict[str, str] = {}
    column = "source_uri" if truth.clip_column == SOURCE_STEM else truth.clip_column
    for part in clip_parts(clips_root):
        try:
            data = read_table(part, columns=sorted({"clip_id", column})).to_pydict()
        except (KeyError, pa.ArrowInvalid):
            raise TruthTableError(
                f"quality.clip_column {truth.clip_column}: the clip table {clips_root} has no such column; use "
                f"clip_id, source_id, source_uri, a tag column such as title, or {SOURCE_STEM}"
            ) from None
        for clip_id, value in zip(data["clip_id"], data[column], strict=True):
            if value is None:
                continue
            key = posixpath.splitext(posixpath.basename(value))[0] if truth.clip_column == SOURCE_STEM else str(value)
            if key in known:
                matched[clip_id] = key
    if not matched:
        raise TruthTableError(
            f"truth table {truth.url}: none of its {truth.id_column} values is a {truth.clip_column} of the clip "
            f"table {clips_root}; check quality.id_column and quality.clip_column"
        )
    return matched


def _read(url: str) -> pa.Table:
    try:
        if url.endswith(".csv"):
            fs, path = filesystem(url)
            with fs.open(path, "rb") as f:
                names = pa_csv.read_csv(f).column_names
                f.seek(0)
                # Ids are names, not numbers: every column read as text (a ytid like 0123 keeps its zero).
                return pa_csv.read_csv(
                    f, convert_options=pa_csv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()))
                )
        return read_table(url)
    except (OSError, pa.ArrowInvalid) as error:
        raise TruthTableError(f"truth table {url}: cannot be read ({error})") from None
