"""The evaluation's plots, as PNG bytes: per-clip CLAP scores and the two sides' tag distributions."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")  # no display on cluster nodes; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

CLAP_SCORE_PLOT = "clap_score.png"
TAGS_PLOT = "tags.png"


def clap_score_histogram(scores: dict[str, list[float]]) -> bytes:
    """Histogram of per-clip CLAP scores, one series per side (generated, reference)."""
    figure, axes = plt.subplots(figsize=(6, 3))
    values = [v for side in scores.values() for v in side]
    bins = np.linspace(min(values), max(values) + 1e-9, 21) if values else 20
    for side, side_values in scores.items():
        if side_values:
            axes.hist(side_values, bins=bins, alpha=0.6, label=f"{side} ({len(side_values)} clips)")
    axes.set_xlabel("CLAP score (prompt-audio cosine)")
    axes.set_ylabel("clips")
    axes.legend(fontsize=8)
    return _png(figure)


def tag_distribution_bars(tags: list[str], generated: np.ndarray, reference: np.ndarray, top: int = 20) -> bytes:
    """The mean zero-shot tag probability of each side, for the tags most probable on either side."""
    order = np.argsort(-np.maximum(generated, reference), kind="stable")[:top]
    figure, axes = plt.subplots(figsize=(7, 0.25 * len(order) + 1.2))
    rows = np.arange(len(order))
    axes.barh(rows - 0.2, reference[order], height=0.4, label="reference")
    axes.barh(rows + 0.2, generated[order], height=0.4, label="generated")
    axes.set_yticks(rows, [tags[i][:40] for i in order], fontsize=7)
    axes.invert_yaxis()
    axes.set_xlabel("mean tag probability")
    axes.legend(fontsize=8)
    return _png(figure)


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=80, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
