"""`soundry label`: embed captions and clips with CLAP, search, count, draw, write labels.

Steps, each a set of units whose outputs are committed atomically and skipped when they
exist, so a killed run is finished by running the same command again:
1. captions not yet in the embedding cache are embedded (model stage);
2. each unit of clips is decoded (CPU), embedded unless cached, and searched for its
   top-K captions per vocabulary (model stage, the vocabularies on the model's device);
3. the global caption frequency is summed over every unit's counts (the one global step);
4. each unit draws its frequency-balanced labels and builds its label rows (map);
5. the label counts are summed for the summary, the plot and caption_frequency.parquet;
   manifest.json is written last.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pyarrow as pa
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from curation.core.lease import OutputLease
from curation.core.storage import (
    atomic_local_file,
    exists,
    filesystem,
    join,
    list_files,
    read_json,
    write_json_atomic,
    write_table_atomic,
)
from labeling.clap.backend import clap_identity
from labeling.clap.embedding_cache import EmbeddingCache
from labeling.labels.assemble import AssembleSettings, assemble_unit, frequency_digest
from labeling.labels.config import LabelConfig
from labeling.labels.quality.report import check_truth
from labeling.labels.score import (
    AudioScorer,
    CaptionUnit,
    ModelSettings,
    ScoreSettings,
    TextEmbedder,
    prepare_audio,
    work_part,
)
from labeling.labels.stats import FREQUENCY_SCHEMA, distribution_stats, plot_caption_frequency
from labeling.labels.table import CLIP_EMBEDDINGS_DIR, LABELS_DIR, MANIFEST
from labeling.labels.units import ClipTable, LabelUnit, plan_units
from labeling.music.join import analysis_run
from labeling.vocab.table import Vocabulary, read_vocabularies
from orchestration.configs.jobs import LabelJob
from orchestration.configs.resolve import ConfigError
from orchestration.engines.base import ModelStage
from orchestration.engines.registry import make_runner, worker_count
from orchestration.jobs.label_quality import label_quality
from orchestration.jobs.lease import output_lease

PLOT = "caption_frequency.png"
# Where units write their parts (part-<unit>.parquet).
UNIT_FOLDERS = (LABELS_DIR, CLIP_EMBEDDINGS_DIR, "work/topk", "work/topk_counts", "work/label_counts")
# What the units' workers import before their first unit (pyarrow imports pandas at its first
# table conversion), imported while the engine starts.
WORKER_IMPORTS = ("labeling.labels.score", "labeling.labels.assemble", "pandas")


def label(job: LabelJob, console: Console | None = None) -> dict[str, Any]:
    """Run (or resume) a labeling job; returns the summary also written to summary.json."""
    console = console or Console(stderr=True)
    config = job.stage_config()
    with output_lease(config.output, "soundry label", console) as lease:
        return _label(job, config, lease, console)


def _label(job: LabelJob, config: LabelConfig, lease: OutputLease, console: Console) -> dict[str, Any]:
    phases: dict[str, float] = {}
    started = time.perf_counter()
    with _phase(phases, "plan_s"):
        identity = clap_identity(config.clap)
        vocabularies = read_vocabularies(config.vocab, config.vocabularies)
        table, units = plan_units(config.clips, config.clips_per_unit)
        label_run = _label_run(config, identity.model_id, vocabularies, table)
        if config.truth:  # a mistake in it stops the run now, not after the labels
            check_truth(config, vocabularies)
    console.print(f"CLAP: {identity.description}", style="bold red" if identity.random_weights else "bold")
    if _claim_output(config, label_run):
        console.print(f"{config.output} is complete (label run {label_run}); nothing to do")
        summary = read_json(join(config.output, "summary.json"))
        if config.truth:  # the labels are done; the report against this truth may not be
            summary["quality"] = label_quality(config, identity, vocabularies, console)
            write_json_atomic(join(config.output, "summary.json"), summary)
        return summary
    lease.remove_stale_temporaries()
    _remove_other_units(config.output, units)
    cache = EmbeddingCache(config.cache_root(), identity)
    cache.claim()
    model = ModelSettings(config.clap, identity, config.cache_root())
    stage = functools.partial(ModelStage, workers=config.model_workers, num_gpus=config.gpus_per_model_worker)
    with _phase(phases, "engine_start_s"):
        runner = make_runner(job.runner, WORKER_IMPORTS)
    stats: dict[str, list[dict[str, Any]]] = {}
    try:
        with LabelProgress(console) as progress:
            with _phase(phases, "captions_s"):
                captions = _caption_units(cache, vocabularies, config.captions_per_unit)
                stats["captions"] = runner.map_model(
                    stage(prepare=_as_payload, load=functools.partial(TextEmbedder, model)),
                    captions,
                    progress.phase("embed captions", len(captions)),
                )
                matrices = {
                    name: cache.write_vocab_matrix(name, v.version, v.table["caption_id"].to_pylist())
                    for name, v in vocabularies.items()
                }
            with _phase(phases, "clips_s"):
                score = ScoreSettings(
                    model,
                    config.output,
                    matrices,
                    config.topk.k,
                    config.topk.min_similarity,
                    config.topk.clip_batch,
                    config.topk.caption_chunk,
                    config.audio.min_last_window_s,
                )
                stats["clips"] = runner.map_model(
                    stage(
                        prepare=functools.partial(prepare_audio, settings=score),
                        load=functools.partial(AudioScorer, score),
                    ),
                    units,
                    progress.phase("embed + top-K", len(units)),
                )
            with _phase(phases, "count_s"):
                frequency_url = join(config.output, "work", "topk_frequency.parquet")
                frequency = runner.sum_by_key(
                    [work_part(config.output, "topk_counts", u.id) for u in units], ["vocab", "caption_id"], "count"
                )
                write_table_atomic(frequency_url, frequency)
            with _phase(phases, "assemble_s"):
                assemble = AssembleSettings(
                    config.output,
                    config.vocab,
                    tuple((name, vocabularies[name].version) for name in sorted(vocabularies)),
                    frequency_url,
                    frequency_digest(frequency),
                    label_run,
                    config.balance,
                    config.prompts,
                    config.music,
                )
                stats["labels"] = runner.map(
                    functools.partial(assemble_unit, settings=assemble),
                    units,
                    progress.phase("draw labels", len(units)),
                )
                selections = runner.sum_by_key(
                    [work_part(config.output, "label_counts", u.id) for u in units],
                    ["vocab", "caption_id", "selection"],
                    "count",
                )
    finally:
        with _phase(phases, "engine_stop_s"):
            runner.close()
    with _phase(phases, "summary_s"):
        frequencies = _caption_frequency(vocabularies, frequency, selections)
        write_table_atomic(join(config.output, "caption_frequency.parquet"), frequencies)
        sizes = {name: v.table.num_rows for name, v in vocabularies.items()}
        with atomic_local_file(join(config.output, PLOT), suffix=".png") as path:
            plot_caption_frequency(frequencies, sizes, path)
    summary = _summary(
        config,
        job,
        identity.to_dict(),
        label_run,
        vocabularies,
        table,
        units,
        stats,
        frequencies,
        phases,
        time.perf_counter() - started,
    )
    if config.truth:
        with _phase(phases, "quality_s"):
            summary["quality"] = label_quality(config, identity, vocabularies, console)
    lease.check()
    write_json_atomic(join(config.output, "summary.json"), summary)
    # Written last: its presence says the label folder is complete.
    write_json_atomic(
        join(config.output, MANIFEST), _manifest(config, identity.to_dict(), label_run, vocabularies, table, summary)
    )
    return summary


class LabelProgress:
    """One progress bar per step, advanced as the step's units finish."""

    def __init__(self, console: Console) -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description:<15}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=console,
        )

    def __enter__(self) -> LabelProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def phase(self, name: str, total: int) -> Callable[[dict[str, Any]], None]:
        task = self._progress.add_task(name, total=total, detail="")
        done = {"clips": 0, "captions": 0}

        def advance(result: dict[str, Any]) -> None:
            for key in done:
                done[key] += result.get(key, 0)
            detail = " · ".join(f"{n} {key}" for key, n in done.items() if n)
            self._progress.update(task, advance=1, detail=detail)

        return advance


@contextlib.contextmanager
def _phase(phases: dict[str, float], name: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        phases[name] = round(time.perf_counter() - started, 3)


def _as_payload(unit: CaptionUnit) -> CaptionUnit:
    """Captions need no CPU step: the unit is the model's payload."""
    return unit


def _label_run(config: LabelConfig, model_id: str, vocabularies: dict[str, Vocabulary], table: ClipTable) -> str:
    inputs = {
        "config": config.label_run_fields(),
        "clap": model_id,
        "clip_table": table.digest,
        "vocabularies": {name: v.version for name, v in sorted(vocabularies.items())},
    }
    if config.music:
        inputs["analysis"] = analysis_run(config.music.analysis, table.digest)
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def _claim_output(config: LabelConfig, label_run: str) -> bool:
    """Refuse to mix two label runs in one folder; True when this run is already complete."""
    url = join(config.output, "label_run.json")
    if exists(url):
        found = read_json(url)["label_run"]
        if found != label_run:
            raise ConfigError(
                f"output {config.output} holds labels of another label run ({found}; this configuration "
                f"and these inputs make {label_run}); choose a new output folder or delete this one"
            )
        return exists(join(config.output, MANIFEST))
    write_json_atomic(url, {"label_run": label_run})
    return False


def _remove_other_units(output: str, units: list[LabelUnit]) -> None:
    """Delete the parts of units this plan does not hold: what a run killed under another
    clips_per_unit left. Readers take every part of labels/ and clip_embeddings/, and no clip may
    be there twice (unit ids name their content, so a kept part is one of this plan's units)."""
    planned = {f"part-{unit.id}.parquet" for unit in units}
    for folder in UNIT_FOLDERS:
        for url in list_files(join(output, folder), ".parquet"):
            if url.rsplit("/", 1)[-1] not in planned:
                fs, path = filesystem(url)
                fs.rm(path)


def _caption_units(cache: EmbeddingCache, vocabularies: dict[str, Vocabulary], size: int) -> list[CaptionUnit]:
    """The captions the cache lacks, in units of similar length (short padding in a batch)."""
    cached = cache.cached_caption_ids()
    texts: dict[str, str] = {}
    for name in sorted(vocabularies):
        table = vocabularies[name].table
        for cid, text in zip(table["caption_id"].to_pylist(), table["text"].to_pylist(), strict=True):
            if cid not in cached:
                texts.setdefault(cid, text)  # one caption_id, one text: the first vocabulary's by name
    ordered = sorted(texts.items(), key=lambda item: (len(item[1]), item[0]))
    return [CaptionUnit(tuple(ordered[i : i + size])) for i in range(0, len(ordered), size)]


def _caption_frequency(vocabularies: dict[str, Vocabulary], frequency: pa.Table, selections: pa.Table) -> pa.Table:
    counts: dict[tuple[str, str], dict[str, int]] = {}
    for vocab, cid, n in zip(*(frequency[c].to_pylist() for c in ("vocab", "caption_id", "count")), strict=True):
        counts.setdefault((vocab, cid), {})["topk_count"] = n
    for vocab, cid, selection, n in zip(
        *(selections[c].to_pylist() for c in ("vocab", "caption_id", "selection", "count")), strict=True
    ):
        counts.setdefault((vocab, cid), {})[f"{selection}_count"] = n
    texts = {
        (name, cid): text
        for name, v in vocabularies.items()
        for cid, text in zip(v.table["caption_id"].to_pylist(), v.table["text"].to_pylist(), strict=True)
    }
    rows = [
        {
            "vocab": vocab,
            "caption_id": cid,
            "text": texts.get((vocab, cid)),
            "topk_count": c.get("topk_count", 0),
            "plain_count": c.get("plain_count", 0),
            "balanced_count": c.get("balanced_count", 0),
        }
        for (vocab, cid), c in sorted(counts.items())
    ]
    return pa.Table.from_pylist(rows, schema=FREQUENCY_SCHEMA)


def _summary(
    config: LabelConfig,
    job: LabelJob,
    clap: dict[str, Any],
    label_run: str,
    vocabularies: dict[str, Vocabulary],
    table: ClipTable,
    units: list,
    stats: dict[str, list[dict[str, Any]]],
    frequencies: pa.Table,
    phases: dict[str, float],
    wall_s: float,
) -> dict[str, Any]:
    data = frequencies.to_pydict()
    per_vocab = {}
    for name, vocabulary in sorted(vocabularies.items()):
        rows = [i for i, v in enumerate(data["vocab"]) if v == name]
        column = {
            c: np.array([data[c][i] for i in rows], dtype=np.int64)
            for c in ("topk_count", "plain_count", "balanced_count")
        }
        size = vocabulary.table.num_rows
        per_vocab[name] = {
            "version": vocabulary.version,
            "captions": size,
            "labels_per_clip": config.balance.labels_for(name),
            "in_some_top_k": int((column["topk_count"] > 0).sum()),
            "plain": distribution_stats(column["plain_count"], size),
            "balanced": distribution_stats(column["balanced_count"], size),
        }
    clips = stats["clips"]
    return {
        "output": config.output,
        "label_run": label_run,
        "runner": job.runner.name,
        "workers": worker_count(job.runner),
        "clap": clap,
        "clip_table": table.folder,
        "clips_labeled": table.clips,
        "units": len(units),
        "units_resumed": sum(1 for s in clips if s.get("resumed")),
        "units_audio_cached": sum(1 for s in clips if s.get("cached")),
        "windows_embedded": sum(s.get("windows", 0) for s in clips),
        "captions_embedded": sum(s["captions"] for s in stats["captions"] if not s.get("resumed")),
        "vocabularies": per_vocab,
        "plot": PLOT,
        "wall_s": round(wall_s, 3),
        "phases_s": phases,
    }


def _manifest(
    config: LabelConfig,
    clap: dict[str, Any],
    label_run: str,
    vocabularies: dict[str, Vocabulary],
    table: ClipTable,
    summary: dict[str, Any],
) -> dict[str, Any]:
    return {
        "label_run": label_run,
        "clap": {k: clap[k] for k in ("backend", "model_id", "checkpoint_sha256", "random_weights", "description")},
        "vocabularies": {name: v.version for name, v in sorted(vocabularies.items())},
        "vocab_folder": config.vocab,
        "clip_table": {"folder": table.folder, "digest": table.digest, "parts": len(table.parts), "clips": table.clips},
        "config": {**config.model_dump(mode="json"), "cache": config.cache_root()},
        "clips_labeled": summary["clips_labeled"],
        "files": {
            "labels": "labels/part-*.parquet",
            "clip_embeddings": "clip_embeddings/part-*.parquet",
            "caption_frequency": "caption_frequency.parquet",
            "summary": "summary.json",
            "plot": PLOT,
        },
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
