"""Leases on output folders: one live writer per folder; a crashed writer's folder is taken over.

Every stage that writes an output folder holds its lease while it writes: the file
`.soundry-lease.json` in the folder, created put-if-absent (a hard link on local disk, a
conditional create on object stores) and holding who writes (user, host, process, command)
and a heartbeat the holder refreshes every HEARTBEAT_S seconds. A second writer finds it and
is refused with the holder's name, unless the holder is gone:
- on the holder's own host, its process no longer runs (or its pid now belongs to another
  process, or the machine rebooted);
- from another host, its heartbeat is older than the stale_after_s it recorded.
A stale lease is taken over with a notice, and only then are the dead writer's temporaries
removed: a live writer's are never touched.

Takeover on local disk is serialized by an advisory lock (flock) on the folder itself, so
of two jobs that find the same stale lease one takes it and the other is refused. Object
stores have no compare-and-delete: two jobs that find a stale lease in the same instant may
both remove it, and only one conditional create succeeds; the other is refused.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import getpass
import json
import os
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from curation.core.errors import UserError
from curation.core.storage import (
    filesystem,
    is_local,
    join,
    remove_stale_temporaries,
    temporary_name,
    write_bytes_exclusive,
)

LEASE = ".soundry-lease.json"
HEARTBEAT_S = 10.0
# A lease from another host is stale when its heartbeat is older than this: six missed beats.
STALE_AFTER_S = 60.0
UNREADABLE = "unreadable"  # the token of a lease file that is not one of ours or was cut short


class LeaseHeld(UserError):
    """Another live job writes the output folder; the message names it."""


class LeaseLost(UserError):
    """This job's lease was taken over by another job while it ran (its host thought it dead)."""


@dataclasses.dataclass(frozen=True)
class Holder:
    token: str
    command: str
    owner: str
    host: str
    pid: int
    pid_started: int | None  # the process's start time in clock ticks since boot (Linux), against pid reuse
    boot_id: str | None  # the host's boot (Linux), against a reboot that reused the pid
    started: str
    heartbeat: float  # seconds since the epoch, on the holder's clock
    stale_after_s: float = STALE_AFTER_S

    @classmethod
    def this_process(cls, command: str) -> Holder:
        return cls(
            token=uuid.uuid4().hex,
            command=command,
            owner=_user(),
            host=socket.gethostname(),
            pid=os.getpid(),
            pid_started=_process_start(os.getpid()),
            boot_id=_boot_id(),
            started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            heartbeat=time.time(),
        )

    @classmethod
    def from_json(cls, data: bytes) -> Holder:
        fields = json.loads(data)
        return cls(**{f.name: fields[f.name] for f in dataclasses.fields(cls) if f.name in fields})

    def to_json(self) -> bytes:
        return (json.dumps(dataclasses.asdict(self), indent=2) + "\n").encode()

    def describe(self) -> str:
        if self.token == UNREADABLE:
            return "a job whose lease file cannot be read"
        age = max(0.0, time.time() - self.heartbeat)
        return (
            f"{self.command} (user {self.owner} on host {self.host}, process {self.pid}, since {self.started}, "
            f"last heartbeat {age:.0f} s ago)"
        )

    def gone_because(self) -> str | None:
        """Why this holder is gone, or None while it may still be writing."""
        if self.host != socket.gethostname():
            age = time.time() - self.heartbeat
            return f"no heartbeat for {age:.0f} s" if age > self.stale_after_s else None
        if self.boot_id and _boot_id() and self.boot_id != _boot_id():
            return "its host rebooted since"
        return _process_gone(self.pid, self.pid_started)


class OutputLease:
    """`with OutputLease(url, "soundry curate") as lease:` writes into `url` alone.

    `notice` receives the one line said when a stale lease is taken over (default: stderr).
    """

    def __init__(self, url: str, command: str, notice: Callable[[str], None] | None = None) -> None:
        self.url = url
        self.command = command
        self.notice = notice or (lambda text: print(text, file=sys.stderr))
        self.fs, self.folder = filesystem(url)
        self.path = join(self.folder, LEASE)
        self.holder: Holder | None = None
        self.lost_to: Holder | None = None
        self._made_folder = False
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def __enter__(self) -> OutputLease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        self._made_folder = not self.fs.exists(self.folder)
        mine = Holder.this_process(self.command)
        for _ in range(5):
            try:
                write_bytes_exclusive(self._url(self.path), mine.to_json())
            except FileExistsError:
                pass  # held: see by whom below
            except FileNotFoundError:
                continue  # a holder cleared our temporary while starting up: look again
            else:
                self._hold(mine)
                return
            found = self._read()
            if found is None:
                continue  # released meanwhile: try again
            reason = found.gone_because()
            if reason is None:
                raise LeaseHeld(
                    f"{self.url} is being written by {found.describe()}; wait for that job to finish or stop it "
                    f"(a job that died on another host releases its lease {found.stale_after_s:.0f} s after its "
                    f"last heartbeat; delete {self._url(self.path)} only if you know that job is gone)"
                )
            if self._take_over(found, mine):
                self.notice(
                    f"{self.url}: taking over the lease of {found.describe()}: {reason}; "
                    "its temporary files will be removed"
                )
                self._hold(mine)
                return
        raise LeaseHeld(f"{self.url}: other jobs keep taking and releasing its lease; try again when they are done")

    def release(self) -> None:
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        if self.holder is not None and self.lost_to is None:
            found = self._read()
            if found is not None and found.token == self.holder.token:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(self.path)
            if self._made_folder:
                self._remove_folder_if_empty()
        self.holder = None

    def _remove_folder_if_empty(self) -> None:
        """A job that failed before writing anything (a mistyped input) leaves no folder behind."""
        with contextlib.suppress(OSError):
            if is_local(self.fs):
                os.rmdir(self.folder)  # refuses a folder that holds anything
            elif not self.fs.ls(self.folder, detail=False):
                self.fs.rmdir(self.folder)

    def check(self) -> None:
        """Refuse to commit when another job took this lease over meanwhile."""
        found = self._read()
        if self.holder is not None and (found is None or found.token != self.holder.token):
            self.lost_to = found or self.lost_to
            taker = found.describe() if found else "a job that has already finished"
            raise LeaseLost(
                f"{self.url}: while this job ran, {taker} took its lease over (it thought this job dead); "
                "two jobs wrote here: run the command again once the other has finished"
            )

    def remove_stale_temporaries(self) -> int:
        """Clear what dead writers left half-written: only the lease's holder may."""
        if self.holder is None:
            raise RuntimeError(f"{self.url}: temporaries are removed only while holding the folder's lease")
        return remove_stale_temporaries(self.url)

    def _hold(self, mine: Holder) -> None:
        self.holder = mine
        self._stop.clear()
        self._beat = threading.Thread(target=self._heartbeat, name=f"lease {self.url}", daemon=True)
        self._beat.start()

    def _heartbeat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                found = self._read()
            except Exception:
                # The store did not answer this once (a network blip; botocore's errors are not
                # OSErrors): try at the next beat. A beat thread that died would let the lease go
                # stale under a live job, and another host would take it over.
                continue
            if self.holder is None or found is None or found.token != self.holder.token:
                self.lost_to = found
                return  # check() says so at the next commit
            with contextlib.suppress(Exception):  # likewise: the next beat writes again
                self._write(dataclasses.replace(self.holder, heartbeat=time.time()))

    def _write(self, holder: Holder) -> None:
        """Refresh the lease file whole: a rename locally, one upload on object stores."""
        if is_local(self.fs):
            beat = temporary_name(self.path)  # a beat cut short by kill -9 is cleared like any temporary
            with open(beat, "wb") as f:
                f.write(holder.to_json())
            os.replace(beat, self.path)
        else:
            self.fs.pipe_file(self.path, holder.to_json())

    def _read(self) -> Holder | None:
        try:
            data = self.fs.cat_file(self.path)
        except FileNotFoundError:
            return None
        try:
            return Holder.from_json(data)
        except (ValueError, TypeError, KeyError):
            # Not ours, or a copy cut short: stale like any other after its age says so.
            return Holder(UNREADABLE, "?", "?", "?", -1, None, None, "?", self._mtime())

    def _mtime(self) -> float:
        with contextlib.suppress(OSError, KeyError, TypeError, AttributeError):
            return self.fs.modified(self.path).timestamp()
        return 0.0

    def _take_over(self, stale: Holder, mine: Holder) -> bool:
        """Replace the stale lease with ours; False when it changed hands meanwhile."""
        with self._takeover_lock():
            found = self._read()
            if found is None or found.token != stale.token:
                return False
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(self.path)
            try:
                write_bytes_exclusive(self._url(self.path), mine.to_json())
            except (FileExistsError, FileNotFoundError):
                return False
            return True

    @contextlib.contextmanager
    def _takeover_lock(self) -> Iterator[None]:
        if not is_local(self.fs):
            yield
            return
        import fcntl

        fd = os.open(self.folder, os.O_RDONLY)  # the folder itself: no lock file left in an output
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _url(self, path: str) -> str:
        return path if is_local(self.fs) else self.fs.unstrip_protocol(path)


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def _boot_id() -> str | None:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return None


def _process_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) from /proc, or None without /proc."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            text = f.read()
    except FileNotFoundError:
        return ("X", 0)
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after the command name, which may hold spaces and parentheses
    return fields[0], int(fields[19])


def _process_start(pid: int) -> int | None:
    stat = _process_stat(pid)
    return stat[1] if stat else None


def _process_gone(pid: int, started: int | None) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return f"process {pid} no longer runs"
    except PermissionError:
        pass  # it runs, as another user
    stat = _process_stat(pid)
    if stat is None:
        return None
    state, start = stat
    if state in ("Z", "X"):
        return f"process {pid} no longer runs"
    if started is not None and start != started:
        return f"process {pid} no longer runs (another process has its number now)"
    return None
