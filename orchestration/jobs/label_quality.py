"""The label stage's quality report: scored against a labeled set, written as label_quality.json and printed."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from curation.core.storage import join, write_json_atomic
from labeling.clap.backend import ClapIdentity
from labeling.clap.embedding_cache import EmbeddingCache
from labeling.labels.config import LabelConfig
from labeling.labels.quality.report import quality_report
from labeling.vocab.table import Vocabulary

QUALITY = "label_quality.json"


def label_quality(
    config: LabelConfig, identity: ClapIdentity, vocabularies: dict[str, Vocabulary], console: Console
) -> dict[str, Any]:
    cache = EmbeddingCache(config.cache_root(), identity)
    cache.claim()
    report = quality_report(config, identity, vocabularies, cache)
    write_json_atomic(join(config.output, QUALITY), report)
    print_quality(report, console)
    return report


def print_quality(report: dict[str, Any], console: Console) -> None:
    table = Table(
        title=f"label quality against {report['truth']} ({report['clips']} clips of {report['items']} items)",
        title_justify="left",
    )
    for column in ("measure", "value", "chance"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    tags = report.get("tags", {})
    if "skipped" in tags:
        table.add_row("tags", tags["skipped"], "")
    elif tags:
        table.add_row(f"zero-shot top-1 ({tags['tags_scored']} tags)", *_pair(tags["top1_accuracy"]))
        table.add_row(f"mAP ({tags['mAP']['tags']} tags)", *_pair(tags["mAP"]))
    retrieval = report.get("retrieval", {})
    for key in ("recall@1", "recall@10"):
        if key in retrieval:
            table.add_row(f"text→audio {key} ({retrieval['queries']} captions)", *_pair(retrieval[key]))
    drawn = report.get("drawn_labels", {})
    if drawn.get("clips"):
        for selection in ("plain", "balanced", "top_k"):
            d = drawn[selection]
            name = {
                "plain": f"plain top-{drawn['labels_per_clip']}",
                "balanced": "balanced draws",
                "top_k": "all top-K",
            }
            table.add_row(
                f"{name[selection]} precision (mean sim {d['mean_similarity']:.3f})",
                f"{d['precision']:.3f}",
                f"{drawn['chance']:.3f}",
            )
    console.print(table)
    if report.get("note"):
        console.print(report["note"], style="bold red")


def _pair(figure: dict[str, float]) -> tuple[str, str]:
    return f"{figure['value']:.3f}", f"{figure['chance']:.3f}"
