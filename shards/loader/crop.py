"""Random crop or pad to a fixed length, with Stable Audio's timing of the crop.

Works in any unit: audio samples, or latent frames of `hop` samples each. `seconds_start` is
where the crop begins in the source (the clip's offset in its source plus the crop's offset
in the clip), floored; `seconds_total` is the source's duration, rounded up.
"""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np


@dataclasses.dataclass(frozen=True)
class Crop:
    offset: int  # first frame taken
    length: int  # frames taken; the rest of the window is padding


def choose_crop(total: int, size: int, rng: random.Random, randomize: bool) -> Crop:
    """A window of `size` frames over `total`: anywhere when randomize, else at the start."""
    offset = rng.randint(0, total - size) if randomize and total > size else 0
    return Crop(offset, min(size, total - offset))


def pad(frames: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """(C, n) -> (C, size) zero-padded at the end, and the (size,) mask of real frames."""
    channels, length = frames.shape
    out = np.zeros((channels, size), dtype=frames.dtype)
    out[:, :length] = frames[:, :size]
    mask = np.zeros(size, dtype=bool)
    mask[: min(length, size)] = True
    return out, mask


def crop_seconds_start(clip_start_s: float, offset: int, frame_rate: float) -> int:
    return int(math.floor(clip_start_s + offset / frame_rate + 1e-9))
