"""The `soundry` command."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from curation.discover import LocationError
from curation.ffmpeg_binary import FFmpegNotFound
from orchestration.config_cli import ConfigError, add_model_options, resolve, to_yaml
from orchestration.curate_job import CurateJob, curate
from orchestration.progress import print_summary

# Errors that are the user's to fix: printed as one clear message, never a traceback.
USER_ERRORS = (ConfigError, LocationError, FFmpegNotFound)


def main(argv: list[str] | None = None) -> int:
    # Model hubs are unreachable on many clusters; never let a library wait on one.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    parser = _parser()
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    try:
        return args.handler(args, console)
    except USER_ERRORS as error:
        console.print(f"[bold red]soundry {args.command}: error:[/] {error}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print(f"soundry {args.command}: interrupted; run the same command again to resume")
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soundry",
        description="Curate raw audio into pseudo-labeled, versioned WebDatasets and train text-to-audio models on them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    curate_cmd = commands.add_parser(
        "curate", help="raw audio in, a clip table out (probe, decode, resample, segment, measure, filter, dedup, FLAC)",
        description="Curate raw audio into a clip table (Parquet), a rejects table and summary.json. "
        "Options come from --config YAML, then from the options below (dotted names reach nested keys). "
        "Running the same command again resumes an interrupted run.",
    )
    curate_cmd.add_argument("paths", nargs="*", metavar="INPUT", help="input folders, globs or URLs (added to the config's inputs)")
    _add_job_arguments(curate_cmd)
    curate_cmd.set_defaults(handler=_curate)

    demo = commands.add_parser(
        "demo", help="generate the demo corpus, curate it and print the summary",
        description="Generate the procedural demo corpus (if missing) and curate it on the embedded default engine.",
    )
    demo.add_argument("--dir", default="demo", help="folder for the demo corpus and outputs (default: demo)")
    demo.add_argument("--pieces", type=int, default=36, help="number of demo pieces (default: 36)")
    _add_job_arguments(demo)
    demo.set_defaults(handler=_demo)

    corpus = commands.add_parser("demo-corpus", help="write the procedural demo corpus to a folder",
                                 description="Synthesize music pieces with known attributes in six formats with tags.")
    corpus.add_argument("out", help="folder to write into")
    corpus.add_argument("--pieces", type=int, default=36, help="number of pieces (default: 36)")
    corpus.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    corpus.add_argument("--min-duration", type=float, default=20.0, help="shortest piece in seconds (default: 20)")
    corpus.add_argument("--max-duration", type=float, default=90.0, help="longest piece in seconds (default: 90)")
    corpus.set_defaults(handler=_demo_corpus)
    return parser


def _add_job_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-c", "--config", metavar="YAML", help="job configuration file")
    parser.add_argument("--print-config", action="store_true", help="print the resolved configuration as YAML and exit")
    add_model_options(parser, CurateJob)


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    fields = set(CurateJob.model_fields)
    return {k: v for k, v in vars(args).items() if "." in k or k in fields}


def _run_curation(args: argparse.Namespace, console: Console, base: dict[str, Any]) -> int:
    job = resolve(CurateJob, args.config, _overrides(args), base=base)
    if args.print_config:
        print(to_yaml(job), end="")
        return 0
    summary = curate(job, console)
    print_summary(summary, console)
    return 0


def _curate(args: argparse.Namespace, console: Console) -> int:
    base = {"inputs": [{"path": p} for p in args.paths]} if args.paths else {}
    return _run_curation(args, console, base)


def _demo(args: argparse.Namespace, console: Console) -> int:
    from curation.demo_corpus import generate_demo_corpus

    corpus = Path(args.dir) / "corpus"
    console.print(f"demo corpus: {corpus} ({args.pieces} pieces)")
    generate_demo_corpus(corpus, n_pieces=args.pieces, workers=os.cpu_count() or 1)
    base = {
        "inputs": [{"path": str(corpus), "source_name": "soundry-demo", "license": "CC0-1.0"}],
        "output": str(Path(args.dir) / "curated"),
    }
    return _run_curation(args, console, base)


def _demo_corpus(args: argparse.Namespace, console: Console) -> int:
    from curation.demo_corpus import generate_demo_corpus

    pieces = generate_demo_corpus(args.out, n_pieces=args.pieces, seed=args.seed,
                                  min_duration_s=args.min_duration, max_duration_s=args.max_duration)
    console.print(f"{len(pieces)} pieces in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
