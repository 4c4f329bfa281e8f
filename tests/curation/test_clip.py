"""The clip table's rows as Arrow, its address in a curate output, and the one check of a finished
table every reader makes."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation import clip
from curation.clip import (
    CLIP_SCHEMA,
    ClipTableError,
    clip_part_url,
    clip_parts,
    clips_folder,
    rows_to_clip_table,
    summary_url,
    written_clip_parts,
)
from curation.core.errors import UserError


def curate_output(folder, units=("b", "a"), summary=True):
    """A curate output as `soundry curate` leaves it: one part per unit, summary.json last."""
    for unit in units:
        url = clip_part_url(str(folder), unit)
        (folder / "clips").mkdir(parents=True, exist_ok=True)
        pq.write_table(CLIP_SCHEMA.empty_table(), url)
    if summary:
        (folder / "summary.json").write_text("{}")
    return str(folder)


def clip_rows(flac_sizes):
    rows = []
    for index, size in enumerate(flac_sizes):
        row = dict.fromkeys(CLIP_SCHEMA.names)
        row.update(
            clip_id=f"s-{index:012d}",
            source_id="s",
            source_uri=f"/in/{index}.wav",
            start_s=0.0,
            start_sample=0,
            duration_s=1.0,
            num_samples=44100,
            sample_rate=44100,
            channels=2,
            seconds_start=0,
            seconds_total=1,
            title="tïtle" if index % 2 else None,
            pcm_sha256=f"{index:064x}",
            audio_flac=bytes(range(256)) * (size // 256) + bytes([index % 256]) * (size % 256),
        )
        rows.append(row)
    return rows


@pytest.mark.parametrize("past_int32_offsets", [False, True])
def test_rows_become_the_table_arrow_makes_of_them(monkeypatch, past_int32_offsets):
    rows = clip_rows([70_000, 0, 1, 213_531, 255, 256])
    if past_int32_offsets:  # a row group holding over 2 GiB of FLAC goes Arrow's own way
        monkeypatch.setattr(clip, "_MAX_BINARY_BYTES", 100_000)
    table = rows_to_clip_table(rows)
    assert table.equals(pa.Table.from_pylist(rows, schema=CLIP_SCHEMA))
    assert table.column("audio_flac").to_pylist() == [row["audio_flac"] for row in rows]
    assert rows_to_clip_table(rows[:1]).equals(pa.Table.from_pylist(rows[:1], schema=CLIP_SCHEMA))


def test_the_address_of_a_curate_output(tmp_path):
    output = str(tmp_path / "curated")
    assert clips_folder(output) == f"{output}/clips"
    assert clip_part_url(output, "000003") == f"{output}/clips/part-000003.parquet"
    assert summary_url(output) == f"{output}/summary.json"


def test_parts_in_name_order_and_nothing_else(tmp_path):
    output = curate_output(tmp_path / "curated")
    # A temporary of a killed writer and a file that is no part are not the table's.
    (tmp_path / "curated" / "clips" / ".part-c.parquet.1234.tmp.parquet").write_bytes(b"")
    pq.write_table(pa.table({"x": [1]}), tmp_path / "curated" / "clips" / "notes.parquet")
    expected = [clip_part_url(output, "a"), clip_part_url(output, "b")]
    assert written_clip_parts(output) == expected
    assert clip_parts(output) == expected


def test_the_clips_folder_itself_names_its_output(tmp_path):
    output = curate_output(tmp_path / "curated")
    assert clip_parts(clips_folder(output)) == clip_parts(output)
    assert clip_parts(clips_folder(output) + "/") == clip_parts(output)


def test_an_output_folder_named_clips_is_an_output(tmp_path):
    output = curate_output(tmp_path / "clips")
    assert clip_parts(output) == [clip_part_url(output, "a"), clip_part_url(output, "b")]


@pytest.mark.parametrize(
    "units,summary,match",
    [
        (("a",), False, r"curated: curation has not finished here \(no summary.json\); run `soundry curate` again"),
        (
            (),
            False,
            r"curated: no clip table here \(no summary.json, no clips/part-\*.parquet\); give the output folder",
        ),
        ((), True, r"curated: summary.json is there but no clips/part-\*.parquet; .* run `soundry curate` into a new"),
    ],
)
def test_an_unfinished_or_missing_table_is_refused_with_what_to_do(tmp_path, units, summary, match):
    (tmp_path / "curated").mkdir()
    output = curate_output(tmp_path / "curated", units, summary)
    for folder in (output, clips_folder(output)):
        with pytest.raises(ClipTableError, match=match) as error:
            clip_parts(folder)
        assert isinstance(error.value, UserError)


def test_a_folder_that_is_not_there(tmp_path):
    with pytest.raises(ClipTableError, match="nowhere: no clip table here"):
        clip_parts(str(tmp_path / "nowhere"))
