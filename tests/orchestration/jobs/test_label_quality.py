"""`soundry label --truth`: the label-quality report end to end on a tiny labeled set (random CLAP),
and mistakes in the labeled set named in one line."""

from __future__ import annotations

import ast
import csv
import io
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from label_inputs import label_job_settings, write_clip_table, write_vocabularies
from rich.console import Console

from curation.demo.corpus import demo_caption
from curation.demo.truth import write_demo_truth
from labeling.labels.config import QualitySettings
from labeling.labels.quality.truth import match_clips, read_truth
from labeling.labels.table import LABEL_SCHEMA, labels_from_table
from labeling.vocab.table import caption_id
from orchestration.cli.main import main
from orchestration.configs.jobs import CurateJob
from orchestration.jobs.curate import curate

# MusicCaps' layout: ytid, caption, aspect_list. The clip table's sources are /corpus/<index>.flac, so
# ytid matches the source file's stem. "saxophone" is in no vocabulary; ytid 99 names no clip.
TRUTH = """ytid,caption,aspect_list
0,A calm jazz trio with soft brushed drums.,"['jazz', 'calm', 'drums', 'saxophone']"
1,Distorted guitars and pounding drums in a loud rock song.,"['rock', 'guitar', 'energetic']"
2,A slow ambient drone.,"['ambient', 'calm']"
3,A slow ambient drone with evolving pads.,"['ambient', 'synthesizer', 'dark']"
4,Bright electronic beat with a driving kick.,"['electronic', 'drums', 'fast']"
99,Nothing here.,['jazz']
"""
QUALITY = ["--quality.id_column", "ytid", "--quality.clip_column", "source_stem"]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("label-quality")
    truth = root / "truth.csv"
    truth.write_text(TRUTH)
    job = root / "job.json"
    settings = label_job_settings(
        write_clip_table(root / "curated"), write_vocabularies(root / "vocab"), root / "runs" / "labels"
    )
    job.write_text(json.dumps(settings))  # JSON is YAML
    return {"root": root, "truth": str(truth), "job": str(job), "output": root / "runs" / "labels"}


@pytest.fixture(scope="module")
def scored(inputs):
    code = main(["label", "--config", inputs["job"], "--truth", inputs["truth"], *QUALITY])
    assert code == 0
    return json.loads((inputs["output"] / "label_quality.json").read_text())


def figures(report: dict) -> list[float]:
    found = []
    for value in report.values():
        if isinstance(value, dict):
            found += figures(value)
        elif isinstance(value, float):
            found.append(value)
    return found


def test_the_report_scores_every_measure_beside_its_chance(scored, inputs):
    assert scored["random_weights"] and "near its chance level" in scored["note"]
    assert scored["clips"] == 5 and scored["items"] == 5 and scored["matched_by"] == "ytid = clip table's source_stem"
    tags = scored["tags"]
    assert tags["clips"] == 5 and tags["known_tags_outside_vocabulary"] == 1  # saxophone
    assert tags["tags_scored"] == 11  # the matched clips' known tags the vocabulary holds: all of TAGS but piano
    for figure in (tags["top1_accuracy"], tags["mAP"], scored["retrieval"]["recall@1"]):
        assert 0 <= figure["value"] <= 1 and 0 < figure["chance"] < 1
    # 5 clips: the 10 best always hold the caption's own clip.
    assert scored["retrieval"]["recall@10"] == {"value": 1.0, "chance": 1.0} and scored["retrieval"]["queries"] == 5
    assert all(math.isfinite(f) for f in figures(scored))
    summary = json.loads((inputs["output"] / "summary.json").read_text())
    assert summary["quality"] == scored


def test_drawn_label_precision_is_what_the_label_table_holds(scored, inputs):
    """Plain precision recomputed from the label rows: the first K' tag candidates of each clip
    that are among its source's known tags."""
    known = {
        f"/corpus/{row['ytid']}.flac": {caption_id(t) for t in ast.literal_eval(row["aspect_list"])}
        for row in csv.DictReader(io.StringIO(TRUTH))
    }
    clips = pq.read_table(inputs["root"] / "curated" / "clips", columns=["clip_id", "source_uri"]).to_pydict()
    sources = dict(zip(clips["clip_id"], clips["source_uri"], strict=True))
    rows = labels_from_table(pq.read_table(inputs["output"] / "labels", schema=LABEL_SCHEMA))
    plain = [
        c.caption_id in known[sources[r.clip_id]]
        for r in rows
        for c in [c for c in r.candidates if c.vocab == "tags"][:3]
    ]
    balanced = [c.caption_id in known[sources[r.clip_id]] for r in rows for c in r.labels if c.vocab == "tags"]
    drawn = scored["drawn_labels"]
    assert drawn["plain"]["labels"] == len(plain) == 15 and drawn["balanced"]["labels"] == len(balanced) == 15
    assert drawn["plain"]["precision"] == pytest.approx(sum(plain) / 15, abs=1e-6)
    assert drawn["balanced"]["precision"] == pytest.approx(sum(balanced) / 15, abs=1e-6)
    assert drawn["top_k"]["labels"] == 20 and drawn["chance"] == pytest.approx((3 + 3 + 2 + 3 + 3) / 12 / 5, abs=1e-6)


def test_zero_shot_and_retrieval_figures_recomputed_from_the_embeddings(scored, inputs):
    """Top-1 tag accuracy and recall@1 worked out here from the stored clip, tag and caption vectors."""
    truth = {row["ytid"]: row for row in csv.DictReader(io.StringIO(TRUTH))}
    cache = next((inputs["root"] / "runs" / "clap_cache").glob("*/vocab"))
    clips = pq.read_table(inputs["root"] / "curated" / "clips", columns=["clip_id", "source_uri"]).to_pydict()
    ytid = {c: Path(u).stem for c, u in zip(clips["clip_id"], clips["source_uri"], strict=True)}
    audio = pq.read_table(inputs["output"] / "clip_embeddings").to_pydict()
    audio = dict(zip(audio["key"], np.array(audio["embedding"]), strict=True))
    tags = pq.read_table(next(cache.glob("tags-*.parquet"))).to_pydict()
    known = {y: {caption_id(t) for t in ast.literal_eval(row["aspect_list"])} for y, row in truth.items()}
    scored_tags = [i for i, c in enumerate(tags["key"]) if any(c in known[y] for y in ytid.values())]
    vectors = np.array(tags["embedding"])[scored_tags]
    right = [tags["key"][scored_tags[int(np.argmax(vectors @ audio[c]))]] in known[ytid[c]] for c in sorted(audio)]
    assert scored["tags"]["top1_accuracy"]["value"] == pytest.approx(np.mean(right), abs=1e-6)
    captions = pq.read_table(next(cache.glob("truth-*.parquet"))).to_pydict()
    caption_vectors = dict(zip(captions["key"], np.array(captions["embedding"]), strict=True))
    order = sorted(audio)
    found = []
    for y in sorted(set(ytid.values())):
        similarity = np.array([audio[c] for c in order]) @ caption_vectors[caption_id(truth[y]["caption"])]
        found.append(ytid[order[int(np.argmax(similarity))]] == y)
    assert scored["retrieval"]["recall@1"]["value"] == pytest.approx(np.mean(found), abs=1e-6)


def test_a_rerun_writes_the_same_report(scored, inputs):
    """The run is complete: the rerun scores the labels again (the report removed first) and writes the same bytes."""
    report = inputs["output"] / "label_quality.json"
    before = report.read_bytes()
    report.unlink()
    assert main(["label", "--config", inputs["job"], "--truth", inputs["truth"], *QUALITY]) == 0
    assert (inputs["output"] / "label_quality.json").read_bytes() == before


def test_a_parquet_truth_by_clip_id_gives_the_same_figures(scored, inputs, tmp_path):
    """The same facts as TRUTH, as Parquet with list tags, naming clips by clip_id (the default id column)."""
    rows = {row["ytid"]: row for row in csv.DictReader(io.StringIO(TRUTH))}
    clips = pq.read_table(inputs["root"] / "curated" / "clips", columns=["clip_id", "source_uri"]).to_pydict()
    table = pa.Table.from_pylist(
        [
            {
                "clip_id": clip_id,
                "tags": ast.literal_eval(rows[Path(uri).stem]["aspect_list"]),
                "caption": rows[Path(uri).stem]["caption"],
            }
            for clip_id, uri in zip(clips["clip_id"], clips["source_uri"], strict=True)
        ]
    )
    path = tmp_path / "truth.parquet"
    pq.write_table(table, path)
    output = tmp_path / "labels"
    shutil.copytree(inputs["output"], output)  # a finished run: only the report is made
    job = json.loads(Path(inputs["job"]).read_text()) | {
        "output": str(output),
        "cache": str(inputs["output"].parent / "clap_cache"),
    }
    (tmp_path / "job.json").write_text(json.dumps(job))
    code = main(
        ["label", "--config", str(tmp_path / "job.json"), "--truth", str(path), "--quality.tags_column", "tags"]
    )
    assert code == 0
    report = json.loads((output / "label_quality.json").read_text())
    assert report["matched_by"] == "clip_id = clip table's clip_id"
    for key in ("tags", "retrieval", "drawn_labels", "clips", "items"):
        assert report[key] == scored[key]


@pytest.mark.parametrize(
    ("truth", "options", "message"),
    [
        ("clip,caption\nx,a song\n", [], "no id column one of clip_id, source_id, source_uri"),
        ("ytid,caption\nx,a song\n", ["--quality.id_column", "youtube_id"], "no id column youtube_id"),
        (
            "ytid,caption\n0,a song\n",
            ["--quality.id_column", "ytid", "--quality.clip_column", "title"],
            "none of its ytid values is a title of the clip table",
        ),
        ("ytid,caption\n0,a song\n", QUALITY[:2] + ["--quality.clip_column", "nope"], "quality.clip_column nope"),
        (
            "ytid,aspect_list,caption\n0,[],\n",
            QUALITY,
            "every row's tags (aspect_list) and captions (caption) are empty",
        ),
        ("ytid,genre\n0,jazz\n", QUALITY, "no tags column aspect_list and no caption column caption"),
        (
            "ytid,aspect_list\n0,jazz\n",
            [*QUALITY, "--quality.tags_vocabulary", "moods"],
            "quality.tags_vocabulary moods",
        ),
    ],
)
def test_bad_labeled_sets_are_one_line_errors(scored, inputs, tmp_path, capsys, truth, options, message):
    path = tmp_path / "truth.csv"
    path.write_text(truth)
    code = main(["label", "--config", inputs["job"], "--truth", str(path), *options])
    err = capsys.readouterr().err
    assert code == 2 and message in " ".join(err.split()) and "Traceback" not in err
    assert str(path) in " ".join(err.split()) or "quality." in message


def test_the_demo_truth_names_every_curated_demo_piece(demo_corpus, tmp_path):
    """`soundry demo` scores its labels against write_demo_truth's table: its source ids are the ones
    curation records, its tags and captions the demo's rater captions."""
    folder, pieces = demo_corpus
    job = CurateJob.model_validate(
        {
            "inputs": [{"path": str(folder), "source_name": "soundry-demo", "license": "CC0-1.0"}],
            "output": str(tmp_path / "curated"),
            "runner": {"workers": 1},
        }
    )
    curate(job, Console(file=open("/dev/null", "w")))
    path = write_demo_truth(pieces, folder, tmp_path / "demo_truth.csv")
    truth = read_truth(str(path), QualitySettings())
    assert truth.id_column == "source_id" and len(truth.tags) == len(truth.captions) == len(pieces)
    assert all(truth.captions[i] == [demo_caption(p)["caption"]] for i, p in zip(truth.tags, pieces, strict=True))
    matched = match_clips(truth, str(tmp_path / "curated"))
    clips = pq.read_table(tmp_path / "curated" / "clips", columns=["clip_id", "source_uri"]).to_pydict()
    by_file = {p.file_name: i for i, p in zip(truth.tags, pieces, strict=True)}
    assert len(matched) == len(clips["clip_id"]) and set(matched.values()) <= set(truth.tags)
    for clip_id, uri in zip(clips["clip_id"], clips["source_uri"], strict=True):
        assert matched[clip_id] == by_file[Path(uri).name]
    assert write_demo_truth(pieces, folder, tmp_path / "again.csv").read_bytes() == path.read_bytes()


def test_a_bad_truth_stops_a_new_run_before_any_labeling(inputs, tmp_path, capsys):
    path = tmp_path / "truth.csv"
    path.write_text("ytid,caption\n0,a song\n")
    output = tmp_path / "labels"
    code = main(["label", "--config", inputs["job"], "--output", str(output), "--truth", str(path)])
    assert code == 2 and "no id column one of clip_id" in " ".join(capsys.readouterr().err.split())
    assert not (output / "labels").exists() and not (output / "work").exists()
