"""The models that turn audio into the vectors FAD compares, behind one small interface.

An `AudioEmbedder` takes mono float32 clips at its own rate and returns one vector per clip.
The first is the label stage's CLAP (any of its backends: laion or hf checkpoints from local
paths, or seeded random weights for tests and demos), which also embeds text for the CLAP
score and the tag distributions. Another model (VGGish, PANNs, OpenL3, EnCodec) joins by
implementing the same three members.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from labeling.clap.audio import pool_windows, windows
from labeling.clap.backend import SAMPLE_RATE, ClapConfig, load_clap


@dataclass(frozen=True)
class EmbeddedSet:
    """One side of an evaluation, embedded: clip names, the prompts the set itself knows, one vector a clip."""

    label: str  # "generated FOLDER", "reference VERSION split S": how messages and the report name it
    names: list[str]
    prompts: dict[str, str]  # name -> prompt; a published version's own prompts, empty for a folder
    vectors: np.ndarray  # (len(names), D)
    structured: dict[str, dict[str, list[str]]] = field(default_factory=dict)  # name -> a version sample's fields


class AudioEmbedder(Protocol):
    description: dict[str, object]  # what made the vectors, recorded in eval.json
    sample_rate: int  # the rate `embed` takes

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        """Mono float32 clips at sample_rate -> (len(clips), D) float32, one vector per clip."""


class ClapEmbedder:
    """CLAP as the label stage runs it: a clip is the mean of its 10 s windows' embeddings,
    L2-normalized, by the label stage's own functions (what a version's `clap.npy` holds)."""

    sample_rate = SAMPLE_RATE

    def __init__(self, config: ClapConfig) -> None:
        self.clap = load_clap(config)
        self.description = {"model": "clap", **self.clap.identity.to_dict()}

    def embed(self, clips: Sequence[np.ndarray]) -> np.ndarray:
        if not clips:
            return np.empty((0, self.clap.dim), dtype=np.float32)
        clip_windows = [windows(clip) for clip in clips]
        vectors = self.clap.embed_audio(np.concatenate(clip_windows))
        return pool_windows(vectors, [len(w) for w in clip_windows])

    def embed_text(self, texts: list[str]) -> np.ndarray:
        """Prompts or tags -> (N, D) float32, L2-normalized, in the audio vectors' space."""
        return self.clap.embed_text(texts)
