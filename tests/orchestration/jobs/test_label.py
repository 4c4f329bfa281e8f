"""`soundry label` end to end on the local engine: the label folder's contract, resuming,
the embedding cache, determinism across partitionings, and mistakes named in one line."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pyarrow.parquet as pq
import pytest
from label_inputs import CLIPS, LONG_FORM, TAGS, label_job_settings, write_clip_table, write_vocabularies
from rich.console import Console

from labeling.labels.table import EMBEDDING_SCHEMA, LABEL_SCHEMA, labels_from_table
from labeling.vocab.table import caption_id
from orchestration.cli.main import main
from orchestration.configs.jobs import LabelJob
from orchestration.configs.resolve import ConfigError
from orchestration.jobs.label import label

QUIET = Console(file=open("/dev/null", "w"))


def run(settings: dict) -> dict:
    return label(LabelJob.model_validate(settings), QUIET)


def rows(folder, table: str = "labels") -> list[dict]:
    return sorted(pq.read_table(folder / table).to_pylist(), key=lambda r: r.get("clip_id") or r.get("key"))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("label-inputs")
    return {"clips": write_clip_table(root / "curated"), "vocab": write_vocabularies(root / "vocab"), "root": root}


@pytest.fixture(scope="module")
def labeled(inputs):
    output = inputs["root"] / "runs" / "labels"
    summary = run(label_job_settings(inputs["clips"], inputs["vocab"], output))
    return output, summary


def test_the_label_folder_holds_the_contract(labeled):
    output, summary = labeled
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["label_run"] == summary["label_run"]
    assert manifest["clap"]["random_weights"] and manifest["clap"]["checkpoint_sha256"] is None
    assert set(manifest["vocabularies"]) == {"llm_long", "tags"} and manifest["clip_table"]["clips"] == len(CLIPS)
    assert manifest["config"]["cache"].endswith("runs/clap_cache") and "created" in manifest
    labels = labels_from_table(pq.read_table(output / "labels", schema=LABEL_SCHEMA))
    assert len(labels) == len(CLIPS) and summary["clips_labeled"] == len(CLIPS)
    for row in labels:
        by_vocab = {v: [c for c in row.labels if c.vocab == v] for v in ("llm_long", "tags")}
        assert len(by_vocab["llm_long"]) == 2 and len(by_vocab["tags"]) == 3
        assert set(row.labels) <= set(row.candidates) and len(row.candidates) == 8  # k = 4 per vocabulary
        for v in ("llm_long", "tags"):
            scores = [c.score for c in row.candidates if c.vocab == v]
            assert scores == sorted(scores, reverse=True)
        assert row.prompt_candidates[:2] == [c.text for c in by_vocab["llm_long"]]
        assert all(c.aspect is None for c in by_vocab["llm_long"]) and all(c.aspect for c in by_vocab["tags"])
        assert {a for a in row.structured} <= {a for _, a in TAGS} | {"genre", "artist", "title"}
        assert row.label_run == summary["label_run"]
    by_title = {r.title: r for r in labels}
    static = by_title["Static"]  # genre tag "Rock; Metal": two values, "rock" once even when also a drawn tag
    assert {g.lower() for g in static.structured["genre"]} >= {"rock", "metal"} and static.artist == "Noise Unit"
    assert len(static.structured["genre"]) == len({g.lower() for g in static.structured["genre"]})
    embeddings = pq.read_table(output / "clip_embeddings", schema=EMBEDDING_SCHEMA).to_pydict()
    vectors = np.array(embeddings["embedding"])
    assert len(embeddings["key"]) == len(CLIPS) and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    frequency = pq.read_table(output / "caption_frequency.parquet").to_pylist()
    assert sum(r["topk_count"] for r in frequency) == len(CLIPS) * 8
    assert sum(r["balanced_count"] for r in frequency) == sum(r["plain_count"] for r in frequency) == len(CLIPS) * 5
    tags = summary["vocabularies"]["tags"]
    assert tags["captions"] == len(TAGS) and tags["balanced"]["labels"] == len(CLIPS) * 3
    assert (output / "caption_frequency.png").stat().st_size > 1000
    assert summary["windows_embedded"] == 6 and summary["captions_embedded"] == len(TAGS) + len(LONG_FORM)


def test_a_finished_run_is_not_redone_and_a_lost_unit_is(labeled, inputs):
    output, summary = labeled
    before = rows(output)
    assert run(label_job_settings(inputs["clips"], inputs["vocab"], output)) == summary
    (output / "manifest.json").unlink()
    lost = sorted((output / "labels").iterdir())[0]
    lost.unlink()
    again = run(label_job_settings(inputs["clips"], inputs["vocab"], output))
    assert again["units_resumed"] == again["units"] and again["windows_embedded"] == 0  # top-K kept, labels redrawn
    assert rows(output) == before and lost.exists()


def test_other_units_and_a_new_vocabulary_use_the_cache(labeled, inputs):
    output, _ = labeled
    split = inputs["root"] / "runs" / "one-clip-units"
    summary = run(label_job_settings(inputs["clips"], inputs["vocab"], split, clips_per_unit=1))
    assert summary["units"] == len(CLIPS) and summary["captions_embedded"] == 0
    # Units of another size embed their clips again, and come to the same vectors and labels.
    assert rows(split) == rows(output) and rows(split, "clip_embeddings") == rows(output, "clip_embeddings")
    vocab = write_vocabularies(inputs["root"] / "vocab-2", tags=[*TAGS, ("harp", "instrument")])
    grown = run(label_job_settings(inputs["clips"], vocab, inputs["root"] / "runs" / "grown"))
    assert grown["captions_embedded"] == 1 and grown["windows_embedded"] == 0
    assert grown["units_audio_cached"] == grown["units"]


def test_a_similarity_threshold_shortens_the_lists(labeled, inputs):
    output, _ = labeled
    scores = sorted(c["score"] for r in rows(output) for c in r["candidates"])
    threshold = scores[len(scores) // 2]
    summary = run(
        label_job_settings(
            inputs["clips"],
            inputs["vocab"],
            inputs["root"] / "runs" / "threshold",
            topk={"k": 4, "min_similarity": threshold},
        )
    )
    assert summary["windows_embedded"] == 0  # the same units: their audio comes from the cache
    labels = labels_from_table(pq.read_table(inputs["root"] / "runs" / "threshold" / "labels"))
    kept = [c for r in labels for c in r.candidates]
    assert kept and all(c.score >= threshold for c in kept) and len(kept) < len(scores)
    for row in labels:
        for vocab, wanted in (("llm_long", 2), ("tags", 3)):
            available = sum(c.vocab == vocab for c in row.candidates)
            assert sum(c.vocab == vocab for c in row.labels) == min(wanted, available)


def test_another_run_in_the_same_folder_is_refused(labeled, inputs):
    output, _ = labeled
    with pytest.raises(ConfigError, match="holds labels of another label run"):
        run(label_job_settings(inputs["clips"], inputs["vocab"], output, balance={"seed": 5}))


@pytest.mark.parametrize(
    "args,message",
    [
        (["--clap.backend", "random", "--clips", "{root}/nowhere"], "no clip table"),
        (
            ["--clap.backend", "random", "--vocab", "{root}/nowhere"],
            "build the vocabularies with `soundry vocab` first",
        ),
        (["--clap.backend", "laion"], "backend laion needs clap.checkpoint and clap.tokenizer"),
        (["--clap.backend", "random", "--topk.k", "2"], "draws 3 labels from llm_long but topk.k keeps only 2"),
        ([], "clap: required"),
    ],
)
def test_mistakes_are_one_line_errors(inputs, capsys, args, message):
    argv = ["label", "--clips", inputs["clips"], "--vocab", inputs["vocab"], "--output", str(inputs["root"] / "err")]
    code = main(argv + [a.format(root=inputs["root"]) for a in args])
    err = capsys.readouterr().err
    assert code == 2 and message in " ".join(err.split()) and "Traceback" not in err


def test_an_unfinished_clip_table_is_refused(inputs, tmp_path):
    shutil.copytree(inputs["clips"], tmp_path / "curated")
    (tmp_path / "curated" / "summary.json").unlink()
    with pytest.raises(ValueError, match="curation has not finished"):
        run(label_job_settings(str(tmp_path / "curated"), inputs["vocab"], tmp_path / "labels"))


@pytest.mark.slow
def test_kill_9_then_resume_with_other_unit_size_counts_every_clip_once(labeled, inputs, tmp_path):
    """A run in units of 4 killed after its first top-K part, resumed in units of 2 (the
    `labeled` run's size): the labels, embeddings and counts of an uninterrupted run. (The
    runs share the reference's embedding cache: units of 2 find their audio there.)"""
    reference, _ = labeled
    output = inputs["root"] / "runs" / "killed"
    job = tmp_path / "job.yaml"
    job.write_text(json.dumps(label_job_settings(inputs["clips"], inputs["vocab"], output)))  # JSON is YAML

    def soundry(clips_per_unit: int) -> subprocess.Popen:
        argv = [sys.executable, "-m", "orchestration.cli", "label", "-c", str(job), "--clips_per_unit"]
        return subprocess.Popen(
            [*argv, str(clips_per_unit)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True
        )

    process = soundry(4)
    deadline = time.time() + 300
    while not list((output / "work" / "topk").glob("part-*.parquet")):
        assert process.poll() is None, process.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    assert not (output / "manifest.json").exists()
    again = soundry(2)
    assert again.wait(timeout=300) == 0, again.stderr.read().decode()
    assert rows(output) == rows(reference)
    assert rows(output, "clip_embeddings") == rows(reference, "clip_embeddings")
    frequency = pq.read_table(output / "caption_frequency.parquet").to_pylist()
    assert frequency == pq.read_table(reference / "caption_frequency.parquet").to_pylist()
    assert sum(r["topk_count"] for r in frequency) == len(CLIPS) * 8


def test_a_vocabulary_rebuilt_in_place_is_read_anew_in_the_same_process(inputs, tmp_path):
    """Workers keep vocabularies loaded between units; a second run in this process whose
    vocabulary folder and output paths are the first run's, but whose tags are all other ones,
    labels with the new tags."""
    vocab = tmp_path / "vocab"
    output = tmp_path / "runs" / "labels"
    settings = label_job_settings(
        inputs["clips"], str(vocab), output, cache=str(inputs["root"] / "runs" / "clap_cache")
    )
    write_vocabularies(vocab)
    run(settings)
    shutil.rmtree(vocab)
    shutil.rmtree(output)
    renamed = {caption_id(f"{text} music"): f"{text} music" for text, _ in TAGS}
    write_vocabularies(vocab, tags=[(text, aspect) for (_, aspect), text in zip(TAGS, renamed.values(), strict=True)])
    run(settings)
    tags = [(c["caption_id"], c["text"]) for r in rows(output) for c in r["candidates"] if c["vocab"] == "tags"]
    assert len(tags) == len(CLIPS) * 4 and all(renamed.get(cid) == text for cid, text in tags)
    frequency = pq.read_table(output / "caption_frequency.parquet").to_pylist()
    assert {r["caption_id"] for r in frequency if r["vocab"] == "tags"} <= set(renamed)
