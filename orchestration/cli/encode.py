"""`soundry encode`: pre-encode a published version's audio with a frozen VAE into a new version."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from orchestration.cli.options import add_job_arguments, job_overrides

if TYPE_CHECKING:
    from rich.console import Console


def add_commands(commands: argparse._SubParsersAction) -> None:
    summary = "pre-encode a version's audio with a frozen VAE: a new version whose samples add latent.npy"
    parser = commands.add_parser(
        "encode",
        help=summary,
        description=f"{summary[0].upper()}{summary[1:]}. The new version keeps every sample, member and split of the "
        "source and is published like any other (manifest last; lineage names the source and the VAE's weights). "
        "`soundry train` on it reads the latents instead of running the encoder. Running the same command again "
        "resumes; a published version is never overwritten.",
    )
    parser.add_argument(
        "source_version", nargs="?", metavar="VERSION", help="published version to encode (sets --source)"
    )
    add_job_arguments(parser, "orchestration.configs.jobs:EncodeJob")
    parser.set_defaults(handler=_encode)


def _encode(args: argparse.Namespace, console: Console) -> int:
    from orchestration.configs.resolve import resolve, to_yaml
    from orchestration.jobs.encode import encode_version

    base = {"source": args.source_version} if args.source_version else {}
    job = resolve(args.job_model, args.config, job_overrides(args), base=base)
    if args.print_config:
        print(to_yaml(job), end="")
        return 0
    print_encode_summary(encode_version(job, console), console)
    return 0


def print_encode_summary(summary: dict[str, Any], console: Console) -> None:
    from orchestration.jobs.progress import summary_table

    table = summary_table(f"published: {summary['version']}")
    table.add_row("from", f"{summary['source']} through the VAE {summary['vae']}")
    table.add_row(
        "clips",
        f"{summary['clips']} · {summary['hours']:.3f} h · {summary['shards']} shards "
        f"({summary['shards_resumed']} resumed) · {summary['bytes'] / 1e6:.1f} MB",
    )
    table.add_row("latents", f"{summary['latent_dim']} channels at {summary['latent_rate']:.2f} frames/s")
    speed = summary["hours"] * 3600 / summary["wall_s"] if summary["wall_s"] > 0 else 0.0
    table.add_row(
        "time",
        f"{summary['wall_s']:.1f} s ({speed:.0f}x realtime) · {summary['runner']} engine, "
        f"{summary['model_workers']} VAE worker(s)",
    )
    console.print(table)
