"""`soundry analyze`: tempo, key and chords measured from every clip's audio."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from orchestration.cli.options import add_job_arguments, job_overrides

if TYPE_CHECKING:
    from rich.console import Console


def add_commands(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser(
        "analyze",
        help="measure tempo, key and chords of every clip (a table the label stage joins)",
        description="Measure each clip's tempo (BPM, confidence, beats), key and mode (with confidence) and chord "
        "changes from its audio, and write the analysis table that `soundry label` joins (its music section) into "
        "tags, structured fields and prompts. With --truth, report tempo Accuracy1/2 and the MIREX key score "
        "against a table of known facts. Running the same command again resumes an interrupted run.",
    )
    add_job_arguments(cmd, "orchestration.configs.jobs:AnalyzeJob")
    cmd.set_defaults(handler=_analyze)


def _analyze(args: argparse.Namespace, console: Console) -> int:
    from orchestration.configs.resolve import resolve, to_yaml
    from orchestration.jobs.analyze import analyze_clips

    job = resolve(args.job_model, args.config, job_overrides(args))
    if args.print_config:
        print(to_yaml(job), end="")
        return 0
    print_analysis_summary(analyze_clips(job, console), console)
    return 0


def print_analysis_summary(summary: dict[str, Any], console: Console) -> None:
    from orchestration.jobs.progress import add_runner_row, summary_table

    facts = summary["facts"]
    table = summary_table(f"analysis summary: {summary['output']}")
    add_runner_row(table, summary)
    table.add_row("clips", f"{facts['clips']}: tempo known for {facts['tempo_known']}, key for {facts['key_known']}")
    table.add_row("bpm", ", ".join(f"{b}: {n}" for b, n in facts["bpm_histogram"].items()) or "-")
    table.add_row("keys", ", ".join(f"{k}: {n}" for k, n in list(facts["keys"].items())[:8]) or "-")
    if "accuracy" in summary:
        a = summary["accuracy"]
        if "tempo_accuracy1" in a:
            table.add_row(
                "tempo accuracy",
                f"Accuracy1 {a['tempo_accuracy1']:.3f} · Accuracy2 {a['tempo_accuracy2']:.3f} "
                f"({a['tempo_clips']} clips, {a['tempo_unknown']} unknown; {a['tempo_no_pulse']} with no pulse, "
                f"{a['tempo_no_pulse_unknown']} of them rightly unknown)",
            )
        if "key_weighted_score" in a:
            table.add_row(
                "key accuracy",
                f"MIREX weighted {a['key_weighted_score']:.3f} · exact {a['key_exact']:.3f} "
                f"({a['key_clips']} clips, {a['key_unknown']} unknown)",
            )
    speed = summary["audio_s_analysed"] / summary["worker_s"] if summary["worker_s"] else 0.0
    table.add_row("time", f"{summary['wall_s']:.1f} s wall · {speed:.0f}x realtime per worker")
    console.print(table)
