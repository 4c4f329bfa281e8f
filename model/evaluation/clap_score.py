"""CLAP score: the cosine between each prompt's text embedding and its audio's embedding."""

from __future__ import annotations

from typing import Any

import numpy as np


def clap_scores(text: np.ndarray, audio: np.ndarray) -> np.ndarray:
    """(N, D) text and (N, D) audio embeddings, row i of one paired with row i of the other -> (N,) cosines."""
    text = np.asarray(text, np.float64)
    audio = np.asarray(audio, np.float64)
    norms = np.linalg.norm(text, axis=1) * np.linalg.norm(audio, axis=1)
    return (text * audio).sum(axis=1) / np.maximum(norms, 1e-12)


def distribution(values: np.ndarray) -> dict[str, Any]:
    """Mean, spread and quantiles of a per-clip figure, for the report."""
    values = np.asarray(values, np.float64)
    quantiles = np.quantile(values, [0.0, 0.1, 0.5, 0.9, 1.0])
    return {
        "count": int(len(values)),
        "mean": float(values.mean()),
        "std": float(values.std()),
        **{name: float(q) for name, q in zip(("min", "p10", "median", "p90", "max"), quantiles, strict=True)},
    }
