import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from disk_log import DiskLog

from curation.clip import clip_part_writer
from curation.core import durable
from curation.dedup import DUPLICATE_SCHEMA, apply_duplicates, decide_group, read_members


def test_keeper_is_the_smallest_clip_whatever_the_order():
    members = [("b-2", "/x/b.wav", "p1"), ("a-1", "/y/a.wav", "p2"), ("a-1", "/x/a copy.wav", "p3")]
    for order in (members, members[::-1], members[1:] + members[:1]):
        rows = decide_group(order)
        assert {(r["clip_id"], r["source_uri"]) for r in rows} == {("b-2", "/x/b.wav"), ("a-1", "/y/a.wav")}
        assert {r["duplicate_of_uri"] for r in rows} == {"/x/a copy.wav"}
    assert decide_group(members[:1]) == []


def write_part(path, rows):
    table = pa.Table.from_pylist(
        [{"clip_id": c, "source_uri": u, "pcm_sha256": h, "audio_flac": b"x"} for c, u, h in rows]
    )
    pq.write_table(table, path)
    return str(path)


def group_in_memory(parts, read, reduce):
    """An engine's group-by in its plainest form (the engines are tested in tests/orchestration/engines)."""
    groups = {}
    for part in parts:
        for key, value in read(part):
            groups.setdefault(key, []).append(value)
    return [row for values in groups.values() for row in reduce(values)]


def test_members_are_read_with_their_part_as_given(tmp_path):
    part = write_part(tmp_path / "part-1.parquet", [("a", "/a", "h1"), ("b", "/b", "h2")])
    url = f"file://{part}"
    assert list(read_members(url)) == [("h1", ("a", "/a", url)), ("h2", ("b", "/b", url))]


def test_apply_is_idempotent_after_a_crash(tmp_path):
    p1 = write_part(tmp_path / "part-1.parquet", [("a", "/a", "h1"), ("b", "/b", "h2")])
    p2 = write_part(tmp_path / "part-2.parquet", [("c", "/c", "h1"), ("d", "/d", "h3"), ("e", "/e", "h2")])
    calls = []

    def find():
        calls.append(1)
        return group_in_memory([p1, p2], read_members, decide_group)

    found = apply_duplicates(str(tmp_path), find)
    assert found.schema == DUPLICATE_SCHEMA
    assert sorted(found.column("clip_id").to_pylist()) == ["c", "e"]
    assert pq.read_table(p2).column("clip_id").to_pylist() == ["d"]
    # a rerun reads the recorded decision instead of deciding from rewritten parts
    decision = apply_duplicates(str(tmp_path), find)
    assert len(calls) == 1 and decision.num_rows == 2
    assert pq.read_table(p1).column("clip_id").to_pylist() == ["a", "b"]
    rejects = pq.read_table(tmp_path / "rejects" / "part-dedup.parquet").to_pylist()
    assert {(r["clip_id"], r["reason"], r["duplicate_of"]) for r in rejects} == {
        ("c", "duplicate", "a"),
        ("e", "duplicate", "b"),
    }


def _part_of_four_row_groups_with_a_duplicate(tmp_path):
    rows = [
        {"clip_id": f"c{i}", "source_uri": f"/s{i}", "pcm_sha256": f"h{i}", "audio_flac": b"x" * 5000} for i in range(7)
    ]
    rows.append({"clip_id": "z", "source_uri": "/z", "pcm_sha256": "h0", "audio_flac": b"x" * 5000})
    part = tmp_path / "part-1.parquet"
    table = pa.Table.from_pylist(rows)
    with clip_part_writer(str(part), table.schema) as writer:
        for start in range(0, len(rows), 2):
            writer.write_table(table.slice(start, 2))
    return part, table.schema


def test_a_rewritten_part_keeps_the_units_row_groups_and_encodings(tmp_path):
    """A reader that takes a part a row group at a time (the shard writer) holds one group of
    clips: the part left after its duplicates are dropped must not become one group."""
    part, schema = _part_of_four_row_groups_with_a_duplicate(tmp_path)
    apply_duplicates(str(tmp_path), lambda: group_in_memory([str(part)], read_members, decide_group))

    metadata = pq.ParquetFile(part).metadata
    assert pq.read_table(part).column("clip_id").to_pylist() == [f"c{i}" for i in range(7)]
    assert [metadata.row_group(g).num_rows for g in range(metadata.num_row_groups)] == [2, 2, 2, 1]
    audio = metadata.row_group(0).column(schema.names.index("audio_flac"))
    assert audio.compression == "UNCOMPRESSED"
    assert not any("DICTIONARY" in encoding for encoding in audio.encodings)


@pytest.mark.skipif(durable._sync_file_range() is None, reason="sync_file_range is Linux's")
def test_a_rewritten_part_starts_for_the_disk_a_row_group_at_a_time_before_its_commit_syncs_it(tmp_path, monkeypatch):
    part, _ = _part_of_four_row_groups_with_a_duplicate(tmp_path)
    log = DiskLog(monkeypatch)
    apply_duplicates(str(tmp_path), lambda: group_in_memory([str(part)], read_members, decide_group))
    (temporary,) = {event[1] for event in log.events if event[0] == "rename" and event[2] == str(part)}
    started = [index for index, event in enumerate(log.events) if event[:2] == ("writeback", temporary)]
    assert len(started) == 4
    assert max(started) < log.events.index(("fsync", temporary))


def test_every_part_that_holds_a_duplicate_is_rewritten(tmp_path):
    """Parts are rewritten several at once; each loses exactly its own duplicates."""
    parts = [
        write_part(tmp_path / f"part-{i}.parquet", [(f"k{i}", f"/k{i}", f"own{i}"), (f"x{i}", f"/x{i}", "shared")])
        for i in range(6)
    ]
    apply_duplicates(str(tmp_path), lambda: group_in_memory(parts, read_members, decide_group))
    assert pq.read_table(parts[0]).column("clip_id").to_pylist() == ["k0", "x0"]  # x0 < x1 ...: the keeper
    for i in range(1, 6):
        assert pq.read_table(parts[i]).column("clip_id").to_pylist() == [f"k{i}"]
