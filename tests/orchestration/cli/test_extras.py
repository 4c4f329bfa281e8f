"""The core install: curation on the local engine works without any extra, and a command that
needs a missing extra says which one to install."""

import os
import subprocess
import sys

import pytest

from curation.core.extras import MissingExtra, needs_extra

# Processes where the optional packages cannot be imported, as after `pip install soundry` alone:
# a sitecustomize module blocks them in the command's process and in every worker it starts
# (the local engine's forkserver starts fresh interpreters).
BLOCKER = """
import importlib.abc, os, sys
blocked = set(os.environ["SOUNDRY_TEST_NOT_INSTALLED"].split(","))

class NotInstalled(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NotInstalled())
"""
SCRIPT = """
import os, sys
from orchestration.cli.main import main
code = main(sys.argv[1:])
blocked = set(os.environ["SOUNDRY_TEST_NOT_INSTALLED"].split(","))
print("LOADED", ",".join(sorted(blocked & {name.split(".")[0] for name in sys.modules})))
sys.exit(code)
"""
# pandas too: pyarrow uses it where it is installed, but no core dependency brings it.
EXTRAS = "ray,apache_beam,laion_clap,transformers,tensorboard,wandb,librosa,pandas"


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("site")
    (folder / "sitecustomize.py").write_text(BLOCKER)
    return folder


@pytest.fixture(scope="module")
def soundry_without_extras(site):
    def run(*argv: str) -> subprocess.CompletedProcess:
        paths = [str(site), os.environ.get("PYTHONPATH", "")]
        env = {**os.environ, "SOUNDRY_TEST_NOT_INSTALLED": EXTRAS, "PYTHONPATH": os.pathsep.join(p for p in paths if p)}
        return subprocess.run(
            [sys.executable, "-c", SCRIPT, *argv], capture_output=True, text=True, timeout=300, env=env
        )

    return run


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, soundry_without_extras):
    folder = tmp_path_factory.mktemp("core") / "corpus"
    done = soundry_without_extras(
        "demo-corpus", str(folder), "--pieces", "2", "--min-duration", "10", "--max-duration", "11"
    )
    assert done.returncode == 0, done.stderr
    return folder


def test_local_curation_needs_no_extra(corpus, tmp_path, soundry_without_extras):
    # Two workers: the pool's processes import the stage's modules too.
    done = soundry_without_extras("curate", str(corpus), "--output", str(tmp_path / "out"), "--runner.workers", "2")
    assert done.returncode == 0, done.stderr
    assert list((tmp_path / "out" / "clips").glob("part-*.parquet"))
    assert "LOADED \n" in done.stdout


@pytest.mark.parametrize(("engine", "extra"), [("ray", "soundry[ray]"), ("beam", "soundry[beam]")])
def test_an_engine_without_its_extra_names_it(corpus, tmp_path, engine, extra, soundry_without_extras):
    done = soundry_without_extras("curate", str(corpus), "--output", str(tmp_path / "out"), "--runner.name", engine)
    assert done.returncode == 2
    assert extra in done.stderr and "Traceback" not in done.stderr


def test_analyze_without_its_extra_names_it(tmp_path, soundry_without_extras):
    from music_signals import write_music_clip_table

    clips = write_music_clip_table(tmp_path / "curated")
    # Several units on two workers: the command itself names the extra, before any worker fails.
    done = soundry_without_extras(
        "analyze", "--clips", clips, "--output", str(tmp_path / "out"), "--clips_per_unit", "2", "--runner.workers", "2"
    )
    assert done.returncode == 2
    assert "soundry[analysis]" in done.stderr and "Traceback" not in done.stderr


def test_a_missing_package_inside_an_installed_one_is_not_blamed_on_an_extra():
    with pytest.raises(ModuleNotFoundError):
        with needs_extra("ray", "a test", "ray"):
            import ray._no_such_module  # noqa: F401  ray is installed here; its part is not
    with pytest.raises(MissingExtra, match=r"pip install 'soundry\[ray\]'"):
        with needs_extra("ray", "a test", "ray"):
            raise ModuleNotFoundError("No module named 'ray'", name="ray")
