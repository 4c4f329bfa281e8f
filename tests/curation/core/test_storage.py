"""Outputs are written atomically and durably: fsync observed in order, a torn upload to a
store without atomic uploads never visible, a URL nobody can open explained in one line."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from audio_files import music_like, write_audio
from disk_log import DiskLog
from fsspec.implementations.memory import MemoryFileSystem

from curation.config import CurationConfig
from curation.core import durable
from curation.core.storage import SchemeUnavailable, filesystem, write_bytes_atomic, write_table_atomic
from curation.discover import PlannedFile, WorkUnit
from curation.unit import run_unit


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names an fd's file through /proc")
def test_a_file_is_synced_before_its_rename_and_its_folder_after(tmp_path, monkeypatch):
    log = DiskLog(monkeypatch)
    target = tmp_path / "out" / "part-000000.parquet"
    write_table_atomic(str(target), pa.table({"x": [1, 2, 3]}))
    (kind, temporary), rename, folder = log.events
    assert kind == "fsync" and Path(temporary).parent == target.parent and ".tmp" in Path(temporary).name
    assert rename == ("rename", temporary, str(target))
    assert folder == ("fsync", str(target.parent))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="names an fd's file through /proc")
def test_a_curation_unit_commits_its_clip_part_last_in_three_disk_waits(tmp_path, monkeypatch):
    counts = {}
    for rows_per_group in (1, 64):  # 12 row groups or 1: the syncs are the unit's, not the rows'
        output = tmp_path / f"out-{rows_per_group}"
        log = DiskLog(monkeypatch)
        _curate_one_song(tmp_path, str(output), rows_per_group)
        waits = log.waits()
        renames = [index for index, event in enumerate(waits) if event[0] == "rename"]
        renamed = [waits[index][2] for index in renames]
        part = str(output / "clips" / "part-000000.parquet")
        assert renamed[-1] == part, "the clip part, the unit's commit, comes last"
        assert {Path(p).parent.name for p in renamed} == {"rejects", "stats", "clips"}
        # Every file's bytes are on the disk before any name moves (the three syncs are issued
        # together: one wait, not three) ...
        assert sorted(log.synced()[:3]) == sorted(waits[index][1] for index in renames)
        assert renames[0] == 3
        # ... the rejects' and stats' names before the clip part's, and the clip part's after it.
        before_commit = {event[1] for event in waits[: renames[-1]] if event[0] == "fsync"}
        assert {str(Path(p).parent) for p in renamed[:-1]} <= before_commit
        assert waits[renames[-1] + 1 :] == [("fsync", str(Path(part).parent))]
        counts[rows_per_group] = len(log.synced())
    assert counts == {1: 6, 64: 6}


def _curate_one_song(tmp_path: Path, output: str, rows_per_group: int) -> None:
    source = write_audio(tmp_path / "in" / "song.wav", music_like(12, rate=8000), 8000)
    config = CurationConfig.model_validate(
        {
            "inputs": [{"path": str(source.parent)}],
            "output": output,
            "audio": {"sample_rate": 8000},
            "segment": {"window_s": 1, "min_clip_s": 0.5},
            "units": {"rows_per_group": rows_per_group},
            "dedup": False,
        }
    )
    assert run_unit(WorkUnit("000000", (PlannedFile(str(source), source.stat().st_size, 0, None),)), config).clips == 12


@pytest.mark.skipif(durable._sync_file_range() is None, reason="sync_file_range is Linux's")
def test_a_clip_part_starts_for_the_disk_a_row_group_at_a_time_before_its_commit_syncs_it(tmp_path, monkeypatch):
    log = DiskLog(monkeypatch)
    _curate_one_song(tmp_path, str(tmp_path / "out"), rows_per_group=3)
    part = str(tmp_path / "out" / "clips" / "part-000000.parquet")
    first_sync = next(index for index, event in enumerate(log.events) if event[0] == "fsync")
    started = [event for event in log.events if event[0] == "writeback"]
    assert log.events[:first_sync] == started, "every writeback is started before the commit's syncs"
    (temporary,) = {event[1] for event in started}
    assert ("rename", temporary, part) in log.events, "of the clip part's temporary"
    sizes = [int(event[2]) for event in started]
    assert len(sizes) == 4 and sizes == sorted(set(sizes)), "one per row group, each after its group was written"


def test_a_clip_part_bound_for_a_store_asks_this_disk_for_nothing(tmp_path, monkeypatch, torn_store):
    log = DiskLog(monkeypatch)
    _curate_one_song(tmp_path, "torn://bucket/out", rows_per_group=3)
    assert torn_store.exists("/bucket/out/clips/part-000000.parquet")
    assert [event for event in log.events if event[0] == "writeback"] == [], "its temporary is uploaded, not synced"


def test_a_clip_part_stores_its_flac_as_it_is_and_its_small_columns_with_snappy(tmp_path):
    # zstd built a compression context for each small column chunk (37 a row group): 0.6 ms a row
    # group of 8 short clips to write and three times the time to read the keys back, for 6% of a
    # few KB. The values are the same either way; this holds the choice.
    _curate_one_song(tmp_path, str(tmp_path / "out"), rows_per_group=3)
    metadata = pq.ParquetFile(tmp_path / "out" / "clips" / "part-000000.parquet").metadata
    codecs: dict[str, set[str]] = {}
    for group in range(metadata.num_row_groups):
        for column in range(metadata.num_columns):
            name = metadata.schema.column(column).name
            codecs.setdefault(name, set()).add(metadata.row_group(group).column(column).compression)
    assert metadata.num_row_groups == 4 and codecs.pop("audio_flac") == {"UNCOMPRESSED"}
    assert len(codecs) == 37 and set.union(*codecs.values()) == {"SNAPPY"}


class TornUploads(MemoryFileSystem):
    """An object store without atomic uploads (like sftp, HDFS or SMB): an upload cut by a crash
    leaves the bytes it had sent under the name it was writing."""

    protocol = "torn"
    store: dict = {}
    pseudo_dirs = [""]
    cut = False

    @classmethod
    def _strip_protocol(cls, path: str) -> str:
        return super()._strip_protocol(path.replace("torn://", "memory://", 1))

    def put_file(self, lpath, rpath, **kwargs) -> None:
        data = Path(lpath).read_bytes()
        if type(self).cut:
            self.pipe_file(rpath, data[: len(data) // 2])
            raise ConnectionResetError("upload cut short")
        super().put_file(lpath, rpath, **kwargs)


@pytest.fixture
def torn_store():
    fsspec.register_implementation("torn", TornUploads, clobber=True)
    TornUploads.store.clear()
    yield TornUploads()
    TornUploads.cut = False
    TornUploads.store.clear()


def test_a_store_without_atomic_uploads_never_shows_a_torn_file(torn_store):
    TornUploads.cut = True
    with pytest.raises(ConnectionResetError):
        write_bytes_atomic("torn://bucket/clips/part-000000.parquet", b"x" * 1000)
    assert not torn_store.exists("/bucket/clips/part-000000.parquet"), "a torn upload must not be taken as done"
    assert torn_store.find("/bucket") == [], "nor left behind under another name"

    TornUploads.cut = False
    write_bytes_atomic("torn://bucket/clips/part-000000.parquet", b"y" * 1000)
    assert torn_store.cat_file("/bucket/clips/part-000000.parquet") == b"y" * 1000
    assert torn_store.find("/bucket") == ["/bucket/clips/part-000000.parquet"]


def test_an_unknown_scheme_is_named():
    with pytest.raises(SchemeUnavailable, match=r"unknown scheme s4://"):
        filesystem("s4://bucket/out")


@pytest.mark.skipif(importlib.util.find_spec("gcsfs") is not None, reason="gcsfs is installed here")
def test_a_scheme_without_its_package_names_the_package():
    # s3fs is installed here (the s3 extra); gcsfs is not (the gcs extra is not in `all`)
    with pytest.raises(SchemeUnavailable, match=r"gs:// scheme needs the gcsfs package.*pip install gcsfs"):
        filesystem("gs://bucket/out")
