import json

import pyarrow as pa
import pytest

from curation.core.storage import write_table_atomic
from labeling.labels.table import Candidate, LabelRow, labels_from_table, labels_to_table
from labeling.vocab.table import VOCAB_SCHEMA, VocabularyError, caption_id, read_vocabularies, vocabulary_version


def vocab_table(texts: list[str]) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "vocab": "tags",
                "caption_id": caption_id(t),
                "text": t,
                "kind": "short_form",
                "aspect": "genre",
                "source": "builtin",
                "provenance": None,
            }
            for t in texts
        ],
        schema=VOCAB_SCHEMA,
    )


def test_caption_id_ignores_case_spacing_and_end_punctuation():
    assert caption_id("A calm  piano piece.") == caption_id("a calm piano piece")
    assert caption_id("a calm piano piece") != caption_id("a calm organ piece")


def test_version_depends_on_content_not_order():
    assert vocabulary_version(vocab_table(["jazz", "rock"])) == vocabulary_version(vocab_table(["rock", "jazz"]))
    assert vocabulary_version(vocab_table(["jazz", "rock"])) != vocabulary_version(vocab_table(["jazz", "pop"]))


def test_read_vocabularies_checks_the_manifest(tmp_path):
    table = vocab_table(["jazz", "rock"])
    write_table_atomic(str(tmp_path / "tags.parquet"), table)
    manifest = {"vocabularies": {"tags": {"file": "tags.parquet", "version": vocabulary_version(table)}}}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert read_vocabularies(str(tmp_path))["tags"].table.num_rows == 2
    with pytest.raises(VocabularyError, match="no vocabulary named llm_long"):
        read_vocabularies(str(tmp_path), ["llm_long"])
    write_table_atomic(str(tmp_path / "tags.parquet"), vocab_table(["jazz"]))
    with pytest.raises(VocabularyError, match="does not match version"):
        read_vocabularies(str(tmp_path))
    with pytest.raises(VocabularyError, match="soundry vocab"):
        read_vocabularies(str(tmp_path / "missing"))


def test_label_rows_round_trip_through_arrow():
    row = LabelRow(
        clip_id="abc-000000000000",
        label_run="run1",
        candidates=[
            Candidate("tags", "c1", "jazz", "genre", 0.5),
            Candidate("llm_long", "c2", "A calm piece.", None, 0.25),
        ],
        labels=[Candidate("tags", "c1", "jazz", "genre", 0.5)],
        prompt_candidates=["A calm piece.", "jazz, piano"],
        structured={"genre": ["jazz"], "instrument": ["piano"]},
        title="Song",
        genre="Jazz",
    )
    assert labels_from_table(labels_to_table([row])) == [row]
