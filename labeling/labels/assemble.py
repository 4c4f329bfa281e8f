"""The stage's last map step: a unit's top-K lists become label rows.

Per clip and vocabulary: the candidates (top-K), the K' labels drawn with probability
proportional to 1 / global frequency, the prompt candidates and structured fields. Writes
`work/label_counts/part-<unit>.parquet` (how often each caption was chosen, plainly and
balanced, for the summary) and then `labels/part-<unit>.parquet`, which marks the unit done.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa

from curation.core.errors import UserError
from curation.core.storage import exists, join, read_table, write_table_atomic
from labeling.clap.embedding_cache import content_key
from labeling.labels.balance import balanced_draws, draw_keys
from labeling.labels.config import Balancing, Prompts
from labeling.labels.prompts import prompt_candidates, structured_fields, token_counter
from labeling.labels.score import work_part
from labeling.labels.table import LABELS_DIR, Candidate, LabelRow, labels_to_table
from labeling.labels.units import LabelUnit, read_unit_rows
from labeling.music.config import MusicFields
from labeling.music.join import read_facts
from labeling.music.prompt_fields import stated_facts
from labeling.vocab.table import read_evaluation_sources, read_vocabularies

SELECTION_SCHEMA = pa.schema(
    [
        pa.field("vocab", pa.string(), nullable=False),
        pa.field("caption_id", pa.string(), nullable=False),
        pa.field("selection", pa.string(), nullable=False),  # plain (the K' most similar) | balanced (drawn)
        pa.field("count", pa.int64(), nullable=False),
    ]
)
METADATA_COLUMNS = ["title", "artist", "album", "genre"]


class InputsChanged(UserError):
    """A vocabulary or the caption frequencies are not what the label run planned with."""


@dataclass(frozen=True)
class AssembleSettings:
    output: str
    vocab_root: str
    vocabularies: tuple[tuple[str, str], ...]  # (name, version) of each vocabulary the run labels with
    frequency_url: str  # the global top-K frequency: vocab, caption_id, count
    frequency_digest: str  # its content (frequency_digest), which the run planned with
    label_run: str
    balance: Balancing
    prompts: Prompts
    music: MusicFields | None = None


@dataclass(frozen=True)
class Catalog:
    """One vocabulary in caption_id order (the order of its embedding matrix)."""

    caption_ids: list[str]
    texts: list[str]
    aspects: list[str | None]
    long_form: np.ndarray  # bool per caption
    evaluation: np.ndarray  # bool per caption: a sentence of a caption dataset that is also an evaluation file
    frequency: np.ndarray  # global top-K frequency per caption


def frequency_digest(frequency: pa.Table) -> str:
    """What the global frequency table holds (vocab, caption_id, count), as a short hash."""
    columns = [frequency[c].to_pylist() for c in ("vocab", "caption_id", "count")]
    return content_key(columns[0], columns[1], map(str, columns[2]))


@lru_cache(maxsize=2)
def _catalogs(
    vocab_root: str, versions: tuple[tuple[str, str], ...], frequency_url: str, frequency: str
) -> dict[str, Catalog]:
    """Loaded once per worker process, then shared by every unit it runs. Keyed by content, not
    by place: the vocabulary versions and the frequency table's digest (a folder rebuilt or
    relabeled in place holds other captions and counts under the same paths). What is loaded
    must be what the run planned: a vocabulary or frequency table changed under the run is
    refused, so a cached catalog is always the planned content."""
    table = read_table(frequency_url)
    if frequency_digest(table) != frequency:
        raise InputsChanged(
            f"{frequency_url}: the caption frequencies changed while labels were drawn (another run wrote "
            "into this output folder?); run `soundry label` again"
        )
    frequencies = table.to_pydict()
    by_caption = {
        (v, c): n for v, c, n in zip(frequencies["vocab"], frequencies["caption_id"], frequencies["count"], strict=True)
    }
    catalogs = {}
    evaluation_sources = read_evaluation_sources(vocab_root)
    for name, version in versions:
        vocabulary = read_vocabularies(vocab_root, [name])[name]
        if vocabulary.version != version:
            raise InputsChanged(
                f"{vocab_root}: vocabulary {name} changed while labels were drawn (version {vocabulary.version}, "
                f"the run planned {version}); run `soundry label` again"
            )
        table = vocabulary.table.sort_by("caption_id").to_pydict()
        catalogs[name] = Catalog(
            table["caption_id"],
            table["text"],
            table["aspect"],
            np.array([k == "long_form" for k in table["kind"]]),
            np.array([source in evaluation_sources for source in table["source"]]),
            np.array([by_caption.get((name, c), 0) for c in table["caption_id"]], dtype=np.int64),
        )
    return catalogs


@lru_cache(maxsize=2)
def _token_counter(folder: str | None):
    return token_counter(folder)


def assemble_unit(unit: LabelUnit, settings: AssembleSettings) -> dict[str, Any]:
    out = join(settings.output, LABELS_DIR, f"part-{unit.id}.parquet")
    if exists(out):
        return {"unit": unit.id, "clips": unit.rows, "resumed": True}
    catalogs = _catalogs(settings.vocab_root, settings.vocabularies, settings.frequency_url, settings.frequency_digest)
    count = _token_counter(settings.prompts.tokenizer)
    top = read_table(work_part(settings.output, "topk", unit.id)).to_pydict()
    lists = {
        (c, v): (i, s)
        for c, v, i, s in zip(top["clip_id"], top["vocab"], top["caption_index"], top["score"], strict=True)
    }
    clips = read_unit_rows(unit, ["clip_id", *METADATA_COLUMNS]).to_pylist()
    clip_ids = [clip["clip_id"] for clip in clips]
    facts = read_facts(settings.music.analysis, clip_ids) if settings.music else {}
    draws = {
        name: _draw(catalog, [lists.get((c, name), ([], []))[0] for c in clip_ids], clip_ids, name, settings.balance)
        for name, catalog in catalogs.items()
    }
    long_vocabs = settings.prompts.long_form_vocabularies
    fields = settings.prompts.metadata_fields
    rows, selections = [], {}
    for row_index, clip in enumerate(clips):
        candidates, labels, long_labels, short_labels = [], [], [], []
        for name, catalog in catalogs.items():
            indices, scores = lists.get((clip["clip_id"], name), ([], []))
            ranked = [_candidate(name, catalog, i, s) for i, s in zip(indices, scores, strict=True)]
            drawn = [p for p in draws[name][row_index] if p >= 0]
            # The reference the summary compares with: the K' most similar, no balancing.
            plain = range(min(settings.balance.labels_for(name), len(ranked)))
            for selection, positions in (("plain", plain), ("balanced", drawn)):
                for p in positions:
                    key = (name, ranked[p].caption_id, selection)
                    selections[key] = selections.get(key, 0) + 1
            for p in drawn:
                if not catalog.long_form[indices[p]]:
                    short_labels.append(ranked[p])
                elif (long_vocabs is None or name in long_vocabs) and (
                    settings.prompts.evaluation_sentences or not catalog.evaluation[indices[p]]
                ):
                    long_labels.append(ranked[p])
            candidates += ranked
            labels += [ranked[p] for p in drawn]
        measured = facts.get(clip["clip_id"])
        music = stated_facts(measured, settings.music)
        rows.append(
            LabelRow(
                clip_id=clip["clip_id"],
                label_run=settings.label_run,
                candidates=candidates,
                labels=labels,
                prompt_candidates=music.sentences
                + prompt_candidates(
                    long_labels, short_labels, clip, fields, settings.prompts.max_tokens, count, music.tags
                ),
                structured=music.merged(structured_fields(short_labels, clip, fields)),
                **{name: clip.get(name) for name in METADATA_COLUMNS},
                **(measured.label_columns() if measured else {}),
            )
        )
    write_table_atomic(
        work_part(settings.output, "label_counts", unit.id),
        pa.Table.from_pylist(
            [{"vocab": v, "caption_id": c, "selection": s, "count": n} for (v, c, s), n in sorted(selections.items())],
            schema=SELECTION_SCHEMA,
        ),
    )
    write_table_atomic(out, labels_to_table(rows))
    return {"unit": unit.id, "clips": unit.rows, "resumed": False}


def _draw(catalog: Catalog, lists: list[list[int]], clip_ids: list[str], vocab: str, balance: Balancing) -> np.ndarray:
    """The unit's clips' balanced draws from one vocabulary, all at once: (clips, K') positions."""
    width = max((len(indices) for indices in lists), default=0)
    frequencies = np.zeros((len(lists), width), dtype=np.int64)
    for row, indices in enumerate(lists):
        frequencies[row, : len(indices)] = catalog.frequency[indices]
    return balanced_draws(frequencies, balance.labels_for(vocab), draw_keys(clip_ids, vocab, balance.seed))


def _candidate(vocab: str, catalog: Catalog, index: int, score: float) -> Candidate:
    aspect = None if catalog.long_form[index] else catalog.aspects[index]
    return Candidate(vocab, catalog.caption_ids[index], catalog.texts[index], aspect, float(score))
