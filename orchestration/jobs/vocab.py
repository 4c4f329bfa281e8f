"""`soundry vocab`: build the three caption vocabularies and their manifest.

Order of work (every step streams its input):
1. evaluation captions to exclude, read first so every later caption can be checked;
2. tags: the built-in list, then the corpus's and song lists' genres (collecting the songs
   on the way), then the caption datasets' tag columns, while their captions become rater
   sentences;
3. long-form generation: songs and tag combinations become prompts, units of prompts run on
   the engine (the template backend in this process: it costs less than starting one; a
   local model on the engine's model workers, loaded once each), each writing a part file;
   the parts are then read in unit order for the corpus-wide rules (exact and near
   duplicates, evaluation overlap);
4. the tables are published and manifest.json written last.
A run killed anywhere is resumed by running it again: answers are cached as they arrive and
finished units are skipped; published tables are only replaced by the new manifest.
"""

from __future__ import annotations

import collections
import functools
import hashlib
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from pydantic import Field
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from curation.clip import clip_parts
from curation.core.storage import filesystem, join, list_files, read_table, remove_stale_temporaries
from labeling.vocab.builtin_tags import FILE as BUILTIN_FILE
from labeling.vocab.builtin_tags import builtin_tags_sha256, load_builtin_tags
from labeling.vocab.cleaning.corpus_rules import Deduplicator, EvalCaptions
from labeling.clap.backend import clap_identity
from labeling.vocab.llm.backend import Prompt, source_of
from labeling.vocab.cleaning.music_check import BINS, RULE, music_check, similarity_quantiles
from labeling.vocab.rater_captions import caption_reader, rater_items
from labeling.vocab.cleaning.sentences import split_sentences
from labeling.vocab.songs import Song, corpus_songs, list_songs
from labeling.vocab.text_tables import TableReader
from labeling.vocab.config import VocabConfig
from labeling.vocab.generation import GenerationTask, GenerationUnit, UnitGenerator, generate_unit, part_url
from labeling.vocab.prompts import combination_prompts, song_prompt
from labeling.vocab.tags import TagCollector
from labeling.vocab.writer import VocabularyWriter, write_manifest
from orchestration.engines.config import RunnerConfig
from orchestration.engines.base import ModelStage, Runner
from orchestration.engines.local_runner import LocalRunner
from orchestration.engines.registry import make_runner, worker_count

# What the generation workers import before their first unit (pyarrow imports pandas at its
# first table conversion), imported while the engine starts.
WORKER_IMPORTS = ("labeling.vocab.generation", "pandas")


# Rater sentences the CLAP check embeds together (the model splits them into its text batches).
_CLAP_CHECK_BATCH = 1024


class VocabJob(VocabConfig):
    runner: RunnerConfig = Field(default_factory=RunnerConfig, description="Engine that runs LLM generation (the template backend runs in this process)")

    def stage_config(self) -> VocabConfig:
        return VocabConfig.model_validate(self.model_dump(exclude={"runner"}))


def build_vocabularies(job: VocabJob, console: Console | None = None) -> dict[str, Any]:
    """Build the vocabularies `job` describes into job.output; returns the run's summary
    (also in manifest.json, except timings and engine)."""
    console = console or Console(stderr=True)
    config = job.stage_config()
    names = config.names
    for folder in config.corpus:
        clip_parts(folder)  # a wrong corpus folder is said before any work
    remove_stale_temporaries(config.output)
    writers = {names.llm_long: VocabularyWriter(names.llm_long, "long_form"),
               names.rater_long: VocabularyWriter(names.rater_long, "long_form"),
               names.tags: VocabularyWriter(names.tags, "short_form")}
    try:
        return _build(job, config, writers, console)
    finally:
        for writer in writers.values():
            writer.discard()  # after publishing, nothing is left to discard


def _build(job: VocabJob, config: VocabConfig, writers: dict[str, VocabularyWriter], console: Console) -> dict[str, Any]:
    started = time.perf_counter()
    laps: dict[str, float] = {}
    names = config.names
    inputs: dict[str, Any] = {}

    eval_captions = _read_exclusions(config, inputs)
    laps["exclusions_s"] = time.perf_counter() - started

    tags = TagCollector(writers[names.tags], config.cleaning)
    if config.builtin_tags:
        for tag in load_builtin_tags():
            tags.add(tag.tag, "builtin", {"file": f"labeling/vocab/{BUILTIN_FILE}", "line": tag.line}, tag.aspect)
        inputs[BUILTIN_FILE] = {"role": "builtin_tags", "sha256": builtin_tags_sha256(), "rows": len(load_builtin_tags())}
    prompts, song_counts = _song_prompts(config, tags, inputs)
    rater = _rater_sentences(config, writers[names.rater_long], tags, eval_captions, inputs)
    mark = time.perf_counter()
    laps["tags_and_raters_s"] = mark - started - sum(laps.values())

    prompts.extend(combination_prompts(config.prompts, config.seed))
    llm = _generate(job, config, prompts, writers[names.llm_long], eval_captions, console)
    llm["songs"] = song_counts
    laps["generation_s"] = time.perf_counter() - mark

    vocabularies = {}
    for name, writer in writers.items():
        entry = writer.publish(config.output)
        if entry is not None:
            vocabularies[name] = entry
    cleaning = {names.llm_long: llm.pop("cleaning"), names.rater_long: rater, names.tags: tags.summary()}
    details = {"config": config.model_dump(mode="json"), "inputs": inputs, "cleaning": cleaning, "llm": llm}
    removed_files = write_manifest(config.output, vocabularies, details, list(writers))
    _remove_work(config.output)
    laps["publish_s"] = time.perf_counter() - started - sum(laps.values())
    return {"output": config.output, "vocabularies": vocabularies, **details, "replaced_files": removed_files,
            "runner": job.runner.name if llm["engine"] else "in-process", "timings_s": laps,
            "wall_s": time.perf_counter() - started}


def _read_exclusions(config: VocabConfig, inputs: dict[str, Any]) -> EvalCaptions:
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
        inputs[source.path] = {"role": "eval_exclusion", "sha256": file_sha256(source.path), "rows": rows, **reader.summary()}
    return eval_captions


def _song_prompts(config: VocabConfig, tags: TagCollector, inputs: dict[str, Any]) -> tuple[list[Prompt], dict[str, int]]:
    """Prompts for the songs of the corpus and the song lists (each song once), adding
    their genre and list tags to the tags vocabulary on the way."""
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
        inputs[source.path] = {"role": "songs", "sha256": file_sha256(source.path), "rows": found, **readers[0].summary()}
    return prompts, dict(sorted(counts.items()))


def _rater_sentences(config: VocabConfig, writer: VocabularyWriter, tags: TagCollector, eval_captions: EvalCaptions,
                     inputs: dict[str, Any]) -> dict[str, Any]:
    dedup = Deduplicator(config.cleaning, eval_captions)
    removed: collections.Counter[str] = collections.Counter()
    read: collections.Counter[str] = collections.Counter()
    check = music_check(config.cleaning.clap_check) if config.cleaning.clap_check else None
    histogram = np.zeros(BINS, dtype=np.int64)
    waiting: list[tuple[str, str, dict[str, Any]]] = []  # sentences the CLAP check sees a batch at a time

    def add(text: str, name: str, provenance: dict[str, Any]) -> None:
        reason = dedup.check(text)
        if reason:
            removed[reason] += 1
        else:
            writer.add(text, name, provenance)

    def flush() -> None:
        # In file order, after the per-sentence rules and before deduplication, as for LLM sentences.
        passed = check.keep([text for text, _, _ in waiting], histogram)
        removed[RULE] += passed.count(False)
        for (text, name, provenance), ok in zip(waiting, passed, strict=True):
            if ok:
                add(text, name, provenance)
        waiting.clear()

    for source in config.captions:
        reader = caption_reader(source, config.cleaning, option="captions[].caption_column / tags_column")
        rows_before = read["captions"]
        name = f"rater:{source.dataset_name}"
        for kind, text, provenance in rater_items(reader, source, config.cleaning, removed, lambda key: read.update([key])):
            if kind == "tag":
                tags.add(text, name, provenance)
            elif check is None:
                add(text, name, provenance)
            else:
                waiting.append((text, name, provenance))
                if len(waiting) >= _CLAP_CHECK_BATCH:
                    flush()
        inputs[source.path] = {"role": "captions", "sha256": file_sha256(source.path),
                               "rows": read["captions"] - rows_before, **reader.summary()}
    if waiting:
        flush()
    summary = {"captions": read["captions"], "sentences": read["sentences"],
               "removed": dict(sorted((k, v) for k, v in removed.items() if v)), "kept": writer.count}
    if check is not None:
        summary["clap_similarity"] = similarity_quantiles(histogram)
    return summary


def _generate(job: VocabJob, config: VocabConfig, prompts: list[Prompt], writer: VocabularyWriter,
              eval_captions: EvalCaptions, console: Console) -> dict[str, Any]:
    size = config.llm.prompts_per_unit
    units = [GenerationUnit(i, tuple(prompts[start:start + size])) for i, start in enumerate(range(0, len(prompts), size))]
    task = GenerationTask(
        llm=config.llm, cleaning=config.cleaning, seed=config.seed,
        cache=None if config.llm.backend == "template" else (config.llm.cache or join(config.output, "llm_cache")),
        work=join(_work_root(config.output), _work_key(config)),
    )
    engine = config.llm.backend != "template"
    runner = make_runner(job.runner, WORKER_IMPORTS) if engine and units else LocalRunner(1)
    try:
        with _GenerationProgress(len(units), console) as progress:
            if config.llm.backend == "transformers":
                results = _generate_on_model_workers(runner, task, units, progress.unit_done)
            else:
                results = runner.map(functools.partial(generate_unit, task=task), units, progress.unit_done)
    finally:
        runner.close()
    dedup = Deduplicator(config.cleaning, eval_captions)
    removed: collections.Counter[str] = collections.Counter()
    totals: collections.Counter[str] = collections.Counter()
    histogram = np.zeros(BINS, dtype=np.int64)
    loads: dict[str, float] = {}
    for result in results:
        removed.update(result["removed"])
        totals.update({"sentences": result["sentences"], "resumed": int(result["resumed"])})
        if not result["resumed"]:  # a unit finished by an earlier run asked for nothing in this one
            totals.update({"generated": result["generated"], "cached": result["cached"]})
        if "clap_similarity" in result:
            histogram += np.asarray(result["clap_similarity"], dtype=np.int64)
        if "model_load" in result:
            loads[result["model_load"]["worker"]] = result["model_load"]["seconds"]
    source = source_of(config.llm)
    for unit in units:  # unit order, not completion order: the same sentences win every run
        part = read_table(part_url(task, unit)).to_pylist()
        for row in part:
            reason = dedup.check(row["text"])
            if reason:
                removed[reason] += 1
            else:
                writer.add(row["text"], source, {"answer": row["answer"], "origin": row["origin"], "sentence": row["sentence"]})
    cleaning = {"answers": len(prompts), "sentences": totals["sentences"],
                "removed": dict(sorted((k, v) for k, v in removed.items() if v)), "kept": writer.count}
    if config.cleaning.clap_check is not None:
        cleaning["clap_similarity"] = similarity_quantiles(histogram)
    summary = {
        "backend": config.llm.backend, "source": source, "engine": engine,
        "workers": worker_count(job.runner) if engine else 1, "prompts": len(prompts),
        "combinations": config.prompts.combinations, "units": len(units),
        "units_resumed": totals["resumed"], "answers_generated": totals["generated"], "answers_cached": totals["cached"],
        "cleaning": cleaning,
    }
    if config.llm.backend == "transformers":
        summary |= {"model_loads": len(loads), "model_load_s": round(sum(loads.values()), 3)}
    return summary


def _generate_on_model_workers(runner: Runner, task: GenerationTask, units: list[GenerationUnit],
                               on_result: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
    """A local model's units on the engine's model workers, each loading the model once
    (Ray: an actor per replica, with a GPU where the cluster has them). Units already
    written are read on the plain workers: a finished run loads no model."""
    written = {url.rstrip("/").rsplit("/", 1)[-1] for url in list_files(task.work, ".parquet")}
    finished = {u.index for u in units if part_url(task, u).rsplit("/", 1)[-1] in written}
    done = [u for u in units if u.index in finished]
    pending = [u for u in units if u.index not in finished]
    options = task.llm.transformers
    stage = ModelStage(prepare=_as_payload, load=functools.partial(UnitGenerator, task),
                       workers=options.model_workers, num_gpus=options.gpus_per_model_worker)
    results = runner.map(functools.partial(generate_unit, task=task), done, on_result) if done else []
    return results + runner.map_model(stage, pending, on_result)


def _as_payload(unit: GenerationUnit) -> GenerationUnit:
    """A unit needs no CPU step before the model: its prompts are the payload."""
    return unit


class _GenerationProgress:
    def __init__(self, units: int, console: Console) -> None:
        self.prompts = self.generated = self.kept = 0
        self._progress = Progress(TextColumn("[bold]vocab"), BarColumn(), MofNCompleteColumn(), TextColumn("units"),
                                  TextColumn("{task.fields[detail]}"), TimeElapsedColumn(), console=console)
        self._task = self._progress.add_task("vocab", total=units, detail="")

    def __enter__(self) -> _GenerationProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def unit_done(self, stats: dict[str, Any]) -> None:
        self.prompts += stats["prompts"]
        self.generated += stats["generated"]
        self.kept += stats["kept"]
        detail = f"{self.prompts} prompts · {self.generated} answers generated · {self.kept} sentences kept"
        self._progress.update(self._task, advance=1, detail=detail)


def _work_root(output: str) -> str:
    return join(output, "work")


def _work_key(config: VocabConfig) -> str:
    """Part files are valid only for the generation and cleaning settings that made them
    (and the CLAP weights, when the CLAP check is on); how many workers made them does not matter."""
    llm = config.llm.model_dump(mode="json", exclude={"transformers": {"model_workers", "gpus_per_model_worker"}})
    check = config.cleaning.clap_check
    # Without the CLAP check the key is what it was before the check existed: unfinished work still resumes.
    material = [llm, config.cleaning.model_dump(mode="json", exclude={"clap_check"} if check is None else None), config.seed]
    if check is not None:
        material.append(clap_identity(check.clap).model_id)
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def _remove_work(output: str) -> None:
    fs, path = filesystem(_work_root(output))
    if fs.exists(path):
        fs.rm(path, recursive=True)


def file_sha256(url: str) -> str:
    fs, path = filesystem(url)
    digest = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
