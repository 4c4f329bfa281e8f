"""`soundry curate` and `soundry demo-corpus`."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from orchestration.cli.options import add_job_arguments, job_overrides

if TYPE_CHECKING:
    from rich.console import Console


def add_commands(commands: argparse._SubParsersAction) -> None:
    curate_cmd = commands.add_parser(
        "curate",
        help="raw audio in, a clip table out (probe, decode, resample, segment, measure, filter, dedup, FLAC)",
        description="Curate raw audio into a clip table (Parquet), a rejects table and summary.json. "
        "Options come from --config YAML, then from the options below (dotted names reach nested keys). "
        "Running the same command again resumes an interrupted run.",
    )
    curate_cmd.add_argument(
        "paths", nargs="*", metavar="INPUT", help="input folders, globs or URLs (added to the config's inputs)"
    )
    add_job_arguments(curate_cmd, "orchestration.configs.jobs:CurateJob")
    curate_cmd.set_defaults(handler=_curate)

    corpus = commands.add_parser(
        "demo-corpus",
        help="write the procedural demo corpus to a folder",
        description="Synthesize music pieces with known attributes in six formats with tags.",
    )
    corpus.add_argument("out", help="folder to write into")
    corpus.add_argument("--pieces", type=int, default=36, help="number of pieces (default: 36)")
    corpus.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    corpus.add_argument("--min-duration", type=float, default=20.0, help="shortest piece in seconds (default: 20)")
    corpus.add_argument("--max-duration", type=float, default=90.0, help="longest piece in seconds (default: 90)")
    corpus.set_defaults(handler=_demo_corpus)


def _run_curation(args: argparse.Namespace, console: Console, base: dict[str, Any]) -> int:
    from orchestration.configs.resolve import resolve, to_yaml

    job = resolve(args.job_model, args.config, job_overrides(args), base=base)
    if args.print_config:
        print(to_yaml(job), end="")
        return 0
    from orchestration.jobs.curate import curate  # the stage's code (scipy, PyAV): not for --help
    from orchestration.jobs.progress import print_summary

    summary = curate(job, console)
    print_summary(summary, console)
    return 0


def _curate(args: argparse.Namespace, console: Console) -> int:
    base = {"inputs": [{"path": p} for p in args.paths]} if args.paths else {}
    return _run_curation(args, console, base)


def _demo_corpus(args: argparse.Namespace, console: Console) -> int:
    from curation.demo.corpus import generate_demo_corpus

    pieces = generate_demo_corpus(
        args.out,
        n_pieces=args.pieces,
        seed=args.seed,
        min_duration_s=args.min_duration,
        max_duration_s=args.max_duration,
    )
    console.print(f"{len(pieces)} pieces in {args.out}")
    return 0
