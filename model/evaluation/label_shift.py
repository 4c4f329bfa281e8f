"""Label distribution shift between two dataset versions (or splits): how the pseudo-labels moved.

Each clip counts once for every label it carries: its drawn pseudo-labels (`labels[].text`) and
its structured fields (`aspect: value`). A side's distribution is those counts normalized; the
shift is their Jensen-Shannon divergence (bits, 0 to 1, finite when a label is on one side only),
and the labels whose share of clips moved the most are listed.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from itertools import islice
from typing import Any

from model.evaluation.version_split import samples
from shards.manifest import read_manifest, shard_urls


def label_counts(version: str, split: str, max_clips: int | None) -> tuple[Counter[str], int]:
    """(label -> clips carrying it, clips read) over the split's first `max_clips` clips."""
    counts: Counter[str] = Counter()
    clips = 0
    for sample in islice(samples(shard_urls(version, read_manifest(version), [split])), max_clips):
        record = json.loads(sample["json"]) if "json" in sample else {}
        carried = {label["text"] for label in record.get("labels", []) if label.get("text")}
        carried |= {
            f"{field['aspect']}: {value}" for field in record.get("structured", []) for value in field["values"]
        }
        counts.update(carried)
        clips += 1
    return counts, clips


def js_divergence(p: Counter[str], q: Counter[str]) -> float:
    """Jensen-Shannon divergence in bits of two count tables, each normalized to a distribution."""
    p_total, q_total = sum(p.values()), sum(q.values())
    if not p_total or not q_total:
        return 0.0 if p_total == q_total else 1.0
    divergence = 0.0
    for label in p.keys() | q.keys():
        a, b = p[label] / p_total, q[label] / q_total
        m = (a + b) / 2
        divergence += 0.5 * (a * math.log2(a / m) if a else 0.0) + 0.5 * (b * math.log2(b / m) if b else 0.0)
    return max(divergence, 0.0)


def label_shift(
    reference: tuple[Counter[str], int], generated: tuple[Counter[str], int], top: int = 10
) -> dict[str, Any]:
    (ref_counts, ref_clips), (new_counts, new_clips) = reference, generated
    changes = sorted(
        (
            {
                "label": label,
                "reference_share": round(ref_counts[label] / ref_clips, 4),
                "generated_share": round(new_counts[label] / new_clips, 4),
            }
            for label in ref_counts.keys() | new_counts.keys()
        ),
        key=lambda c: (-abs(c["generated_share"] - c["reference_share"]), c["label"]),
    )
    return {
        "js_divergence_bits": round(js_divergence(ref_counts, new_counts), 6),
        "labels": {"reference": len(ref_counts), "generated": len(new_counts)},
        "only_reference": len(ref_counts.keys() - new_counts.keys()),
        "only_generated": len(new_counts.keys() - ref_counts.keys()),
        "top_changes": changes[:top],
    }
