"""The clip table's address in a curate output, and the one check of a finished table every reader makes."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from curation.clip import (
    CLIP_SCHEMA,
    ClipTableError,
    clip_part_url,
    clip_parts,
    clips_folder,
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
