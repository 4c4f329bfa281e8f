"""librosa's kernels are compiled by one process of a machine at a time (numba's cache is not
safe against two processes compiling the same kernel at once)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labeling.music.compile_once import LOCK_NAME

# The first analysis of a process loads librosa's lazy modules and cached kernels (seconds): done
# before the lock is asked for, so that what the lock holds up is the compiling step alone.
_COMPILE = """
import sys
from labeling.music.analysis import analyze
from labeling.music.compile_once import _made_up_piece, compile_kernels
from labeling.music.config import AnalysisSettings
settings = AnalysisSettings()
analyze(_made_up_piece(settings.sample_rate), settings)
open(sys.argv[1], "w").close()
compile_kernels(settings)
open(sys.argv[2], "w").close()
"""


def _wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def test_a_process_waits_for_the_one_compiling(tmp_path):
    ready, done = tmp_path / "imported", tmp_path / "compiled"
    repository = Path(__file__).resolve().parents[3]
    with open(os.path.join(tempfile.gettempdir(), LOCK_NAME), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # as another process compiling would hold it
        worker = subprocess.Popen([sys.executable, "-c", _COMPILE, str(ready), str(done)], cwd=repository)
        try:
            _wait_for(ready, 120)
            time.sleep(1.5)  # with the kernels cached, the analysis itself takes about 0.1 s
            assert worker.poll() is None and not done.exists()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    assert worker.wait(timeout=120) == 0
    assert done.exists()
