import json

import pytest
from audio_files import music_like, write_audio

from curation.config import Location, Partitioning
from curation.discover import (
    LocationError,
    PlannedFile,
    WorkUnit,
    discover,
    heaviest_first,
    plan_from_table,
    plan_to_table,
    plan_units,
)


@pytest.fixture
def tree(tmp_path):
    for name in ["a/one.wav", "a/two.flac", "b/Track 2.0 (Clean).wav", "b/deep/three.wav"]:
        write_audio(tmp_path / name, music_like(0.5), 44100)
    (tmp_path / "b" / "Track 2.0 (Clean).json").write_text(json.dumps({"license": "CC-BY-4.0"}))
    (tmp_path / "a" / "notes.json").write_text("{}")  # no audio of that stem: an input like any other
    return tmp_path


def test_folders_are_searched_recursively_and_sidecars_paired(tree):
    files = discover([Location(path=str(tree))])
    names = [f.uri.removeprefix(str(tree) + "/") for f in files]
    assert names == ["a/notes.json", "a/one.wav", "a/two.flac", "b/Track 2.0 (Clean).wav", "b/deep/three.wav"]
    by_name = {f.uri.rsplit("/", 1)[1]: f for f in files}
    assert by_name["Track 2.0 (Clean).wav"].sidecar.endswith("b/Track 2.0 (Clean).json")
    assert by_name["one.wav"].sidecar is None


def test_globs_and_several_locations(tree):
    files = discover([Location(path=str(tree / "a" / "*.wav")), Location(path=str(tree / "b" / "**" / "*.wav"))])
    assert [(f.uri.rsplit("/", 1)[1], f.location) for f in files] == [
        ("one.wav", 0),
        ("Track 2.0 (Clean).wav", 1),
        ("three.wav", 1),
    ]


def test_output_inside_input_is_skipped(tree):
    write_audio(tree / "a" / "out" / "clips" / "x.wav", music_like(0.5), 44100)
    files = discover([Location(path=str(tree / "a"))], exclude=str(tree / "a" / "out"))
    assert all("/out/" not in f.uri for f in files)


def test_missing_location_names_the_entry(tmp_path):
    (tmp_path / "a.wav").write_bytes(b"RIFF")
    with pytest.raises(LocationError, match=r"inputs\[1\].path = .*nope.*no such file or folder"):
        discover([Location(path=str(tmp_path)), Location(path=str(tmp_path / "nope"))])


def test_a_location_with_no_files_names_the_entry(tree):
    (tree / "empty").mkdir()
    for path in (tree / "empty", tree / "a" / "*.mp9"):
        with pytest.raises(LocationError, match=r"inputs\[1\].path = .*no files there"):
            discover([Location(path=str(tree / "a")), Location(path=str(path))])


@pytest.mark.parametrize(
    "count,max_files,max_bytes,min_units",
    [(100, 7, 10**9, 1), (100, 1000, 2500, 1), (10, 1000, 10**9, 4), (3, 1000, 10**9, 16)],
)
def test_units_respect_limits_and_keep_order(count, max_files, max_bytes, min_units):
    files = [PlannedFile(f"/f/{i:04d}", 100 + i, 0) for i in range(count)]
    units = plan_units(files, Partitioning(max_files=max_files, max_bytes=max_bytes, min_units=min_units))
    assert [f for u in units for f in u.files] == files
    assert all(len(u.files) <= max_files for u in units)
    assert len(units) >= min(min_units, count)
    assert all(u.bytes <= max_bytes or len(u.files) == 1 for u in units)
    assert plan_from_table(plan_to_table(units)) == units


def test_units_are_handed_out_heaviest_first_by_seconds_of_audio_not_bytes():
    # An Opus file holds about ten times the seconds of a WAV of its size, and costs about that
    # much more to curate: 2 MB of Opus outweighs 10 MB of WAV, and 2 MB of FLAC does not.
    def unit(name, *files):
        return WorkUnit(name, tuple(PlannedFile(f"/c/{file}", size, 0) for file, size in files))

    wav = unit("000000", ("a.wav", 10_000_000))
    opus = unit("000001", ("b.opus", 2_000_000))
    flac = unit("000002", ("c.FLAC", 2_000_000))
    mixed = unit("000003", ("d.mp3", 500_000), ("e.wav", 3_000_000))
    unknown = unit("000004", ("f.xyz", 1_000_000))
    tie = unit("000005", ("g.ogg", 500_000), ("h.wav", 3_000_000))  # the same cost as `mixed`
    assert heaviest_first([wav, opus, flac, mixed, unknown, tie]) == [opus, wav, mixed, tie, flac, unknown]
