"""`soundry vocab`: the vocabulary build's steps in order, its long-form units on an engine, progress and summary."""

from __future__ import annotations

import collections
import functools
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from curation.clip import clip_parts
from curation.core.lease import OutputLease
from curation.core.storage import list_files
from labeling.vocab.cleaning.corpus_rules import Deduplicator, EvalCaptions
from labeling.vocab.cleaning.music_check import BINS, similarity_quantiles
from labeling.vocab.config import VocabConfig
from labeling.vocab.generation import (
    GenerationTask,
    GenerationUnit,
    UnitGenerator,
    add_unit_sentences,
    generate_unit,
    generation_task,
    part_url,
    remove_work,
)
from labeling.vocab.inputs import (
    add_builtin_tags,
    evaluation_sources,
    rater_sentences,
    read_exclusions,
    song_prompts,
)
from labeling.vocab.llm.backend import Prompt, source_of
from labeling.vocab.prompts import combination_prompts
from labeling.vocab.tags import TagCollector
from labeling.vocab.writer import VocabularyWriter, write_manifest
from orchestration.configs.jobs import VocabJob
from orchestration.engines.base import ModelStage, Runner
from orchestration.engines.local_runner import LocalRunner
from orchestration.engines.registry import make_runner, worker_count
from orchestration.jobs.lease import output_lease

# What the generation workers import before their first unit (pyarrow imports pandas at its
# first table conversion), imported while the engine starts.
WORKER_IMPORTS = ("labeling.vocab.generation", "pandas")


def build_vocabularies(job: VocabJob, console: Console | None = None) -> dict[str, Any]:
    """Build the vocabularies `job` describes into job.output; returns the run's summary
    (also in manifest.json, except timings and engine).

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
    console = console or Console(stderr=True)
    config = job.stage_config()
    names = config.names
    for folder in config.corpus:
        clip_parts(folder)  # a wrong corpus folder is said before any work
    with output_lease(config.output, "soundry vocab", console) as lease:
        lease.remove_stale_temporaries()
        writers = {
            names.llm_long: VocabularyWriter(names.llm_long, "long_form"),
            names.rater_long: VocabularyWriter(names.rater_long, "long_form"),
            names.tags: VocabularyWriter(names.tags, "short_form"),
        }
        try:
            return _build(job, config, writers, lease, console)
        finally:
            for writer in writers.values():
                writer.discard()  # after publishing, nothing is left to discard


def _build(
    job: VocabJob, config: VocabConfig, writers: dict[str, VocabularyWriter], lease: OutputLease, console: Console
) -> dict[str, Any]:
    started = time.perf_counter()
    laps: dict[str, float] = {}
    names = config.names
    inputs: dict[str, Any] = {}

    eval_captions = read_exclusions(config, inputs)
    laps["exclusions_s"] = time.perf_counter() - started

    tags = TagCollector(writers[names.tags], config.cleaning, eval_captions)
    if config.builtin_tags:
        add_builtin_tags(tags, inputs)
    prompts, song_counts = song_prompts(config, tags, inputs)
    rater = rater_sentences(config, writers[names.rater_long], tags, eval_captions, inputs)
    mark = time.perf_counter()
    laps["tags_and_raters_s"] = mark - started - sum(laps.values())

    prompts.extend(combination_prompts(config.prompts, config.seed))
    llm = _generate(job, config, prompts, writers[names.llm_long], eval_captions, console)
    llm["songs"] = song_counts
    laps["generation_s"] = time.perf_counter() - mark

    lease.check()  # before the tables are published over an earlier build's
    vocabularies = {}
    for name, writer in writers.items():
        entry = writer.publish(config.output)
        if entry is not None:
            vocabularies[name] = entry
    cleaning = {names.llm_long: llm.pop("cleaning"), names.rater_long: rater, names.tags: tags.summary()}
    details = {
        "config": config.model_dump(mode="json"),
        "inputs": inputs,
        "evaluation_sources": evaluation_sources(config),
        "cleaning": cleaning,
        "llm": llm,
    }
    removed_files = write_manifest(config.output, vocabularies, details, list(writers))
    remove_work(config.output)
    laps["publish_s"] = time.perf_counter() - started - sum(laps.values())
    return {
        "output": config.output,
        "vocabularies": vocabularies,
        **details,
        "replaced_files": removed_files,
        "runner": job.runner.name if llm["engine"] else "in-process",
        "timings_s": laps,
        "wall_s": time.perf_counter() - started,
    }


def _generate(
    job: VocabJob,
    config: VocabConfig,
    prompts: list[Prompt],
    writer: VocabularyWriter,
    eval_captions: EvalCaptions,
    console: Console,
) -> dict[str, Any]:
    size = config.llm.prompts_per_unit
    units = [
        GenerationUnit(i, tuple(prompts[start : start + size])) for i, start in enumerate(range(0, len(prompts), size))
    ]
    task = generation_task(config)
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
    add_unit_sentences(task, units, writer, dedup, removed)
    cleaning = {
        "answers": len(prompts),
        "sentences": totals["sentences"],
        "removed": dict(sorted((k, v) for k, v in removed.items() if v)),
        "kept": writer.count,
    }
    if config.cleaning.clap_check is not None:
        cleaning["clap_similarity"] = similarity_quantiles(histogram)
    summary = {
        "backend": config.llm.backend,
        "source": source_of(config.llm),
        "engine": engine,
        "workers": worker_count(job.runner) if engine else 1,
        "prompts": len(prompts),
        "combinations": config.prompts.combinations,
        "units": len(units),
        "units_resumed": totals["resumed"],
        "answers_generated": totals["generated"],
        "answers_cached": totals["cached"],
        "cleaning": cleaning,
    }
    if config.llm.backend == "transformers":
        summary |= {"model_loads": len(loads), "model_load_s": round(sum(loads.values()), 3)}
    return summary


def _generate_on_model_workers(
    runner: Runner, task: GenerationTask, units: list[GenerationUnit], on_result: Callable[[dict[str, Any]], None]
) -> list[dict[str, Any]]:
    """A local model's units on the engine's model workers, each loading the model once
    (Ray: an actor per replica, with a GPU where the cluster has them). Units already
    written are read on the plain workers: a finished run loads no model."""
    written = {url.rstrip("/").rsplit("/", 1)[-1] for url in list_files(task.work, ".parquet")}
    finished = {u.index for u in units if part_url(task, u).rsplit("/", 1)[-1] in written}
    done = [u for u in units if u.index in finished]
    pending = [u for u in units if u.index not in finished]
    options = task.llm.transformers
    stage = ModelStage(
        prepare=_as_payload,
        load=functools.partial(UnitGenerator, task),
        workers=options.model_workers,
        num_gpus=options.gpus_per_model_worker,
    )
    results = runner.map(functools.partial(generate_unit, task=task), done, on_result) if done else []
    return results + runner.map_model(stage, pending, on_result)


def _as_payload(unit: GenerationUnit) -> GenerationUnit:
    """A unit needs no CPU step before the model: its prompts are the payload."""
    return unit


class _GenerationProgress:
    def __init__(self, units: int, console: Console) -> None:
        self.prompts = self.generated = self.kept = 0
        self._progress = Progress(
            TextColumn("[bold]vocab"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("units"),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
        )
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
