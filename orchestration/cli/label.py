"""`soundry label`: CLAP scores, frequency-balanced pseudo-labels and prompts for a clip table."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from orchestration.cli.options import add_job_arguments, job_overrides

if TYPE_CHECKING:
    from rich.console import Console


def add_commands(commands: argparse._SubParsersAction) -> None:

    cmd = commands.add_parser(
        "label",
        help="CLAP-score clips against caption vocabularies; frequency-balanced pseudo-labels and prompts",
        description="Embed a clip table's audio and the vocabularies' captions with CLAP, keep each clip's top-K "
        "captions per vocabulary, draw K' labels with probability proportional to 1 / caption frequency, and write "
        "the label table with prompt candidates and structured fields. Options come from --config YAML, then from "
        "the options below. Running the same command again resumes an interrupted run.",
    )
    add_job_arguments(cmd, "orchestration.configs.jobs:LabelJob")
    cmd.set_defaults(handler=_label)


def _label(args: argparse.Namespace, console: Console) -> int:
    from orchestration.configs.resolve import resolve, to_yaml
    from orchestration.jobs.label import label

    job = resolve(args.job_model, args.config, job_overrides(args))
    if args.print_config:
        print(to_yaml(job), end="")
        return 0
    print_label_summary(label(job, console), console)
    return 0


def print_label_summary(summary: dict[str, Any], console: Console) -> None:
    from orchestration.jobs.progress import summary_table

    table = summary_table(f"labeling summary: {summary['output']}")
    table.add_row("CLAP", summary["clap"]["description"])
    table.add_row(
        "runner",
        f"{summary['runner']} ({summary['workers']} workers, {summary['units']} units, "
        f"{summary['units_resumed']} resumed, {summary['units_audio_cached']} from the audio cache)",
    )
    table.add_row(
        "clips labeled",
        f"{summary['clips_labeled']} ({summary['windows_embedded']} windows and "
        f"{summary['captions_embedded']} captions embedded in this run)",
    )
    for name, v in summary["vocabularies"].items():
        plain, balanced = v["plain"], v["balanced"]
        table.add_row(name, f"{v['captions']} captions, {v['in_some_top_k']} in some top-K; K'={v['labels_per_clip']}")
        for measure in ("distinct", "normalized_entropy", "gini", "top1pct_share"):
            table.add_row(f"  {measure}", f"plain {_show(plain[measure])} → balanced {_show(balanced[measure])}")
    table.add_row("plot", summary["plot"])
    if "quality" in summary:
        table.add_row("label quality", "label_quality.json (the table above)")
    table.add_row(
        "time",
        f"{summary['wall_s']:.1f} s wall · "
        + ", ".join(f"{k.removesuffix('_s')} {v:.1f}s" for k, v in summary["phases_s"].items()),
    )
    console.print(table)


def _show(value: float | int) -> str:
    return str(value) if isinstance(value, int) else f"{value:.3f}"
