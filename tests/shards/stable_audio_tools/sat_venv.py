"""stable-audio-tools' own venv, built once from requirements.lock (+ the package itself with
--no-deps) under build/ and reused while the lock is unchanged."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).parent
PACKAGE = "stable-audio-tools==0.0.19"
# uv's words for a package index or file it could not reach: the one failure that skips.
UNREACHABLE = ("Failed to fetch", "error sending request", "dns error", "Could not connect", "Failed to download")


def find_links() -> list[str]:
    """Local wheel folders, as the Makefile passes them on (the CPU torch wheel lies in one here)."""
    configured = subprocess.run(
        [sys.executable, "-m", "pip", "config", "get", "global.find-links"], capture_output=True, text=True
    ).stdout
    return [*os.environ.get("PIP_FIND_LINKS", "").split(), *configured.split()]


def stable_audio_tools_python(repo: Path) -> Path:
    """The venv's python; skips the calling test when the packages cannot be downloaded."""
    lock = (HERE / "requirements.lock").read_bytes()
    digest = hashlib.sha256(lock + PACKAGE.encode()).hexdigest()[:12]
    venv = repo / "build" / f"stable-audio-tools-{digest}"
    python = venv / "bin" / "python"
    if (venv / ".complete").exists():
        return python
    building = venv.with_name(venv.name + ".partial")
    shutil.rmtree(building, ignore_errors=True)
    uv = str(Path(sys.executable).parent / "uv")
    links = [arg for folder in find_links() for arg in ("--find-links", folder)]
    steps = [
        [uv, "venv", "-q", "--python", sys.executable, str(building)],
        [
            uv,
            "pip",
            "sync",
            "-q",
            "--compile-bytecode",
            "--python",
            str(building / "bin" / "python"),
            *links,
            str(HERE / "requirements.lock"),
        ],
        [
            uv,
            "pip",
            "install",
            "-q",
            "--compile-bytecode",
            "--python",
            str(building / "bin" / "python"),
            "--no-deps",
            PACKAGE,
        ],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            if any(phrase in done.stderr for phrase in UNREACHABLE):
                pytest.skip(
                    f"stable-audio-tools' packages cannot be fetched here: {done.stderr.strip().splitlines()[-1]}"
                )
            raise RuntimeError(f"building stable-audio-tools' venv failed: {' '.join(step)}\n{done.stderr}")
    (building / ".complete").touch()
    shutil.rmtree(venv, ignore_errors=True)
    building.rename(venv)
    return python
