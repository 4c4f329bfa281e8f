"""`soundry label` with a music section: the analysis joined into structured fields, tags and a
sentence; the analysis is read, never redone; an analysis of other clips is refused in one line."""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest
from label_inputs import label_job_settings, write_clip_table, write_vocabularies
from music_signals import write_music_clip_table
from rich.console import Console

from labeling.labels.table import labels_from_table
from labeling.music.join import AnalysisFolderError
from orchestration.configs.jobs import AnalyzeJob, LabelJob
from orchestration.jobs.analyze import analyze_clips
from orchestration.jobs.label import label

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
