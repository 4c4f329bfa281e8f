"""The stage's model steps: captions to text embeddings, clips to audio embeddings and top-K.

Each step is a CPU `prepare` function (decoding) and a model class loaded once per model
worker (the CLAP model, and for scoring the vocabularies' matrices on its device); the
engines scale the two apart. Outputs per unit, written atomically, the last one marking
the unit done:
- text: the cache's text part;
- audio: the cache's audio part (unless cached), then in the label folder
  `clip_embeddings/part-<unit>.parquet`, `work/topk_counts/part-<unit>.parquet` (this
  unit's share of the global caption frequency) and `work/topk/part-<unit>.parquet`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from curation.core.storage import exists, join, read_table, write_table_atomic
from labeling.clap.audio import decode_mono_48k, pool_windows, windows
from labeling.clap.backend import Clap, ClapConfig, ClapIdentity, load_clap
from labeling.clap.embedding_cache import (
    EmbeddingCache,
    content_key,
    embeddings_from_table,
    embeddings_to_table,
    read_vocab_matrix,
)
from labeling.labels.table import CLIP_EMBEDDINGS_DIR
from labeling.labels.units import LabelUnit, read_unit_rows

TOPK_SCHEMA = pa.schema(
    [
        pa.field("clip_id", pa.string(), nullable=False),
        pa.field("vocab", pa.string(), nullable=False),
        pa.field("caption_index", pa.list_(pa.int32())),  # rows of the vocabulary's matrix (caption_id order)
        pa.field("score", pa.list_(pa.float32())),
    ]
)
COUNT_SCHEMA = pa.schema(
    [
        pa.field("vocab", pa.string(), nullable=False),
        pa.field("caption_id", pa.string(), nullable=False),
        pa.field("count", pa.int64(), nullable=False),
    ]
)


def work_part(output: str, table: str, unit_id: str) -> str:
    return join(output, "work", table, f"part-{unit_id}.parquet")


@dataclass(frozen=True)
class CaptionUnit:
    captions: tuple[tuple[str, str], ...]  # (caption_id, text), sorted by length for even padding

    @property
    def key(self) -> str:
        return content_key([c for c, _ in self.captions])


@dataclass(frozen=True)
class ModelSettings:
    clap: ClapConfig
    identity: ClapIdentity
    cache_root: str


class TextEmbedder:
    """Loads CLAP once; embeds a caption unit into the cache."""

    def __init__(self, settings: ModelSettings) -> None:
        self.cache = EmbeddingCache(settings.cache_root, settings.identity)
        self.clap = load_clap(settings.clap)

    def __call__(self, unit: CaptionUnit) -> dict[str, Any]:
        url = self.cache.text_part(unit.key)
        if exists(url):
            return {"captions": len(unit.captions), "resumed": True}
        started = time.perf_counter()
        vectors = self.clap.embed_text([text for _, text in unit.captions])
        write_table_atomic(url, embeddings_to_table([c for c, _ in unit.captions], vectors))
        return {"captions": len(unit.captions), "resumed": False, "embed_s": time.perf_counter() - started}


@dataclass(frozen=True)
class ScoreSettings:
    model: ModelSettings
    output: str
    vocab_matrices: dict[str, str]  # vocabulary name -> matrix URL in the cache
    k: int
    min_similarity: float | None
    clip_batch: int
    caption_chunk: int
    min_last_window_s: float

    def audio_key(self, unit: LabelUnit) -> str:
        return content_key([unit.content], [f"{self.min_last_window_s:g}"])


def prepare_audio(unit: LabelUnit, settings: ScoreSettings) -> dict[str, Any]:
    """CPU side: the unit's windows, unless its results or its embeddings exist already."""
    if exists(work_part(settings.output, "topk", unit.id)):
        return {"unit": unit, "state": "done"}
    cache = EmbeddingCache(settings.model.cache_root, settings.model.identity)
    if exists(cache.audio_part(settings.audio_key(unit))):
        return {"unit": unit, "state": "cached"}
    started = time.perf_counter()
    rows = read_unit_rows(unit, ["clip_id", "audio_flac"]).to_pydict()
    clip_windows = [windows(decode_mono_48k(flac), settings.min_last_window_s) for flac in rows["audio_flac"]]
    return {
        "unit": unit,
        "state": "decoded",
        "clip_ids": rows["clip_id"],
        "counts": [len(w) for w in clip_windows],
        "windows": np.concatenate(clip_windows),
        "decode_s": time.perf_counter() - started,
    }


class AudioScorer:
    """Loads CLAP and the vocabularies' matrices once; embeds and searches one unit per call."""

    def __init__(self, settings: ScoreSettings) -> None:
        from labeling.clap.device import torch_device, torch_dtype
        from labeling.labels.topk import CaptionIndex

        self.settings = settings
        self.cache = EmbeddingCache(settings.model.cache_root, settings.model.identity)
        self._clap: Clap | None = None  # built at the first clip not in the cache: a new vocabulary needs none
        device = torch_device(settings.model.clap)
        dtype = torch_dtype(settings.model.clap, device)
        self.vocabularies: dict[str, tuple[list[str], CaptionIndex]] = {}
        for name, url in sorted(settings.vocab_matrices.items()):
            keys, vectors = read_vocab_matrix(url)
            self.vocabularies[name] = (keys, CaptionIndex(vectors, device, dtype, settings.caption_chunk))

    @property
    def clap(self) -> Clap:
        if self._clap is None:
            self._clap = load_clap(self.settings.model.clap)
        return self._clap

    def __call__(self, payload: dict[str, Any]) -> dict[str, Any]:
        unit: LabelUnit = payload["unit"]
        stats: dict[str, Any] = {
            "unit": unit.id,
            "clips": unit.rows,
            "resumed": payload["state"] == "done",
            "cached": payload["state"] == "cached",
            "windows": 0,
            "decode_s": payload.get("decode_s", 0.0),
        }
        if payload["state"] == "done":
            return stats
        started = time.perf_counter()
        cache_url = self.cache.audio_part(self.settings.audio_key(unit))
        if payload["state"] == "cached":
            clip_ids, vectors = embeddings_from_table(read_table(cache_url))
        else:
            clip_ids = payload["clip_ids"]
            vectors = pool_windows(self.clap.embed_audio(payload["windows"]), payload["counts"])
            write_table_atomic(cache_url, embeddings_to_table(clip_ids, vectors))
            stats["windows"] = int(sum(payload["counts"]))
        stats["embed_s"] = time.perf_counter() - started
        write_table_atomic(
            join(self.settings.output, CLIP_EMBEDDINGS_DIR, f"part-{unit.id}.parquet"),
            embeddings_to_table(clip_ids, vectors),
        )
        started = time.perf_counter()
        rows, counts = self._search(clip_ids, vectors)
        write_table_atomic(
            work_part(self.settings.output, "topk_counts", unit.id), pa.Table.from_pylist(counts, schema=COUNT_SCHEMA)
        )
        write_table_atomic(
            work_part(self.settings.output, "topk", unit.id), pa.Table.from_pylist(rows, schema=TOPK_SCHEMA)
        )
        stats["topk_s"] = time.perf_counter() - started
        return stats

    def _search(self, clip_ids: list[str], vectors: np.ndarray) -> tuple[list[dict], list[dict]]:
        rows: list[dict] = []
        counts: dict[tuple[str, str], int] = {}
        for name, (caption_ids, index) in self.vocabularies.items():
            scores, indices = index.search(vectors, self.settings.k, self.settings.clip_batch)
            for clip_id, clip_scores, clip_indices in zip(clip_ids, scores, indices, strict=True):
                if self.settings.min_similarity is not None:
                    keep = clip_scores >= self.settings.min_similarity
                    clip_scores, clip_indices = clip_scores[keep], clip_indices[keep]
                rows.append(
                    {
                        "clip_id": clip_id,
                        "vocab": name,
                        "caption_index": clip_indices.astype(np.int32).tolist(),
                        "score": clip_scores.tolist(),
                    }
                )
                for i in clip_indices:
                    key = (name, caption_ids[i])
                    counts[key] = counts.get(key, 0) + 1
        return rows, [{"vocab": v, "caption_id": c, "count": n} for (v, c), n in sorted(counts.items())]
