"""A split of a published dataset version as an evaluation set: its clips' audio and their prompts."""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import islice

import numpy as np

from model.evaluation.audio_folder import read_mono
from model.evaluation.embedding import AudioEmbedder, EmbeddedSet
from model.evaluation.errors import EvaluationError
from shards.loader.tars import BrokenShard, Sample, read_tar_samples
from shards.manifest import read_manifest, shard_urls


def embed_version_split(
    version: str,
    split: str,
    embedder: AudioEmbedder,
    clips_per_batch: int,
    max_clips: int | None = None,
    side: str = "reference",
) -> EmbeddedSet:
    """The split's clips (the first `max_clips` when given), streamed from its shards in manifest order
    and embedded `clips_per_batch` at a time (memory holds one batch of audio), named by clip_id, with
    the prompt of each sample's json."""
    urls = shard_urls(version, read_manifest(version), [split])
    names: list[str] = []
    prompts: dict[str, str] = {}
    structured: dict[str, dict[str, list[str]]] = {}
    parts = []
    for batch in _batches(islice(samples(urls), max_clips), clips_per_batch):
        clips = []
        for sample in batch:
            key = sample["__key__"]
            if "flac" not in sample:
                raise EvaluationError(f"{sample['__url__']}: sample {key} has no audio (flac)")
            clips.append(read_mono(sample["flac"], embedder.sample_rate, f"{sample['__url__']} sample {key}"))
            names.append(key)
            record = json.loads(sample["json"]) if "json" in sample else {}
            if record.get("prompt"):
                prompts[key] = record["prompt"]
            if record.get("structured"):
                structured[key] = {field["aspect"]: field["values"] for field in record["structured"]}
        parts.append(embedder.embed(clips))
    if not names:
        raise EvaluationError(f"{side} {version}: split {split} holds no clips")
    return EmbeddedSet(f"{side} {version} split {split}", names, prompts, np.concatenate(parts), structured)


def split_audio(version: str, split: str, names: set[str], rate: int) -> Iterator[tuple[str, np.ndarray]]:
    """The split's clips of those names, one (clip_id, mono audio at rate) at a time."""
    for sample in samples(shard_urls(version, read_manifest(version), [split])):
        if sample["__key__"] in names and "flac" in sample:
            yield sample["__key__"], read_mono(sample["flac"], rate, f"{sample['__url__']} sample {sample['__key__']}")


def samples(urls: list[str]) -> Iterator[Sample]:
    for url in urls:
        try:
            yield from read_tar_samples(url)
        except BrokenShard as error:
            raise EvaluationError(f"{error}; copy the version again or name another reference") from None


def _batches(samples: Iterator[Sample], size: int) -> Iterator[list[Sample]]:
    batch: list[Sample] = []
    for sample in samples:
        batch.append(sample)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
