"""`soundry vocab`: caption vocabularies for pseudo-labeling."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from orchestration.cli.options import add_job_arguments, job_overrides

if TYPE_CHECKING:
    from rich.console import Console

    from orchestration.configs.jobs import VocabJob


def add_commands(commands: argparse._SubParsersAction) -> None:
    vocab = commands.add_parser(
        "vocab",
        help="caption vocabularies: LLM long-form sentences, rater sentences, short tags",
        description="Build the caption vocabularies pseudo-labels are chosen from: long-form sentences an LLM "
        "(or the template backend) writes about the corpus's songs and about tag combinations, sentences split "
        "from caption datasets, and short tags with their aspects. Writes <name>-<version>.parquet tables and "
        "manifest.json (last) to --output. Running it again resumes: answers already paid for are cached.",
    )
    vocab.add_argument(
        "corpus_paths",
        nargs="*",
        metavar="CORPUS",
        help="curated clip-table folders (outputs of `soundry curate`), added to the config's corpus",
    )
    vocab.add_argument(
        "--captions-file",
        action="append",
        default=[],
        metavar="PATH",
        help="a caption dataset with a `caption` column (CSV, JSON Lines, JSON, Parquet), added to the config's "
        "captions; repeatable",
    )
    vocab.add_argument(
        "--songs-file",
        action="append",
        default=[],
        metavar="PATH",
        help="a song list with `title` and `artist` columns, added to the config's songs; repeatable",
    )
    vocab.add_argument(
        "--exclude-file",
        action="append",
        default=[],
        metavar="PATH",
        help="evaluation captions (a `caption` column) no sentence may match, added to cleaning.exclude; repeatable",
    )
    add_job_arguments(vocab, "orchestration.configs.jobs:VocabJob")
    vocab.set_defaults(handler=_vocab)


def _vocab(args: argparse.Namespace, console: Console) -> int:
    from orchestration.configs.resolve import resolve, to_yaml

    job = resolve(args.job_model, args.config, job_overrides(args))
    job = _with_files(job, args)
    if args.print_config:
        print(to_yaml(job), end="")
        return 0
    from orchestration.jobs.vocab import build_vocabularies  # the stage's code: not for --help

    summary = build_vocabularies(job, console)
    print_vocab_summary(summary, console)
    return 0


def _with_files(job: VocabJob, args: argparse.Namespace) -> VocabJob:
    """The job with the files named on the command line added to its lists."""
    from orchestration.configs.resolve import resolve

    data = job.model_dump()
    data["corpus"] += [p for p in args.corpus_paths if p not in data["corpus"]]
    data["captions"] += [{"path": p} for p in args.captions_file]
    data["songs"] += [{"path": p} for p in args.songs_file]
    data["cleaning"]["exclude"] += [{"path": p} for p in args.exclude_file]
    return resolve(type(job), None, {}, base=data)


def print_vocab_summary(summary: dict[str, Any], console: Console) -> None:
    from orchestration.jobs.progress import summary_table

    table = summary_table(f"vocabularies: {summary['output']}")
    llm = summary["llm"]
    engine = f"{summary['runner']} engine, {llm['workers']} workers" if llm["engine"] else "in this process"
    if "model_loads" in llm:
        engine += f", model loaded {llm['model_loads']}x in {llm['model_load_s']:.1f} s"
    songs = llm["songs"].get("prompted", 0)
    skipped = {k: v for k, v in llm["songs"].items() if k != "prompted"}
    table.add_row(
        "llm",
        f"{llm['backend']} backend ({engine}): {llm['prompts']} prompts = {songs} songs + "
        f"{llm['combinations']} tag combinations{' (songs skipped: ' + _counts(skipped) + ')' if skipped else ''}; "
        f"answers: {llm['answers_generated']} generated, {llm['answers_cached']} from the cache",
    )
    for name, cleaning in summary["cleaning"].items():
        entry = summary["vocabularies"].get(name)
        head = (
            (
                f"{entry['count']} {entry['kind'].replace('_', '-')} captions, version {entry['version']} · "
                f"{_counts(entry['sources'])}"
            )
            if entry
            else "empty: not built"
        )
        table.add_row(name, head)
        read = {k: v for k, v in cleaning.items() if k not in ("removed", "kept", "clap_similarity")}
        table.add_row("", f"read: {_counts(read)} · removed: {_counts(cleaning['removed']) or 'nothing'}")
        if cleaning.get("clap_similarity"):
            table.add_row(
                "", f"CLAP similarity to music descriptions (quantiles): {_counts(cleaning['clap_similarity'])}"
            )
        if entry and "aspects" in entry:
            table.add_row("", f"aspects: {_counts(entry['aspects'])}")
    skipped = {path: info["skipped"] for path, info in summary["inputs"].items() if info.get("skipped")}
    for path, counts in skipped.items():
        table.add_row("skipped rows", f"{path}: {_counts(counts)}")
    table.add_row("time", f"{summary['wall_s']:.1f} s")
    console.print(table)


def _counts(counts: dict[str, Any]) -> str:
    return ", ".join(f"{key}: {value}" for key, value in counts.items())
