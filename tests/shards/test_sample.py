"""Sample keys and json, caption exclusion, and split assignment by source."""

from __future__ import annotations

import collections
import hashlib
import json

import pyarrow as pa
import pytest

from labeling.vocab.table import caption_id
from shards.config import ShardConfig, Splits
from shards.sample import RECORD_SCHEMA, CaptionFilter, UnsafeKey, check_key, members, sample_json
from shards.split import SplitAssigner, SplitFileError, hashed_split, read_assignments


@pytest.mark.parametrize("key", ["abc.def", "a/b", "", "space here", "ü-umlaut"])
def test_unsafe_keys_are_refused(key):
    with pytest.raises(UnsafeKey, match="cannot be a WebDataset key"):
        check_key(key)


@pytest.mark.parametrize("labeled", [True, False])
def test_json_has_one_shape_with_or_without_labels(curated, shard_inputs, labeled):
    clip_id = sorted(curated.rows)[0]
    label = shard_inputs.label_row(clip_id, 3) if labeled else None
    record = sample_json(curated.rows[clip_id], "train", label)
    # Unknown values are absent keys, never nulls (the clip has no album, comment or metadata_json;
    # long-form labels have no aspect); lists are always there.
    assert "null" not in json.dumps(record)
    unknown = {"album", "comment", "metadata_json"} | ({"label_run", "music"} if not labeled else set())
    assert sorted(record) == sorted(set(RECORD_SCHEMA.names) - unknown)
    assert all(isinstance(record[name], list) for name in ("labels", "prompt_candidates", "long_form", "structured"))
    assert pa.Table.from_pylist([record], schema=RECORD_SCHEMA)["album"].to_pylist() == [None]
    if labeled:
        assert [label.get("aspect") for label in record["labels"]] == [None, None, None, "genre", "mood"]
    if labeled:
        assert (
            record["long_form"] == label.prompt_candidates[:3] and record["tag_chunks"] == label.prompt_candidates[3:]
        )
        assert record["text"] == record["prompt"] == record["long_form"][0]
    else:
        row = curated.rows[clip_id]
        assert record["labels"] == [] and record["text"] == f"{row['artist']}, {row['genre']}, {row['title']}"
        assert {f["aspect"] for f in record["structured"]} == {"genre", "artist", "title"}
    names = [name for name, _ in members(clip_id, b"flac", record)]
    assert names == [f"{clip_id}.flac", f"{clip_id}.json"]
    assert json.loads(members(clip_id, b"", record)[1][1]) == record


def test_caption_filter_removes_captions_and_vocabularies(shard_inputs):
    row = shard_inputs.label_row("clip-1", 0)
    assert CaptionFilter().apply(row) == row
    filtered = CaptionFilter(["jazz", caption_id("Recording number 0.")], ["rater_long"]).apply(row)
    texts = [c.text for c in filtered.labels]
    assert "jazz" not in texts and "Recording number 0." not in texts and "a rater sentence" not in texts
    assert filtered.prompt_candidates == ["A calm piece with a jazz groove.", "calm"]
    assert filtered.structured == {"mood": ["calm"]}


def test_hashed_split_is_stable_and_proportional():
    fractions = {"train": 0.8, "valid": 0.1, "test": 0.1}
    ids = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(4000)]
    counts = collections.Counter(hashed_split(i, fractions, "soundry") for i in ids)
    assert abs(counts["train"] / 4000 - 0.8) < 0.03 and abs(counts["test"] / 4000 - 0.1) < 0.02
    assert [hashed_split(i, fractions, "soundry") for i in ids[:50]] == [
        hashed_split(i, fractions, "soundry") for i in ids[:50]
    ]
    grown = {**fractions}
    assert hashed_split(ids[0], grown, "soundry") == hashed_split(ids[0], fractions, "soundry")
    assert [hashed_split(i, fractions, "other") for i in ids[:50]] != [
        hashed_split(i, fractions, "soundry") for i in ids[:50]
    ]


def test_assignments_win_over_hints_which_win_over_the_hash(tmp_path):
    (tmp_path / "splits.csv").write_text("source,split\nsong 1.wav,test\n")
    assigner = SplitAssigner(Splits(fractions={"train": 1.0}, assignments=str(tmp_path / "splits.csv")))
    assert assigner.split("id1", "/c/song 1.wav", "valid") == "test"
    assert assigner.split("id2", "/c/song 2.wav", "valid") == "valid"
    assert assigner.split("id3", "/c/song 3.wav", None) == "train"
    ignoring = SplitAssigner(Splits(fractions={"train": 1.0}, use_split_hints=False))
    assert ignoring.split("id2", "/c/song 2.wav", "valid") == "train"


@pytest.mark.parametrize(
    "text,match", [("source,split\na,Bad-Split\n", "line 2"), ("x,y\n1,2\n", "columns source,split")]
)
def test_bad_assignment_files_are_named(tmp_path, text, match):
    (tmp_path / "splits.csv").write_text(text)
    with pytest.raises(SplitFileError, match=match):
        read_assignments(str(tmp_path / "splits.csv"))


@pytest.mark.parametrize(
    "fractions,match",
    [
        ({"train": 0.5}, "add up to 0.5"),
        ({"tr-ain": 1.0}, "split name"),
        ({"train": 1.5, "valid": -0.5}, "negative"),
    ],
)
def test_bad_fractions_are_refused(fractions, match):
    with pytest.raises(ValueError, match=match):
        Splits(fractions=fractions)


def test_version_names_are_folder_safe():
    with pytest.raises(ValueError, match="letters, digits"):
        ShardConfig(clips="c", root="r", version="../v1")
