"""Leases on output folders, with real processes: a live writer keeps its folder, a dead one's
folder is taken over with a notice, a writer on another host is judged by its heartbeat."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from lease_holder import TEMPORARY, other_writer

from curation.core.lease import LEASE, LeaseHeld, LeaseLost, OutputLease
from curation.core.storage import write_bytes_exclusive


@pytest.mark.slow
def test_a_live_writer_keeps_its_folder_and_a_dead_ones_is_taken_over(tmp_path):
    folder = tmp_path / "out"
    temporary = folder / TEMPORARY
    with other_writer(folder) as holder:
        with pytest.raises(LeaseHeld) as refused:
            OutputLease(str(folder), "soundry publish").acquire()
        message = str(refused.value)
        assert f"process {holder.pid}" in message and "soundry curate" in message and "host " in message
        assert temporary.exists(), "a live writer's temporary must survive a refused second writer"

    notices: list[str] = []
    with OutputLease(str(folder), "soundry publish", notices.append) as lease:
        assert len(notices) == 1 and f"process {holder.pid} no longer runs" in notices[0]
        held = json.loads((folder / LEASE).read_text())
        assert held["pid"] == os.getpid() and held["command"] == "soundry publish"
        assert lease.remove_stale_temporaries() == 1 and not temporary.exists()
        lease.check()
    assert not (folder / LEASE).exists(), "a released lease leaves nothing behind"


def test_temporaries_are_removed_only_by_the_holder(tmp_path):
    lease = OutputLease(str(tmp_path / "out"), "soundry curate")
    with pytest.raises(RuntimeError, match="only while holding"):
        lease.remove_stale_temporaries()


def write_foreign_lease(folder: Path, heartbeat_age_s: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    holder = {
        "token": "t" * 32,
        "command": "soundry curate",
        "owner": "alice",
        "host": "another-host.example",
        "pid": 4242,
        "pid_started": 1,
        "boot_id": "another-boot",
        "started": "2026-01-01T00:00:00+00:00",
        "heartbeat": time.time() - heartbeat_age_s,
        "stale_after_s": 60.0,
    }
    (folder / LEASE).write_text(json.dumps(holder))


def test_a_writer_on_another_host_is_judged_by_its_heartbeat(tmp_path):
    fresh = tmp_path / "fresh"
    write_foreign_lease(fresh, heartbeat_age_s=5)
    with pytest.raises(LeaseHeld, match="user alice on host another-host.example, process 4242"):
        OutputLease(str(fresh), "soundry curate").acquire()

    silent = tmp_path / "silent"
    write_foreign_lease(silent, heartbeat_age_s=600)
    notices: list[str] = []
    with OutputLease(str(silent), "soundry curate", notices.append):
        assert "no heartbeat for 600 s" in notices[0]


def test_a_job_whose_lease_was_taken_over_does_not_commit(tmp_path):
    folder = tmp_path / "out"
    with OutputLease(str(folder), "soundry curate") as lease:
        write_foreign_lease(folder, heartbeat_age_s=0)  # what a job that found this one dead would leave
        with pytest.raises(LeaseLost, match="took its lease over"):
            lease.check()
    assert json.loads((folder / LEASE).read_text())["host"] == "another-host.example", "the taker's lease stays"


def test_object_store_leases_are_conditional_creates():
    url = "memory://leases/out"
    with OutputLease(url, "soundry curate"):
        with pytest.raises(LeaseHeld, match="soundry curate"):
            OutputLease(url, "soundry publish").acquire()
    with OutputLease(url, "soundry publish"):
        pass


@pytest.mark.parametrize("url", ["{tmp}/v1/manifest.json", "memory://versions/v1/manifest.json"])
def test_put_if_absent_writes_once(tmp_path, url):
    url = url.format(tmp=tmp_path)
    write_bytes_exclusive(url, b"first")
    with pytest.raises(FileExistsError):
        write_bytes_exclusive(url, b"second")
    import fsspec

    assert fsspec.open(url, "rb").open().read() == b"first"
