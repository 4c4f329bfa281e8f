"""`soundry label` with a music section: the analysis joined into structured fields, tags and a
sentence; the analysis is read, never redone; an analysis of other clips is refused in one line."""

from __future__ import annotations

import dataclasses

import pyarrow.parquet as pq
import pytest
from label_inputs import label_job_settings, write_clip_table, write_vocabularies
from music_signals import write_music_clip_table
from rich.console import Console

from labeling.labels.table import labels_from_table
from labeling.music.facts import LABEL_COLUMNS
from labeling.music.join import AnalysisFolderError
from orchestration.configs.jobs import AnalyzeJob, LabelJob
from orchestration.jobs.analyze import analyze_clips
from orchestration.jobs.label import label
from shards.sample import sample_json

QUIET = Console(file=open("/dev/null", "w"))


@pytest.fixture(scope="module")
def labeled(tmp_path_factory):
    root = tmp_path_factory.mktemp("label-music")
    clips, vocab = write_music_clip_table(root / "curated"), write_vocabularies(root / "vocab")
    analysis = root / "analysis"
    job = {"clips": clips, "output": str(analysis), "clips_per_unit": 3, "runner": {"name": "local", "workers": 1}}
    analyze_clips(AnalyzeJob.model_validate(job), QUIET)
    settings = label_job_settings(clips, vocab, root / "labels", music={"analysis": str(analysis)})
    label(LabelJob.model_validate(settings), QUIET)
    titles = {
        r["clip_id"]: r["title"] for r in pq.read_table(f"{clips}/clips", columns=["clip_id", "title"]).to_pylist()
    }
    rows = {titles[r.clip_id]: r for r in labels_from_table(pq.read_table(root / "labels" / "labels"))}
    return root, clips, vocab, analysis, rows


def test_facts_become_fields_tags_and_a_sentence(labeled):
    *_, rows = labeled
    c_major = rows["c-major"]
    (bpm,) = c_major.structured["bpm"]
    assert c_major.structured["key"] == ["C major"] and abs(int(bpm) - 100) <= 4  # MIREX's 4%
    assert c_major.structured["chords"] == ["I-V-vi-IV"] and "medium" in c_major.structured["tempo"]
    assert c_major.prompt_candidates[0] == f"C major, {bpm} bpm, with a I-V-vi-IV progression."
    assert any("C major" in p and f"{bpm} bpm" in p and "medium tempo" in p for p in c_major.prompt_candidates[1:])
    assert rows["a-minor"].structured["key"] == ["A minor"]
    for unknown in ("noise", "short"):
        assert not {"key", "bpm", "chords"} & set(rows[unknown].structured)
        assert not any("bpm" in p for p in rows[unknown].prompt_candidates)


def test_an_analysis_of_other_clips_is_refused(labeled, tmp_path):
    root, _, vocab, analysis, _ = labeled
    other = write_clip_table(tmp_path / "other")
    settings = label_job_settings(other, vocab, tmp_path / "labels", music={"analysis": str(analysis)})
    with pytest.raises(AnalysisFolderError, match="analyses another clip table"):
        label(LabelJob.model_validate(settings), QUIET)
    settings = label_job_settings(other, vocab, tmp_path / "labels2", music={"analysis": str(tmp_path / "none")})
    with pytest.raises(AnalysisFolderError, match="no finished analysis there"):
        label(LabelJob.model_validate(settings), QUIET)


def test_the_label_run_names_the_music_settings_only_when_set(labeled):
    root, clips, vocab, analysis, _ = labeled
    plain = LabelJob.model_validate(label_job_settings(clips, vocab, root / "x")).stage_config()
    with_music = LabelJob.model_validate(
        label_job_settings(clips, vocab, root / "x", music={"analysis": str(analysis), "min_confidence": 0.7})
    ).stage_config()
    assert "music" not in plain.label_run_fields()  # label runs from before the music section keep their ids
    assert with_music.label_run_fields()["music"]["min_confidence"] == 0.7


def test_facts_are_columns_of_the_label_table_and_the_sample_json(labeled):
    *_, rows = labeled
    c_major, noise = rows["c-major"], rows["noise"]
    assert (c_major.key, c_major.mode) == ("C", "major") and abs(c_major.bpm - 100) <= 4
    assert c_major.bpm_confidence > 0.5 and c_major.key_confidence > 0.4 and c_major.beat_count >= 12
    assert c_major.chords[:4] == ["C:maj", "G:maj", "A:min", "F:maj"]
    # Unknown: null in the table, with confidence 0 (analysed); an absent key in the sample json.
    assert noise.bpm is None and noise.key is None and noise.bpm_confidence == 0 and noise.key_confidence == 0
    clip = {"clip_id": c_major.clip_id, "pcm_sha256": "0" * 64}
    music = sample_json(clip, "train", c_major)["music"]
    assert music["key"] == "C" and music["mode"] == "major" and music["bpm"] == round(c_major.bpm, 2)
    assert music["chords"][:4] == c_major.chords[:4]
    noise_music = sample_json({**clip, "clip_id": noise.clip_id}, "train", noise)["music"]
    assert noise_music["bpm_confidence"] == 0 and not {"bpm", "key", "mode", "meter"} & set(noise_music)
    assert None not in noise_music.values()
    unanalysed = dataclasses.replace(c_major, **dict.fromkeys(LABEL_COLUMNS))
    assert "music" not in sample_json(clip, "train", unanalysed)
