"""Long-form generation in work units: prompts in, answers (cached), sentences cleaned, one part file out per unit.

Two ways to run units, both writing the same part files:
- `generate_unit`, mapped over units by an engine's plain workers: a worker process loads
  its backend on first use and keeps it (an endpoint's client; the template backend);
- `UnitGenerator`, an engine's model worker (a local model: seconds to load, GPU memory):
  built once per worker, it loads the model and then writes every unit it is handed.
Each answer is put in the cache the moment it arrives, and each unit's part file is written
atomically, so a crashed run resumes with nothing paid twice: finished units are skipped
whole, and a half-finished one asks only for the answers it is missing. The part files are
then read in unit order for the corpus-wide rules.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import json
import os
import socket
import time
import uuid
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from curation.core.storage import atomic_local_file, exists, filesystem, join, read_table
from curation.core.strict_model import identity
from labeling.clap.backend import clap_identity
from labeling.vocab.cleaning.corpus_rules import Deduplicator
from labeling.vocab.cleaning.music_check import BINS, RULE, MusicSimilarityCheck, music_check
from labeling.vocab.cleaning.rules import SentenceRules
from labeling.vocab.cleaning.sentences import split_sentences
from labeling.vocab.config import CleaningConfig, LLMConfig, VocabConfig
from labeling.vocab.llm.backend import LLMBackend, Prompt, make_backend, source_of
from labeling.vocab.llm.cache import AnswerCache, answer_key
from labeling.vocab.writer import VocabularyWriter

PART_SCHEMA = pa.schema(
    [
        pa.field("text", pa.string(), nullable=False),
        pa.field("answer", pa.string(), nullable=False),  # the answer's cache key
        pa.field("origin", pa.string(), nullable=False),  # corpus:<folder>, songs:<file>, aspects
        pa.field("sentence", pa.int32(), nullable=False),  # position in the answer
    ]
)
_STATS_KEY = b"soundry_unit_stats"


@dataclasses.dataclass(frozen=True)
class GenerationUnit:
    index: int
    prompts: tuple[Prompt, ...]

    @property
    def digest(self) -> str:
        material = json.dumps([(p.text, sorted(p.facts.items()), p.sentences, p.names, p.origin) for p in self.prompts])
        return hashlib.sha256(material.encode()).hexdigest()[:12]


@dataclasses.dataclass(frozen=True)
class GenerationTask:
    """What every unit of a run shares."""

    llm: LLMConfig
    cleaning: CleaningConfig
    seed: int
    cache: str | None  # None: answers are not cached (the template backend costs nothing)
    work: str  # folder of the part files


def generation_task(config: VocabConfig) -> GenerationTask:
    """The run's task: its answer cache (none for the template backend) and the folder of its
    part files, which is named for the settings that made them."""
    return GenerationTask(
        llm=config.llm,
        cleaning=config.cleaning,
        seed=config.seed,
        cache=None if config.llm.backend == "template" else (config.llm.cache or join(config.output, "llm_cache")),
        work=join(_work_root(config.output), _work_key(config)),
    )


def remove_work(output: str) -> None:
    """Every run's part files, gone once the vocabularies are published."""
    fs, path = filesystem(_work_root(output))
    if fs.exists(path):
        fs.rm(path, recursive=True)


def part_url(task: GenerationTask, unit: GenerationUnit) -> str:
    # The prompts' digest is in the name: a changed corpus gives unit i other prompts.
    return join(task.work, f"part-{unit.index:06d}-{unit.digest}.parquet")


_BACKENDS: dict[str, LLMBackend] = {}


def cached_backend(llm: LLMConfig, seed: int) -> LLMBackend:
    """This process's backend for the config, loaded on first use."""
    key = json.dumps([llm.model_dump(mode="json"), seed], sort_keys=True)
    if key not in _BACKENDS:
        _BACKENDS[key] = make_backend(llm, seed)
    return _BACKENDS[key]


def generate_unit(unit: GenerationUnit, task: GenerationTask) -> dict[str, Any]:
    url = part_url(task, unit)
    if exists(url):
        return {**read_unit_stats(url), "resumed": True}
    check = music_check(task.cleaning.clap_check) if task.cleaning.clap_check else None
    return write_unit(unit, task, cached_backend(task.llm, task.seed), check)


class UnitGenerator:
    """A model worker: loads the backend (and the CLAP check, when on) once, then writes
    every unit it is handed. Its results name the load, so a run can tell how many
    times the model was loaded."""

    def __init__(self, task: GenerationTask) -> None:
        started = time.perf_counter()
        self.task = task
        self.backend = make_backend(task.llm, task.seed)
        self.check = music_check(task.cleaning.clap_check) if task.cleaning.clap_check else None
        self.load = {
            "worker": f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}",
            "seconds": round(time.perf_counter() - started, 3),
        }

    def __call__(self, unit: GenerationUnit) -> dict[str, Any]:
        url = part_url(self.task, unit)
        if exists(url):  # written since the run was planned (another run sharing the output)
            return {**read_unit_stats(url), "resumed": True}
        return {**write_unit(unit, self.task, self.backend, self.check), "model_load": self.load}


def write_unit(
    unit: GenerationUnit, task: GenerationTask, backend: LLMBackend, check: MusicSimilarityCheck | None = None
) -> dict[str, Any]:
    """Answers (from the cache, else from `backend`) split and cleaned into the unit's part file; its stats."""
    keys = [answer_key(backend.identity, p) for p in unit.prompts]
    cache = AnswerCache(task.cache) if task.cache else None
    answers: list[str | None] = [cache.get(k) if cache else None for k in keys]
    missing = [i for i, answer in enumerate(answers) if answer is None]

    def keep(position: int, answer: str) -> None:
        index = missing[position]
        answers[index] = answer
        if cache is not None:
            cache.put(keys[index], backend.identity, unit.prompts[index], answer)

    if missing:
        backend.generate([unit.prompts[i] for i in missing], keep)
    rules = SentenceRules(task.cleaning)
    removed: collections.Counter[str] = collections.Counter()
    rows, sentences = [], 0
    for prompt, key, answer in zip(unit.prompts, keys, answers, strict=True):
        split = split_sentences(answer or "")
        if split.preambles:
            removed["chat_preamble"] += split.preambles
        sentences += len(split.sentences)
        for position, sentence in enumerate(split.sentences):
            reason = rules.check(sentence, prompt.names)
            if reason:
                removed[reason] += 1
            else:
                rows.append({"text": sentence, "answer": key, "origin": prompt.origin, "sentence": position})
    stats: dict[str, Any] = {}
    if check is not None:
        # The last rule, over the unit's survivors at once: the model embeds them in full batches.
        histogram = np.zeros(BINS, dtype=np.int64)
        passed = check.keep([row["text"] for row in rows], histogram)
        removed[RULE] += passed.count(False)
        rows = [row for row, ok in zip(rows, passed, strict=True) if ok]
        stats["clap_similarity"] = histogram.tolist()
    stats = {
        "unit": unit.index,
        "prompts": len(unit.prompts),
        "generated": len(missing),
        "cached": len(unit.prompts) - len(missing),
        "sentences": sentences,
        "kept": len(rows),
        "removed": {rule: n for rule, n in sorted(removed.items()) if n},
        **stats,
    }
    table = pa.Table.from_pylist(rows, schema=PART_SCHEMA)
    table = table.replace_schema_metadata({_STATS_KEY: json.dumps(stats).encode()})
    with atomic_local_file(part_url(task, unit), suffix=".parquet") as tmp:
        pq.write_table(table, tmp, compression="zstd")
    return {**stats, "resumed": False}


def read_unit_stats(url: str) -> dict[str, Any]:
    fs, path = filesystem(url)
    with fs.open(path, "rb") as f:
        return json.loads(pq.read_schema(f).metadata[_STATS_KEY])


def add_unit_sentences(
    task: GenerationTask,
    units: list[GenerationUnit],
    writer: VocabularyWriter,
    dedup: Deduplicator,
    removed: collections.Counter[str],
) -> None:
    """The units' sentences into the long-form vocabulary through the corpus-wide rules, in
    unit order, not completion order: the same sentences win every run."""
    source = source_of(task.llm)
    for unit in units:
        for row in read_table(part_url(task, unit)).to_pylist():
            reason = dedup.check(row["text"])
            if reason:
                removed[reason] += 1
            else:
                writer.add(
                    row["text"], source, {"answer": row["answer"], "origin": row["origin"], "sentence": row["sentence"]}
                )


def _work_root(output: str) -> str:
    return join(output, "work")


def _work_key(config: VocabConfig) -> str:
    """Part files are valid only for the generation and cleaning settings that made them
    (and the CLAP weights, when the CLAP check is on); how many workers made them, or how many
    requests were in flight, does not matter."""
    llm = identity(config.llm)
    check = config.cleaning.clap_check
    # Without the CLAP check the key is what it was before the check existed: unfinished work still resumes.
    material = [
        llm,
        config.cleaning.model_dump(mode="json", exclude={"clap_check"} if check is None else None),
        config.seed,
    ]
    if check is not None:
        material.append(clap_identity(check.clap).model_id)
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]
