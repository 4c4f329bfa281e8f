"""Reading a tar: members grouped by key in order; a truncated tar gives its whole samples, then BrokenShard."""

from __future__ import annotations

import io
import tarfile

import pytest

from shards.loader.tars import BrokenShard, read_tar_samples

MEMBERS = [("a.json", b"{}"), ("a.FLAC", b"x" * 2000), ("b.json", b"[]"), ("b.flac", b"y" * 2000), ("c.json", b"1")]


def write_tar(path, members) -> None:
    with tarfile.open(path, "w") as archive:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_members_of_a_key_become_one_sample_in_order(tmp_path):
    write_tar(tmp_path / "s.tar", MEMBERS)
    samples = list(read_tar_samples(str(tmp_path / "s.tar")))
    assert [s["__key__"] for s in samples] == ["a", "b", "c"]
    assert samples[0] == {"__key__": "a", "__url__": str(tmp_path / "s.tar"), "json": b"{}", "flac": b"x" * 2000}


def test_a_truncated_tar_yields_its_whole_samples_then_names_the_broken_one(tmp_path):
    write_tar(tmp_path / "s.tar", MEMBERS)
    data = (tmp_path / "s.tar").read_bytes()
    (tmp_path / "cut.tar").write_bytes(data[: data.index(b"y" * 100) + 100])  # inside b's FLAC
    samples = []
    with pytest.raises(BrokenShard, match="in sample b") as broken:
        samples.extend(read_tar_samples(str(tmp_path / "cut.tar")))
    assert [s["__key__"] for s in samples] == ["a"] and broken.value.partial == "b"


def test_a_missing_tar_is_a_broken_shard_with_no_partial_sample(tmp_path):
    with pytest.raises(BrokenShard) as broken:
        list(read_tar_samples(str(tmp_path / "missing.tar")))
    assert broken.value.partial is None
