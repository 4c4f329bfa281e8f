"""Cut a stream of blocks into clips by sample count, never by seeking.

Counting decoded samples makes every cut sample-exact for any codec (no drift on
mp3/opus/aac, whose seeks are approximate) and keeps memory at one window plus one block.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import numpy as np


@dataclasses.dataclass(frozen=True)
class Windows:
    """Window, hop and shortest clip, in samples at the training rate."""

    window: int
    hop: int
    min_length: int

    def __post_init__(self) -> None:
        # A hop of 0 samples never advances: the segmenter would cut the same clip forever.
        if self.window < 1 or self.hop < 1:
            raise ValueError(f"window ({self.window}) and hop ({self.hop}) must be at least one sample")

    @classmethod
    def from_seconds(cls, window_s: float, hop_s: float, min_clip_s: float, sample_rate: int) -> Windows:
        return cls(round(window_s * sample_rate), round(hop_s * sample_rate), max(1, round(min_clip_s * sample_rate)))


@dataclasses.dataclass(frozen=True)
class Piece:
    start: int  # first sample, in the source, at the training rate
    pcm: np.ndarray  # (frames, channels) float32


@dataclasses.dataclass(frozen=True)
class ShortTail:
    """Audio left after the last clip that is shorter than the shortest clip allowed."""

    start: int
    length: int


class Segmenter:
    """Feed blocks in order; take full windows as they complete; `finish` yields the tail.

    Blocks are kept as they come and joined once per clip: decoders that yield one codec
    frame at a time (PyAV: ~1024 samples) would otherwise make every block copy the whole
    window buffered so far, quadratic in the window (2.4 s of copying per 90 s of audio).
    """

    def __init__(self, windows: Windows) -> None:
        self.windows = windows
        self.total = 0  # samples fed so far
        self._blocks: list[np.ndarray] = []  # samples [self._buffer_start, self.total), in order
        self._buffer_start = 0
        self._next_start = 0
        self._covered_until = 0  # end of the last clip taken

    @property
    def buffered(self) -> int:
        """Samples held: what bounds this segmenter's memory."""
        return self.total - self._buffer_start

    def feed(self, block: np.ndarray) -> Iterator[Piece]:
        self.total += len(block)
        if len(block):
            self._blocks.append(block)
        # With a hop longer than the window, samples between windows are never needed.
        self._drop_before(self._next_start)
        while self.total >= self._next_start + self.windows.window:
            yield self._take(self._next_start, self.windows.window)
            self._covered_until = self._next_start + self.windows.window
            self._next_start += self.windows.hop
            self._drop_before(self._next_start)

    def finish(self) -> Iterator[Piece | ShortTail]:
        if self.total <= max(self._covered_until, self._next_start):
            return
        length = self.total - self._next_start
        if length >= self.windows.min_length:
            yield self._take(self._next_start, length)
        else:
            yield ShortTail(self._next_start, length)

    def _take(self, start: int, length: int) -> Piece:
        if len(self._blocks) > 1:
            self._blocks = [np.concatenate(self._blocks)]
        offset = start - self._buffer_start
        return Piece(start, np.ascontiguousarray(self._blocks[0][offset : offset + length]))

    def _drop_before(self, sample: int) -> None:
        drop = min(sample, self.total) - self._buffer_start
        while drop > 0 and self._blocks:
            first = self._blocks[0]
            if len(first) <= drop:
                self._blocks.pop(0)
                self._buffer_start += len(first)
                drop -= len(first)
            else:
                self._blocks[0] = first[drop:]
                self._buffer_start += drop
                drop = 0
