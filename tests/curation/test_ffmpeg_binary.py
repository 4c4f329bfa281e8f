import os
import shutil

import pytest

from curation.ffmpeg_binary import FFmpegNotFound, find_ffmpeg


def test_system_ffmpeg_first_then_the_wheel(monkeypatch, tmp_path):
    fake = tmp_path / "ffmpeg"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    find_ffmpeg.cache_clear()
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_ffmpeg() == str(fake)
    find_ffmpeg.cache_clear()
    monkeypatch.setenv("PATH", "/nonexistent")
    assert "imageio_ffmpeg" in find_ffmpeg()
    find_ffmpeg.cache_clear()


def test_configured_binary(tmp_path):
    wheel = find_ffmpeg()
    assert find_ffmpeg(wheel) == wheel
    with pytest.raises(FFmpegNotFound, match="decode.ffmpeg = .*not an executable"):
        find_ffmpeg(str(tmp_path / "missing-ffmpeg"))
    assert shutil.which("ffmpeg") is None or os.access(find_ffmpeg(), os.X_OK)
