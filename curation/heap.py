"""Keep freed memory in the process's heap for reuse instead of handing it back at once.

Curating a clip allocates and frees arrays of 0.5 to 10 MB (decoded blocks, filter copies,
spectra). glibc serves blocks that large with mmap and unmaps them on free, and trims the
heap top past 128 KB, so every new array is fresh pages from the kernel: on 1-3 s files that
was ~600 page faults and ~1.5 ms of kernel time per file, more than a WAV takes to decode.
Fixed thresholds keep freed pages for the next clip. What a worker holds stays bounded:
at most its peak, which the configuration bounds, plus M_TRIM_THRESHOLD of slack.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 2**20  # glibc's largest; bigger blocks (hour-long arrays) still get their own mapping
TRIM_THRESHOLD = 64 * 2**20


@functools.cache
def retain_freed_memory() -> bool:
    """Set the thresholds once per process; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
