"""The balance measures on distributions whose values are known."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from labeling.labels.stats import FREQUENCY_SCHEMA, distribution_stats, plot_caption_frequency


def test_equal_use_of_every_caption():
    s = distribution_stats(np.full(200, 5), 200)
    assert s == {
        "labels": 1000,
        "distinct": 200,
        "normalized_entropy": pytest.approx(1.0),
        "gini": pytest.approx(0.0, abs=1e-12),
        "top1pct_share": pytest.approx(0.01),
    }


def test_one_caption_takes_everything():
    s = distribution_stats(np.array([0, 0, 40, 0]), 100)
    assert s["distinct"] == 1 and s["normalized_entropy"] == 0.0 and s["top1pct_share"] == 1.0
    assert s["gini"] == pytest.approx(1 - 1 / 100)


def test_unused_captions_count_in_gini_and_entropy():
    used_only = distribution_stats(np.array([1, 1, 1, 1]), 4)
    in_a_larger_vocabulary = distribution_stats(np.array([1, 1, 1, 1]), 16)
    assert used_only["gini"] == pytest.approx(0.0, abs=1e-12) and in_a_larger_vocabulary["gini"] == pytest.approx(0.75)
    assert in_a_larger_vocabulary["normalized_entropy"] == pytest.approx(math.log(4) / math.log(16))


def test_plot_is_written(tmp_path):
    table = pa.Table.from_pylist(
        [
            {
                "vocab": "tags",
                "caption_id": f"c{i}",
                "text": f"t{i}",
                "topk_count": 9 - i,
                "plain_count": max(0, 5 - 2 * i),
                "balanced_count": 2,
            }
            for i in range(5)
        ],
        schema=FREQUENCY_SCHEMA,
    )
    plot_caption_frequency(table, {"tags": 20, "llm_long": 10}, str(tmp_path / "plot.png"))
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
