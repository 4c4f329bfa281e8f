"""A vocabulary build's inputs, read in the build's order, each recorded with its digest for the manifest."""

from __future__ import annotations

import collections
import hashlib
import json
from typing import Any

import numpy as np

from curation.core.storage import filesystem
from labeling.vocab.builtin_tags import FILE as BUILTIN_FILE
from labeling.vocab.builtin_tags import builtin_tags_sha256, load_builtin_tags
from labeling.vocab.cleaning.corpus_rules import Deduplicator, EvalCaptions
from labeling.vocab.cleaning.music_check import BINS, RULE, music_check, similarity_quantiles
from labeling.vocab.cleaning.sentences import split_sentences
from labeling.vocab.config import VocabConfig
from labeling.vocab.llm.backend import Prompt
from labeling.vocab.prompts import song_prompt
from labeling.vocab.rater_captions import caption_reader, rater_items
from labeling.vocab.songs import Song, corpus_songs, list_songs
from labeling.vocab.tags import TagCollector
from labeling.vocab.text_tables import TableReader
from labeling.vocab.writer import VocabularyWriter

# `inputs` (every function's last argument) is the manifest's record of what was read: one
# entry per file or corpus folder, with its role, digest and row counts.
Inputs = dict[str, Any]

# Rater sentences the CLAP check embeds together (the model splits them into its text batches).
_CLAP_CHECK_BATCH = 1024


def read_exclusions(config: VocabConfig, inputs: Inputs) -> EvalCaptions:
    """The evaluation captions no vocabulary caption may match, whole and split into sentences."""
    eval_captions = EvalCaptions(config.cleaning)
    for source in config.cleaning.exclude:
        reader = caption_reader(source, config.cleaning, option="cleaning.exclude[].caption_column")
        rows = 0
        for line, row in reader:
            caption = row.get(source.caption_column)
            if not caption or len(caption) > config.cleaning.max_caption_chars:
                # an evaluation caption left out weakens the exclusion: counted like a bad row
                reader.skip("empty_caption" if not caption else "caption_too_long", line)
                continue
            rows += 1
            eval_captions.add([caption, *split_sentences(caption).sentences])
        inputs[source.path] = {
            "role": "eval_exclusion",
            "sha256": file_sha256(source.path),
            "rows": rows,
            **reader.summary(),
        }
    return eval_captions


def add_builtin_tags(tags: TagCollector, inputs: Inputs) -> None:
    for tag in load_builtin_tags():
        tags.add(tag.tag, "builtin", {"file": f"labeling/vocab/{BUILTIN_FILE}", "line": tag.line}, tag.aspect)
    inputs[BUILTIN_FILE] = {"role": "builtin_tags", "sha256": builtin_tags_sha256(), "rows": len(load_builtin_tags())}


def song_prompts(config: VocabConfig, tags: TagCollector, inputs: Inputs) -> tuple[list[Prompt], dict[str, int]]:
    """Prompts for the songs of the corpus and the song lists (each song once), adding
    their genre and list tags to the tags vocabulary on the way; and how many songs were
    prompted or passed over, by reason."""
    prompts: list[Prompt] = []
    seen: set[tuple[str, str]] = set()
    counts: collections.Counter[str] = collections.Counter()

    def take(song: Song, provenance: dict[str, Any]) -> None:
        if config.metadata_tags:
            for aspect, values in song.facts.items():
                if aspect != "era":  # a decade computed from a date is ours, not the metadata's
                    for value in values:
                        tags.add(value, "metadata", provenance, aspect)
        prompt = song_prompt(song, config.prompts)
        if prompt is None:
            counts["without_title_or_artist"] += 1
        elif song.key in seen:
            counts["repeated"] += 1
        elif config.prompts.max_songs is not None and len(prompts) >= config.prompts.max_songs:
            counts["over_max_songs"] += 1
        else:
            seen.add(song.key)
            prompts.append(prompt)
            counts["prompted"] += 1

    for folder in config.corpus:
        digest, found = hashlib.sha256(), 0
        for song in corpus_songs(folder):
            found += 1
            digest.update(json.dumps([song.title, song.artist, song.album, sorted(song.facts.items())]).encode())
            take(song, {"corpus": folder, "part": song.where})
        inputs[f"corpus:{folder}"] = {"role": "corpus", "songs": found, "sha256": digest.hexdigest()}
    for source in config.songs:
        readers: list[TableReader] = []
        found = 0
        for song in list_songs(source, config.cleaning.max_line_bytes, readers.append):
            found += 1
            take(song, {"file": source.path, "where": song.where})
        inputs[source.path] = {
            "role": "songs",
            "sha256": file_sha256(source.path),
            "rows": found,
            **readers[0].summary(),
        }
    return prompts, dict(sorted(counts.items()))


def rater_sentences(
    config: VocabConfig, writer: VocabularyWriter, tags: TagCollector, eval_captions: EvalCaptions, inputs: Inputs
) -> dict[str, Any]:
    """The caption datasets' sentences into `writer` through the per-sentence and corpus-wide
    rules (and the CLAP check, when on), their tags into `tags`; the cleaning summary. A
    dataset that is also an evaluation file keeps its sentences (its source is named in the
    manifest's evaluation_sources, and the label stage keeps them out of prompts)."""
    dedup = Deduplicator(config.cleaning, eval_captions)
    removed: collections.Counter[str] = collections.Counter()
    read: collections.Counter[str] = collections.Counter()
    check = music_check(config.cleaning.clap_check) if config.cleaning.clap_check else None
    histogram = np.zeros(BINS, dtype=np.int64)
    # sentences the CLAP check sees a batch at a time: (text, source name, provenance, from an evaluation file)
    waiting: list[tuple[str, str, dict[str, Any], bool]] = []

    def add(text: str, name: str, provenance: dict[str, Any], evaluation: bool) -> None:
        reason = dedup.check(text, evaluation_source=evaluation)
        if reason:
            removed[reason] += 1
        else:
            writer.add(text, name, provenance)

    def flush() -> None:
        # In file order, after the per-sentence rules and before deduplication, as for LLM sentences.
        passed = check.keep([text for text, _, _, _ in waiting], histogram)
        removed[RULE] += passed.count(False)
        for item, ok in zip(waiting, passed, strict=True):
            if ok:
                add(*item)
        waiting.clear()

    for source in config.captions:
        evaluation = source.path in evaluation_paths(config)
        reader = caption_reader(source, config.cleaning, option="captions[].caption_column / tags_column")
        rows_before = read["captions"]
        name = f"rater:{source.dataset_name}"
        for kind, text, provenance in rater_items(
            reader, source, config.cleaning, removed, lambda key: read.update([key])
        ):
            if kind == "tag":
                tags.add(text, name, provenance, evaluation_source=evaluation)
            elif check is None:
                add(text, name, provenance, evaluation)
            else:
                waiting.append((text, name, provenance, evaluation))
                if len(waiting) >= _CLAP_CHECK_BATCH:
                    flush()
        inputs[source.path] = {
            "role": "captions",
            "sha256": file_sha256(source.path),
            "rows": read["captions"] - rows_before,
            **reader.summary(),
            **({"evaluation": True} if evaluation else {}),
        }
    if waiting:
        flush()
    summary = {
        "captions": read["captions"],
        "sentences": read["sentences"],
        "removed": dict(sorted((k, v) for k, v in removed.items() if v)),
        "kept": writer.count,
    }
    if check is not None:
        summary["clap_similarity"] = similarity_quantiles(histogram)
    return summary


def evaluation_paths(config: VocabConfig) -> set[str]:
    return {source.path for source in config.cleaning.exclude}


def evaluation_sources(config: VocabConfig) -> list[str]:
    """The vocabulary sources (rater:<name>) of caption datasets that are also evaluation files."""
    paths = evaluation_paths(config)
    return sorted({f"rater:{source.dataset_name}" for source in config.captions if source.path in paths})


def file_sha256(url: str) -> str:
    fs, path = filesystem(url)
    digest = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
