"""`soundry eval`: how close generated audio is to reference audio (FAD, FAD∞, tag KL, CLAP score)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from orchestration.cli.options import add_job_arguments, job_overrides

if TYPE_CHECKING:
    from rich.console import Console


def add_commands(commands: argparse._SubParsersAction) -> None:
    cmd = commands.add_parser(
        "eval",
        help="compare generated audio with reference audio: FAD (and FAD∞), tag KL, CLAP score",
        description="Embed a folder of generated audio and reference audio (a folder, or a published version's split) "
        "with the label stage's CLAP "
        "model and report the Fréchet audio distance of the two sets (FAD; FAD∞ with --fad_infinity true), the KL "
        "divergence of CLAP zero-shot tag distributions between clips of the same name on both sides (file name or "
        "clip_id: made for the same prompt), and with prompts (--prompts, or a version's own) the CLAP score "
        "(prompt-audio cosine) of both. Writes OUTPUT/eval.json.",
    )
    add_job_arguments(cmd, "model.evaluation.config:EvalConfig")
    cmd.set_defaults(handler=_eval)


def _eval(args: argparse.Namespace, console: Console) -> int:
    from orchestration.configs.resolve import resolve, to_yaml

    config = resolve(args.job_model, args.config, job_overrides(args))
    if args.print_config:
        print(to_yaml(config), end="")
        return 0
    from model.evaluation.evaluate import REPORT_FILE, evaluate

    report = evaluate(config)
    print_eval_summary(report, f"{config.output.rstrip('/')}/{REPORT_FILE}", console)
    return 0


def print_eval_summary(report: dict[str, Any], written_to: str, console: Console) -> None:
    from rich.table import Table

    table = Table(title=f"evaluation: {written_to}", show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    embedding = report["embedding"]
    model = embedding["description"]
    if embedding.get("random_weights"):
        model = f"[yellow]{model}[/]"
    table.add_row("embedding", model)
    table.add_row("clips", f"generated {report['generated']['clips']} · reference {report['reference']['clips']}")
    table.add_row("FAD", f"{report['fad']:.4f}")
    if "fad_infinity" in report:
        table.add_row("FAD∞", f"{report['fad_infinity']['value']:.4f} (seed {report['fad_infinity']['seed']})")
    kl = report["kl"]
    table.add_row(
        "tag KL",
        f"{kl['mean']:.4f} mean · {kl['median']:.4f} median over {kl['pairs']} pairs ({kl['tags']['count']} tags)"
        if kl["pairs"]
        else f"not measured: {kl['skipped']}",
    )
    if "clap_score" in report:
        for side in ("generated", "reference"):
            score = report["clap_score"][side]
            table.add_row(
                f"CLAP score ({side})",
                f"{score['mean']:.4f} mean ± {score['std']:.4f} over {score['count']} clips" if score else "no prompts",
            )
    console.print(table)
