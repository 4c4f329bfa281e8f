"""The label-quality report of a finished label folder against a labeled set (the truth).

Reads only the clips the truth names: their audio embeddings (clip_embeddings/), their label
rows (labels/), the tags vocabulary's matrix and the truth captions' text embeddings (from
the embedding cache, the captions it lacks embedded first). Every list is sorted by id, so a
rerun writes the same report.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from curation.core.errors import UserError
from curation.core.storage import exists, join, list_files, read_table, write_table_atomic
from labeling.clap.backend import ClapConfig, ClapIdentity, load_clap
from labeling.clap.embedding_cache import (
    EmbeddingCache,
    content_key,
    embeddings_from_table,
    embeddings_to_table,
    read_vocab_matrix,
)
from labeling.labels.config import LabelConfig
from labeling.labels.quality import measures
from labeling.labels.quality.truth import Truth, match_clips, read_truth
from labeling.labels.table import CLIP_EMBEDDINGS_DIR, LABELS_DIR
from labeling.vocab.table import Vocabulary, caption_id

RECALL_AT = (1, 10)
QUERY_CHUNK = 1024  # caption queries scored at once: bounds the (queries x clips) score block


class QualityError(UserError):
    """A labeled set the label run cannot be scored on; names the option or file."""


def quality_report(
    config: LabelConfig, identity: ClapIdentity, vocabularies: dict[str, Vocabulary], cache: EmbeddingCache
) -> dict[str, Any]:
    truth, items = check_truth(config, vocabularies)
    clip_ids, audio = _clip_embeddings(config.output, items)
    report: dict[str, Any] = {
        "truth": truth.url,
        "matched_by": f"{truth.id_column} = clip table's {truth.clip_column}",
        "clap": identity.description,
        "random_weights": identity.random_weights,
        "clips": len(clip_ids),
        "items": len({items[c] for c in clip_ids}),
    }
    if identity.random_weights:
        report["note"] = "CLAP has random weights: every figure should be near its chance level"
    if any(truth.tags.values()):
        report.update(_tag_measures(config, truth, items, clip_ids, audio, vocabularies, cache))
    if truth.captions:
        queries = _caption_vectors(config.clap, cache, truth, items, clip_ids, config.captions_per_unit)
        report["retrieval"] = retrieval(queries, items, clip_ids, audio)
    return report


def check_truth(config: LabelConfig, vocabularies: dict[str, Vocabulary]) -> tuple[Truth, dict[str, str]]:
    """The truth table read and matched to the clips (clip_id -> truth id), its mistakes found
    before any labeling work."""
    truth = read_truth(config.truth, config.quality)
    items = match_clips(truth, config.clips)
    name = config.quality.tags_vocabulary
    if any(truth.tags.values()) and name not in vocabularies:
        raise QualityError(
            f"quality.tags_vocabulary {name}: not a vocabulary of this label run ({', '.join(sorted(vocabularies))})"
        )
    return truth, items


def _clip_embeddings(output: str, items: dict[str, str]) -> tuple[list[str], np.ndarray]:
    """The named clips' audio embeddings, in clip_id order."""
    found: dict[str, np.ndarray] = {}
    for part in list_files(join(output, CLIP_EMBEDDINGS_DIR), ".parquet"):
        keys, vectors = embeddings_from_table(read_table(part))
        found.update((k, v) for k, v in zip(keys, vectors, strict=True) if k in items)
    clip_ids = sorted(found)
    return clip_ids, np.stack([found[c] for c in clip_ids]).astype(np.float64)


def _tag_measures(
    config: LabelConfig,
    truth: Truth,
    items: dict[str, str],
    clip_ids: list[str],
    audio: np.ndarray,
    vocabularies: dict[str, Vocabulary],
    cache: EmbeddingCache,
) -> dict[str, Any]:
    name = config.quality.tags_vocabulary
    url = cache.vocab_matrix(name, vocabularies[name].version)
    if not exists(url):  # a finished run whose embedding cache was deleted or moved
        raise QualityError(
            f"{url}: vocabulary {name}'s caption vectors are not in the embedding cache; point "
            "the cache option at the run's cache, or label again into a new output"
        )
    vocab_ids, matrix = read_vocab_matrix(url)
    in_vocab = set(vocab_ids)
    matched = {items[c] for c in clip_ids}
    known = {item: {caption_id(t) for t in tags} for item, tags in truth.tags.items() if item in matched}
    all_known = set().union(*known.values())
    scored = sorted(all_known & in_vocab)  # the tags that can be scored: known somewhere and in the vocabulary
    tagged = [i for i, c in enumerate(clip_ids) if known.get(items[c], set()) & in_vocab]
    if not tagged:
        return {
            "tags": {
                "vocabulary": name,
                "clips": 0,
                "known_tags_outside_vocabulary": len(all_known - in_vocab),
                "skipped": f"no matched clip has a known tag that is in vocabulary {name}",
            }
        }
    rows = {c: i for i, c in enumerate(vocab_ids)}
    similarity = audio[tagged] @ matrix[[rows[t] for t in scored]].astype(np.float64).T
    relevant = np.array([[t in known[items[clip_ids[i]]] for t in scored] for i in tagged])
    average, chance, averaged = measures.mean_average_precision(similarity, relevant)
    return {
        "tags": {
            "vocabulary": name,
            "clips": len(tagged),
            "tags_scored": len(scored),
            "known_tags_outside_vocabulary": len(all_known - in_vocab),
            "top1_accuracy": _figure(measures.top1_accuracy(similarity, relevant), measures.top1_chance(relevant)),
            "mAP": {**_figure(average, chance), "tags": averaged},
        },
        "drawn_labels": _drawn(config, name, items, [clip_ids[i] for i in tagged], known, in_vocab),
    }


def _drawn(
    config: LabelConfig,
    vocab: str,
    items: dict[str, str],
    clip_ids: list[str],
    known: dict[str, set[str]],
    in_vocab: set[str],
) -> dict[str, Any]:
    """Precision of plain top-K' and frequency-balanced labels (and of the whole top-K, what a
    draw from it averages) against the clips' known tags, with their mean similarity."""
    wanted = set(clip_ids)
    selections: dict[str, dict[str, list[tuple[str, float]]]] = {"plain": {}, "balanced": {}, "top_k": {}}
    labels_per_clip = config.balance.labels_for(vocab)
    for part in list_files(join(config.output, LABELS_DIR), ".parquet"):
        for row in read_table(part, columns=["clip_id", "candidates", "labels"]).to_pylist():
            if row["clip_id"] not in wanted:
                continue
            ranked = [(c["caption_id"], c["score"]) for c in row["candidates"] if c["vocab"] == vocab]
            selections["top_k"][row["clip_id"]] = ranked
            selections["plain"][row["clip_id"]] = ranked[:labels_per_clip]
            selections["balanced"][row["clip_id"]] = [
                (c["caption_id"], c["score"]) for c in row["labels"] if c["vocab"] == vocab
            ]
    ordered = sorted(selections["top_k"])
    clip_known = [known[items[c]] for c in ordered]
    result: dict[str, Any] = {
        "vocabulary": vocab,
        "labels_per_clip": labels_per_clip,
        "clips": len(ordered),
        "chance": _round(measures.selection_chance(clip_known, in_vocab)) if ordered else None,
    }
    for selection, drawn in selections.items():
        precision, similarity, count = measures.selection_precision([drawn[c] for c in ordered], clip_known)
        result[selection] = {"precision": _round(precision), "mean_similarity": _round(similarity), "labels": count}
    return result


def _caption_vectors(
    clap: ClapConfig, cache: EmbeddingCache, truth: Truth, items: dict[str, str], clip_ids: list[str], chunk: int
) -> list[tuple[str, np.ndarray]]:
    """(truth id, text embedding) of each known caption of a matched item, in (id, caption) order;
    captions the cache lacks are embedded and added to it."""
    matched = {items[c] for c in clip_ids}
    queries = [(item, text) for item in sorted(matched) for text in truth.captions.get(item, [])]
    if not queries:
        return []
    texts = {caption_id(text): text for _, text in queries}
    missing = sorted(texts.keys() - cache.cached_caption_ids())
    for start in range(0, len(missing), chunk):
        ids = missing[start : start + chunk]
        vectors = load_clap(clap).embed_text([texts[i] for i in ids])
        write_table_atomic(cache.text_part(content_key(ids)), embeddings_to_table(ids, vectors))
    order = sorted(texts)
    ids, matrix = read_vocab_matrix(cache.write_vocab_matrix("truth", content_key(order), order))
    rows = {c: i for i, c in enumerate(ids)}
    return [(item, matrix[rows[caption_id(text)]].astype(np.float64)) for item, text in queries]


def retrieval(
    queries: list[tuple[str, np.ndarray]], items: dict[str, str], clip_ids: list[str], audio: np.ndarray
) -> dict[str, Any]:
    """Each known caption searches the matched clips' audio; a hit is a clip of its own item."""
    if not queries:
        return {"queries": 0}
    clip_items = np.array([items[c] for c in clip_ids])
    hits = {k: 0.0 for k in RECALL_AT}
    chance = {k: 0.0 for k in RECALL_AT}
    for start in range(0, len(queries), QUERY_CHUNK):
        block = queries[start : start + QUERY_CHUNK]
        similarity = np.stack([v for _, v in block]) @ audio.T
        relevant = np.array([item for item, _ in block])[:, None] == clip_items[None, :]
        for k in RECALL_AT:
            hits[k] += measures.recall_at_k(similarity, relevant, k) * len(block)
            chance[k] += measures.recall_chance(relevant, k) * len(block)
    result: dict[str, Any] = {"queries": len(queries), "clips": len(clip_ids)}
    for k in RECALL_AT:
        result[f"recall@{k}"] = _figure(hits[k] / len(queries), chance[k] / len(queries))
    return result


def _figure(value: float, chance: float) -> dict[str, float]:
    return {"value": _round(value), "chance": _round(chance)}


def _round(value: float) -> float:
    return round(float(value), 6)
