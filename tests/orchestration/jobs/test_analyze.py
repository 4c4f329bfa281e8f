"""`soundry analyze` end to end on the local engine: the facts of clips whose tempo and key are
known, the accuracy report against a truth table, resuming, and mistakes named in one line."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest
from music_signals import music_clips, write_music_clip_table
from rich.console import Console

from labeling.music.facts import ANALYSIS_SCHEMA
from orchestration.cli.main import main
from orchestration.configs.jobs import AnalyzeJob
from orchestration.configs.resolve import ConfigError
from orchestration.jobs.analyze import analyze_clips

QUIET = Console(file=open("/dev/null", "w"))


def run(clips: str, output, **overrides) -> dict:
    settings = {"clips": clips, "output": str(output), "clips_per_unit": 2, "runner": {"name": "local", "workers": 1}}
    return analyze_clips(AnalyzeJob.model_validate({**settings, **overrides}), QUIET)


@pytest.fixture(scope="module")
def analysed(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyze")
    clips = write_music_clip_table(root / "curated")
    truth = root / "truth.csv"
    lines = ["source_uri,bpm,key"] + [
        f"/corpus/{title}.flac,{bpm or ''},{key or ''}" for title, _, bpm, key in music_clips() if bpm or key
    ]
    truth.write_text("\n".join(lines) + "\n")
    output = root / "analysis"
    summary = run(clips, output, truth=str(truth))
    return root, clips, output, summary


def _facts(clips: str, output) -> dict[str, dict]:
    titles = {
        r["clip_id"]: r["title"] for r in pq.read_table(f"{clips}/clips", columns=["clip_id", "title"]).to_pylist()
    }
    return {titles[r["clip_id"]]: r for r in pq.read_table(output / "analysis").to_pylist()}


def test_the_facts_of_known_clips(analysed):
    _, clips, output, summary = analysed
    assert pq.read_schema(next((output / "analysis").iterdir())) == ANALYSIS_SCHEMA
    facts = _facts(clips, output)
    assert set(facts) == {title for title, *_ in music_clips()}
    assert abs(facts["clicks"]["bpm"] - 120) < 4.8 and facts["clicks"]["beat_count"] >= 10
    assert (facts["c-major"]["key"], facts["c-major"]["mode"]) == ("C", "major")
    assert facts["c-major"]["progression"] == "I-V-vi-IV"
    assert (facts["a-minor"]["key"], facts["a-minor"]["mode"]) == ("A", "minor")
    for unknown in ("noise", "short"):
        assert facts[unknown]["bpm"] is None and facts[unknown]["bpm_confidence"] == 0
        assert facts[unknown]["key"] is None and facts[unknown]["key_confidence"] == 0
    assert summary["facts"]["clips"] == 5 and summary["facts"]["tempo_known"] == 3
    assert summary["facts"]["modes"]["minor"] == 1 and summary["facts"]["key_known"] >= 2
    accuracy = summary["accuracy"]
    assert (accuracy["by"], accuracy["tempo_clips"], accuracy["key_clips"]) == ("source_uri", 3, 2)
    assert accuracy["tempo_accuracy2"] == 1.0 and accuracy["key_weighted_score"] == 1.0
    assert (output / "manifest.json").exists()


def test_a_lost_unit_is_redone_and_the_rest_resumed(analysed, tmp_path):
    _, clips, output, _ = analysed
    copy = tmp_path / "analysis"
    shutil.copytree(output, copy)
    lost = sorted((copy / "analysis").iterdir())[0]
    lost.unlink()
    summary = run(clips, copy)
    assert summary["units_resumed"] == summary["units"] - 1
    assert _facts(clips, copy) == _facts(clips, output)


def test_other_settings_in_the_same_folder_are_refused(analysed):
    _, clips, output, _ = analysed
    with pytest.raises(ConfigError, match="holds the analysis of other settings"):
        run(clips, output, analysis={"min_tonality": 0.9})


@pytest.mark.parametrize(
    ("truth", "message"),
    [
        ("clip,tempo\nx,1\n", "needs one of the columns clip_id, source_id, source_uri"),
        ("clip_id,key\nx,H dorian\n", "row 1, column key: not a key: 'H dorian'"),
        ("clip_id,bpm\nnobody,120\n", "names none of the analysed clips"),
    ],
)
def test_bad_truth_tables_are_one_line_errors(analysed, tmp_path, capsys, truth, message):
    _, clips, output, _ = analysed
    path = tmp_path / "truth.csv"
    path.write_text(truth)
    code = main(["analyze", "--clips", clips, "--output", str(output), "--clips_per_unit", "2", "--truth", str(path)])
    assert code == 2
    assert message in capsys.readouterr().err.replace("\n", "")
