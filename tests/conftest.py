import os
import sys
from pathlib import Path

import pytest

# Tests import their helpers (tests/audio_files.py) by module name.
sys.path.insert(0, str(Path(__file__).parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="session")
def demo_corpus(tmp_path_factory):
    """A small demo corpus (7 pieces, 20-24 s, every format), made once per test session."""
    from curation.demo.corpus import generate_demo_corpus

    folder = tmp_path_factory.mktemp("demo-corpus")
    pieces = generate_demo_corpus(folder, n_pieces=7, seed=3, min_duration_s=20, max_duration_s=24)
    return folder, pieces


@pytest.fixture(scope="session")
def s3(tmp_path_factory):
    """A real S3 API on localhost (moto's server, tests/s3_server.py) with one bucket; its endpoint
    and dummy credentials in the environment for this session, as a user's would be."""
    from s3_server import s3_server

    with s3_server(tmp_path_factory.mktemp("s3-server") / "server.log") as server, pytest.MonkeyPatch.context() as env:
        for name, value in server.environment().items():
            env.setenv(name, value)
        yield server
