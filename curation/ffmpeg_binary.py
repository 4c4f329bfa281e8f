"""Find the ffmpeg executable: a configured path, else the system's, else the static
build that ships inside the imageio-ffmpeg wheel.

The system build comes first because it decodes about 1.7x faster than the static one
(README, "Install and the two commands"); the wheel's binary means a machine with nothing installed by
hand still works.
"""

from __future__ import annotations

import functools
import os
import shutil

from curation.core.errors import UserError


class FFmpegNotFound(UserError, RuntimeError):
    """No usable ffmpeg binary; the message says what to install or configure."""


@functools.lru_cache(maxsize=8)
def find_ffmpeg(configured: str | None = None) -> str:
    if configured:
        path = shutil.which(configured) or (configured if os.access(configured, os.X_OK) else None)
        if path is None:
            raise FFmpegNotFound(
                f"decode.ffmpeg = {configured!r} is not an executable file; "
                "give the path of an ffmpeg binary or leave the option empty to find one"
            )
        return path
    system = shutil.which("ffmpeg")
    if system:
        return system
    try:
        import imageio_ffmpeg

        return imageio_ffmpeg.get_ffmpeg_exe()
    except (ImportError, RuntimeError) as error:
        raise FFmpegNotFound(
            "no ffmpeg found: install ffmpeg (e.g. apt-get install ffmpeg), "
            "pip install imageio-ffmpeg, or set decode.ffmpeg to a binary's path"
        ) from error
