"""The demo corpus is what its manifest says: every format with its tags, durations, rates
and channels; an exact duplicate; digital silence where the gaps are; loudness on target;
the same bytes every run whatever the worker count; and no work at all the second time."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from curation.demo import corpus as corpus_module
from curation.demo.corpus import FORMATS, LOSSLESS, MANIFEST, DemoPiece, generate_demo_corpus

SMALL = dict(n_pieces=7, seed=3, min_duration_s=20.0, max_duration_s=24.0)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> tuple[Path, list[DemoPiece]]:
    folder = tmp_path_factory.mktemp("demo")
    return folder, generate_demo_corpus(folder, **SMALL)


def probe(path: Path) -> tuple[int, int, int, dict[str, str]]:
    """(decoded samples per channel, rate, channels, container and stream tags) via PyAV."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        tags = {**container.metadata, **stream.metadata}
        samples = sum(frame.samples for frame in container.decode(stream))
        return samples, stream.rate, stream.channels, tags


def test_small_corpus_has_every_corner_case(corpus):
    _, pieces = corpus
    assert len(pieces) == SMALL["n_pieces"]
    assert {p.format for p in pieces} == set(FORMATS)
    assert all(p.file_name.endswith(f".{p.format}") for p in pieces)
    assert len({p.file_name for p in pieces}) == len(pieces)
    assert sum(p.duplicate_of is not None for p in pieces) == 1
    assert {p.sample_rate for p in pieces} == {22050, 44100, 48000}
    assert {p.channels for p in pieces} == {1, 2}
    assert any(p.file_name.count(".") > 1 for p in pieces)
    assert any(length >= 16.0 for p in pieces for _, length in p.silence_gaps)
    assert all(-30.0 <= p.loudness_lufs <= -12.0 for p in pieces)
    assert all(20.0 <= p.duration_s <= 24.0 for p in pieces)


@pytest.mark.parametrize("fmt", FORMATS)
def test_file_decodes_with_its_duration_rate_channels_and_tags(corpus, fmt):
    folder, pieces = corpus
    for piece in [p for p in pieces if p.format == fmt]:
        samples, rate, channels, tags = probe(folder / piece.file_name)
        assert (rate, channels) == (piece.sample_rate, piece.channels)
        assert abs(samples / rate - piece.duration_s) <= 0.1
        assert {name: tags.get(name) for name in piece.tags} == piece.tags
        assert piece.tags["title"] == piece.title and piece.tags["genre"] == piece.genre


def test_manifest_holds_the_returned_pieces(corpus):
    folder, pieces = corpus
    document = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    assert document["parameters"]["n_pieces"] == SMALL["n_pieces"]
    assert [DemoPiece.from_row(row) for row in document["pieces"]] == pieces


def test_duplicate_decodes_to_the_same_samples_from_another_file(corpus):
    folder, pieces = corpus
    (copy,) = [p for p in pieces if p.duplicate_of is not None]
    (source,) = [p for p in pieces if p.file_name == copy.duplicate_of]
    assert {source.format, copy.format} == set(LOSSLESS)
    assert copy.title != source.title
    a, _ = sf.read(folder / source.file_name, dtype="int16")
    b, _ = sf.read(folder / copy.file_name, dtype="int16")
    assert a.shape == b.shape and np.array_equal(a, b)


def test_silence_gaps_are_digital_silence_between_music(corpus):
    folder, pieces = corpus
    gapped = [p for p in pieces if p.silence_gaps and p.format in LOSSLESS]
    assert gapped
    for piece in gapped:
        pcm, rate = sf.read(folder / piece.file_name, dtype="int16", always_2d=True)
        for start_s, length_s in piece.silence_gaps:
            start, end = round(start_s * rate), round((start_s + length_s) * rate)
            assert not pcm[start:end].any()
            assert pcm[start - rate : start].any() and pcm[end : end + rate].any()


def test_lossless_pieces_are_on_their_loudness_target_under_the_ceiling(corpus):
    folder, pieces = corpus
    for piece in [p for p in pieces if p.format in LOSSLESS]:
        audio, rate = sf.read(folder / piece.file_name, dtype="float64")
        loudness = pyloudnorm.Meter(rate).integrated_loudness(audio)
        assert abs(loudness - piece.loudness_lufs) <= 0.1
        assert 20 * np.log10(np.abs(audio).max()) <= -0.5


def test_same_parameters_give_the_same_bytes_whatever_the_workers(corpus, tmp_path):
    folder, pieces = corpus
    again = generate_demo_corpus(tmp_path, workers=2, **SMALL)
    assert again == pieces
    for piece in [p for p in pieces if p.format in LOSSLESS]:
        assert (tmp_path / piece.file_name).read_bytes() == (folder / piece.file_name).read_bytes()


def test_second_call_returns_the_corpus_without_writing(corpus):
    folder, pieces = corpus
    before = {path.name: path.stat().st_mtime_ns for path in folder.iterdir()}
    assert generate_demo_corpus(folder, **SMALL) == pieces
    assert {path.name: path.stat().st_mtime_ns for path in folder.iterdir()} == before


def test_other_parameters_replace_the_old_corpus(tmp_path):
    tiny = dict(n_pieces=2, min_duration_s=10.0, max_duration_s=10.0)
    old = generate_demo_corpus(tmp_path, seed=0, **tiny)
    new = generate_demo_corpus(tmp_path, seed=1, **tiny)
    assert old != new
    names = {p.file_name for p in new} | {MANIFEST}
    assert {path.name for path in tmp_path.iterdir()} == names


@pytest.mark.parametrize("bad", [dict(n_pieces=0), dict(min_duration_s=5.0),
                                 dict(min_duration_s=30.0, max_duration_s=20.0),
                                 dict(sample_rate=8000)])
def test_rejects_bad_parameters(tmp_path, bad):
    with pytest.raises(ValueError):
        generate_demo_corpus(tmp_path, **bad)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("argv,said", [(["--pieces", "0"], "n_pieces (--pieces) must be at least 1"),
                                       (["--min-duration", "30", "--max-duration", "10"], "(--max-duration)")])
def test_cli_names_the_bad_option(tmp_path, capsys, argv, said):
    from orchestration.cli.main import main

    assert main(["demo-corpus", str(tmp_path / "out"), *argv]) == 2
    err = capsys.readouterr().err
    assert said in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_cli_refuses_a_file_as_the_folder(tmp_path, capsys):
    from orchestration.cli.main import main

    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo-corpus", str(tmp_path / "notes.txt"), "--pieces", "1"]) == 2
    assert "notes.txt is a file" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


@pytest.mark.parametrize("duration_s", [22.4, 20.0, 14.0])
def test_silence_gaps_fit_pieces_whose_span_rounds_badly(duration_s):
    """Half of 22.4 s less the margins is 7.199999999999999 s, and a gap rounded to tenths came out
    at 7.2 s: the start was then drawn from a negative range and corpus generation failed."""
    for seed in range(40):
        for long in (False, True):
            if long and duration_s < corpus_module._LONG_GAP_S + 2 * corpus_module._GAP_MARGIN_S:
                continue
            gaps = corpus_module._silence_gaps(np.random.default_rng(seed), duration_s, long)
            margin = corpus_module._GAP_MARGIN_S
            for start, length in gaps:
                assert margin <= start and start + length <= duration_s - margin + 1e-9
