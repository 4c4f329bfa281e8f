"""How balanced the labels came out: the same measures for plain top-K' and balanced draws.

Over one vocabulary of V captions, with counts n_i of how often caption i was chosen:
- distinct: captions used at least once;
- normalized entropy: H(n / sum n) / log V, 1 when every caption is used equally;
- Gini coefficient over all V captions (unused ones count as 0), 0 when equal, near 1
  when a few captions take everything;
- top-1% share: the labels taken by the ceil(V / 100) most used captions.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

FREQUENCY_SCHEMA = pa.schema(
    [
        pa.field("vocab", pa.string(), nullable=False),
        pa.field("caption_id", pa.string(), nullable=False),
        pa.field("text", pa.string()),
        pa.field("topk_count", pa.int64(), nullable=False),  # clips with the caption among their top-K
        pa.field("plain_count", pa.int64(), nullable=False),  # clips whose K' most similar include it
        pa.field("balanced_count", pa.int64(), nullable=False),  # clips that drew it as a label
    ]
)


def distribution_stats(counts: np.ndarray, vocabulary_size: int) -> dict[str, Any]:
    """Measures of one vocabulary's label counts; counts may leave out the unused captions."""
    used = np.sort(np.asarray(counts, dtype=np.float64)[np.asarray(counts) > 0])
    total = float(used.sum())
    size = max(vocabulary_size, len(used))
    if total == 0:
        return {"labels": 0, "distinct": 0, "normalized_entropy": 0.0, "gini": 0.0, "top1pct_share": 0.0}
    p = used / total
    entropy = float(-(p * np.log(p)).sum())
    # Gini over all captions: the unused ones are zeros at the bottom of the ascending order.
    ranks = np.arange(size - len(used) + 1, size + 1)
    gini = float(2 * (ranks * used).sum() / (size * total) - (size + 1) / size)
    top = math.ceil(size / 100)
    return {
        "labels": int(total),
        "distinct": len(used),
        "normalized_entropy": entropy / math.log(size) if size > 1 else 1.0,
        "gini": gini,
        "top1pct_share": float(used[::-1][:top].sum() / total),
    }


def plot_caption_frequency(table: pa.Table, vocabulary_sizes: dict[str, int], path: str) -> None:
    """Rank-frequency curves per vocabulary: plain top-K' against balanced draws (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(vocabulary_sizes)
    figure, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.6), squeeze=False)
    data = table.to_pydict()
    for axis, name in zip(axes[0], names, strict=True):
        rows = [i for i, v in enumerate(data["vocab"]) if v == name]
        for column, style in (("plain_count", "C3"), ("balanced_count", "C0")):
            counts = np.sort(np.array([data[column][i] for i in rows], dtype=np.int64))[::-1]
            counts = counts[counts > 0]
            label = f"{column.removesuffix('_count')} ({len(counts)} of {vocabulary_sizes[name]} captions used)"
            axis.plot(np.arange(1, len(counts) + 1), counts, color=style, label=label, drawstyle="steps-post")
        axis.set(title=name, xlabel="caption rank", ylabel="clips labeled", yscale="log")
        axis.legend(fontsize=7)
    figure.suptitle("Caption frequency: plain top-K' vs frequency-balanced labels")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
