"""Storage and leases against a real S3 API (moto's server, the `s3` fixture): what S3's
semantics change from local disk (no rename, listings, conditional writes), with real processes."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pytest

from curation.core.lease import LEASE, LeaseHeld, OutputLease
from curation.core.storage import (
    OutputError,
    exists,
    filesystem,
    list_files,
    read_json,
    read_table,
    write_bytes_exclusive,
    write_json_atomic,
    write_table_atomic,
)

ROOT = Path(__file__).resolve().parents[3]

# A writer in its own process. Both writers of a race meet at a barrier just before their upload
# is committed, after every check either could make: whatever one sees, the other has not
# written yet. Only the store's conditional write can then refuse the second.
RACER = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
import s3fs.core

barrier, me, other = sys.argv[2], sys.argv[3], sys.argv[4]
commit = s3fs.core.S3File.commit

def commit_after_the_other_is_ready(self):
    open(os.path.join(barrier, me), "w").close()
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(barrier, other)) and time.monotonic() < deadline:
        time.sleep(0.01)
    commit(self)

s3fs.core.S3File.commit = commit_after_the_other_is_ready
what, url = sys.argv[5], sys.argv[6]
if what == "manifest":
    from curation.core.storage import write_bytes_exclusive
    try:
        write_bytes_exclusive(url, me.encode())
        print("won", flush=True)
    except FileExistsError:
        print("refused", flush=True)
else:
    from curation.core.lease import LeaseHeld, OutputLease
    try:
        OutputLease(url, "soundry " + me).acquire()
        print("won", flush=True)
    except LeaseHeld as error:
        print("refused", error, flush=True)
sys.stdin.read()  # a lease holder stays alive until the test has seen both answers
"""


@contextlib.contextmanager
def race(what: str, url: str, barrier: Path) -> Iterator[list[str]]:
    """Two processes write `url` at the same instant; their answers, first line each. They live
    (a lease's winner holds it) until the block ends."""
    barrier.mkdir()
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(ROOT), str(barrier), me, other, what, url],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for me, other in (("one", "two"), ("two", "one"))
    ]
    try:
        yield [racer.stdout.readline().strip() for racer in racers]
    finally:
        for racer in racers:
            racer.communicate("", timeout=60)


@pytest.mark.slow
def test_of_two_processes_publishing_the_same_manifest_the_server_refuses_the_second(s3, tmp_path):
    url = s3.url(f"race-{uuid.uuid4().hex}", "manifest.json")
    with race("manifest", url, tmp_path / "barrier") as answers:
        assert sorted(answers) == ["refused", "won"]
        fs, path = filesystem(url)
        winner = ["one", "two"][answers.index("won")]
        assert fs.cat_file(path) == winner.encode()  # the first commit stands, whole
    with pytest.raises(FileExistsError):
        write_bytes_exclusive(url, b"a third writer, later")


@pytest.mark.slow
def test_of_two_processes_taking_one_lease_the_server_refuses_the_second(s3, tmp_path):
    folder = s3.url(f"leased-{uuid.uuid4().hex}")
    with race("lease", folder, tmp_path / "barrier") as answers:
        won, refused = sorted(answers, key=lambda a: a != "won")
        assert won == "won" and refused.startswith(f"refused {folder} is being written by soundry ")
        with pytest.raises(LeaseHeld):  # and the winner holds it for as long as it lives
            OutputLease(folder, "soundry third").acquire()
        assert exists(f"{folder}/{LEASE}")


def test_an_object_another_process_wrote_is_seen_after_this_process_listed_its_folder(s3):
    folder = s3.url(f"listed-{uuid.uuid4().hex}")
    write_table_atomic(f"{folder}/part-0.parquet", pa.table({"x": [0]}))
    assert [u.rsplit("/", 1)[1] for u in list_files(folder, ".parquet")] == ["part-0.parquet"]
    write = (
        "import pyarrow as pa; from curation.core.storage import write_table_atomic; "
        f"write_table_atomic('{folder}/part-1.parquet', pa.table({{'x': [1]}}))"
    )
    subprocess.run([sys.executable, "-c", write], check=True, cwd=ROOT)
    assert [u.rsplit("/", 1)[1] for u in list_files(folder, ".parquet")] == ["part-0.parquet", "part-1.parquet"]
    assert exists(f"{folder}/part-1.parquet")
    assert read_table(f"{folder}/part-1.parquet").to_pylist() == [{"x": 1}]


def test_an_atomic_write_to_s3_is_one_upload_to_the_final_name(s3):
    """S3 has no rename: a temporary and a move would be an upload, a copy and a delete. One
    upload is all-or-nothing there, so nothing else is sent, and no temporary name ever exists."""
    folder = s3.url(f"atomic-{uuid.uuid4().hex}")
    before = len(s3.requests())
    write_table_atomic(f"{folder}/part-0.parquet", pa.table({"x": [0]}))
    write_json_atomic(f"{folder}/summary.json", {"clips": 1})
    assert read_json(f"{folder}/summary.json") == {"clips": 1}
    sent = [line for line in s3.requests()[before:] if not line.startswith(("GET ", "HEAD "))]
    prefix = folder.removeprefix("s3://")
    assert sent == [f"PUT /{prefix}/part-0.parquet HTTP/1.1", f"PUT /{prefix}/summary.json HTTP/1.1"]


def test_an_output_in_a_missing_bucket_is_refused_and_no_bucket_is_made(s3):
    import boto3

    folder = f"s3://missing-{uuid.uuid4().hex[:12]}/curated"
    with pytest.raises(OutputError, match=rf"the bucket {folder[5:-8]} does not exist.*create it or correct the URL"):
        OutputLease(folder, "soundry curate").acquire()
    assert [b["Name"] for b in boto3.client("s3").list_buckets()["Buckets"]] == [s3.bucket]


def test_a_lease_keeps_beating_after_the_store_did_not_answer_for_a_while(s3, monkeypatch):
    import s3fs

    import curation.core.lease as lease_module

    monkeypatch.setattr(lease_module, "HEARTBEAT_S", 0.1)
    lease = OutputLease(s3.url(f"blip-{uuid.uuid4().hex}"), "soundry curate")
    lease.acquire()
    try:
        store = lease.fs
        # The same bucket behind an endpoint that refuses connections: botocore's
        # EndpointConnectionError at every beat meanwhile.
        lease.fs = s3fs.S3FileSystem(
            endpoint_url="http://127.0.0.1:9", skip_instance_cache=True, config_kwargs={"retries": {"max_attempts": 1}}
        )
        time.sleep(1.0)
        lease.fs = store
        before = lease._read().heartbeat
        # A beat may still be retrying the dead endpoint (s3fs's retries of one refused read take
        # 0.7 s here, more under load): the next beat after it must write again, whenever it comes.
        deadline = time.monotonic() + 15
        while lease._read().heartbeat <= before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert lease._beat.is_alive() and lease._read().heartbeat > before
        lease.check()
    finally:
        lease.release()
    assert not exists(f"{lease.url}/{LEASE}")
