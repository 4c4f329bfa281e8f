"""Another writer, as a real process: it takes an output folder's lease, leaves a temporary
there as a writer does, and waits until it is killed."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEMPORARY = ".part-000001.parquet.0123.tmp.parquet"

SCRIPT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from curation.core.lease import OutputLease
lease = OutputLease(sys.argv[2], sys.argv[3])
lease.acquire()
open(sys.argv[2] + "/" + sys.argv[4], "wb").write(b"half a part")
print("held", flush=True)
time.sleep(300)
"""


@contextlib.contextmanager
def other_writer(folder: Path, command: str = "soundry curate") -> Iterator[subprocess.Popen]:
    """A live process holding `folder`'s lease; killed (kill -9) when the block ends."""
    process = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(ROOT), str(folder), command, TEMPORARY], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "held"
        yield process
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
