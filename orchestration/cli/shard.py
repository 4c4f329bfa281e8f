"""`soundry shard`, `soundry publish` and `soundry versions list|show|diff|verify`."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any

from orchestration.cli.options import add_job_arguments, job_overrides

if TYPE_CHECKING:
    from rich.console import Console

    from orchestration.configs.jobs import ShardJob


def add_commands(commands: argparse._SubParsersAction) -> None:
    for name, handler, summary in (
        ("shard", _shard, "write a version's WebDataset shards and sidecars (not yet published)"),
        ("publish", _publish, "write the shards (resuming) and publish the version: stats, card, manifest last"),
    ):
        parser = commands.add_parser(
            name,
            help=summary,
            description=f"{summary[0].upper()}{summary[1:]}. Joins the clip table with the label table, splits by "
            "source, shuffles with a seed and writes {split}-{n:06d}.tar shards under ROOT/VERSION/shards. "
            "Running the same command again resumes; a published version is never overwritten.",
        )
        parser.add_argument("clips_folder", nargs="?", metavar="CURATED", help="curated folder (sets --clips)")
        add_job_arguments(parser, "orchestration.configs.jobs:ShardJob")
        parser.set_defaults(handler=handler)

    versions = commands.add_parser("versions", help="list, show, diff and verify published dataset versions")
    actions = versions.add_subparsers(dest="action", required=True, metavar="ACTION")
    listing = actions.add_parser("list", help="the versions under a root folder")
    listing.add_argument("root", help="folder (or URL) holding versions")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    show = actions.add_parser("show", help="a version's manifest summary (--json: the whole manifest)")
    show.add_argument("version", help="version folder (or URL)")
    show.add_argument("--json", action="store_true", help="print the manifest as JSON")
    diff = actions.add_parser(
        "diff", help="clips added, removed, relabeled and moved, and changed configs, from A to B"
    )
    diff.add_argument("a", help="older version folder")
    diff.add_argument("b", help="newer version folder")
    diff.add_argument("--json", action="store_true", help="print the full difference as JSON")
    verify = actions.add_parser(
        "verify", help="recompute every shard's checksum; exit 1 naming any corrupt or missing file"
    )
    verify.add_argument("version", help="version folder (or URL)")
    export = actions.add_parser(
        "export-sat",
        help="a pre-encoded version's latents in stable-audio-tools' pre-encoded layout ({key}.npy, padding_mask)",
    )
    export.add_argument("version", help="version folder (or URL) with latent.npy members (`soundry encode`)")
    export.add_argument("target", help="folder (or URL) for the tars; point stable-audio-tools' `path` at it")
    export.add_argument("--split", default="train", help="the split to export (default: train)")
    export.add_argument("--frames", type=int, help="latent frames per sample (default: the longest; pad with 0s)")
    versions.set_defaults(handler=_versions)


def _job(args: argparse.Namespace) -> ShardJob:
    from orchestration.configs.resolve import resolve

    base = {"clips": args.clips_folder} if args.clips_folder else {}
    return resolve(args.job_model, args.config, job_overrides(args), base=base)


def _shard(args: argparse.Namespace, console: Console) -> int:
    from orchestration.configs.resolve import to_yaml
    from orchestration.jobs.shard import write_shards

    job = _job(args)
    if args.print_config:
        print(to_yaml(job), end="")
        return 0
    print_shard_summary(write_shards(job, console), console)
    return 0


def _publish(args: argparse.Namespace, console: Console) -> int:
    from orchestration.configs.resolve import to_yaml
    from orchestration.jobs.shard import publish_version

    job = _job(args)
    if args.print_config:
        print(to_yaml(job), end="")
        return 0
    print_shard_summary(publish_version(job, console), console)
    return 0


def print_shard_summary(summary: dict[str, Any], console: Console) -> None:
    from orchestration.jobs.progress import summary_table

    title = "published" if summary["published"] else "sharded (not yet published: run `soundry publish`)"
    table = summary_table(f"{title}: {summary['version']}")
    excluded = ", ".join(f"{reason}: {n}" for reason, n in summary["clips_excluded"].items()) or "none"
    table.add_row("clips", f"{summary['clips']} of {summary['clips_in']} (left out: {excluded})")
    table.add_row(
        "shards", f"{summary['shards']} ({summary['shards_resumed']} resumed) · {summary['bytes'] / 1e6:.1f} MB"
    )
    for split, facts in summary.get("splits", {}).items():
        table.add_row(
            f"  {split}",
            f"{facts['clips']} clips · {facts['hours']:.3f} h · {facts['sources']} sources · {facts['shards']} shards",
        )
    table.add_row("runner", f"{summary['runner']} ({summary['workers']} workers)")
    phases = " · ".join(
        f"{name.removesuffix('_s').replace('_', ' ')} {s:.1f} s" for name, s in summary["phases_s"].items()
    )
    table.add_row("time", f"{summary['wall_s']:.1f} s ({phases}) · {summary['mb_per_s']:.0f} MB/s written")
    console.print(table)


def _versions(args: argparse.Namespace, console: Console) -> int:
    from shards import versions

    if args.action == "list":
        listed = versions.list_versions(args.root)
        if args.json:
            print(json.dumps(listed, indent=2))
            return 0
        return _list(listed, args.root, console)
    if args.action == "show":
        from shards.manifest import read_manifest

        manifest = read_manifest(args.version)
        if args.json:
            print(json.dumps(manifest, indent=2))
        else:
            _show(manifest, console)
        return 0
    if args.action == "diff":
        difference = versions.diff_versions(args.a, args.b)
        if args.json:
            print(json.dumps(difference.to_dict(), indent=2, default=str))
        else:
            _print_diff(difference, console)
        return 0
    if args.action == "export-sat":
        from shards.export.stable_audio_tools import export_pre_encoded

        done = export_pre_encoded(args.version, args.target, args.split, args.frames)
        console.print(
            f"{done['target']}: {done['samples']} {done['split']} samples in {done['shards']} shards "
            f"({done['written']} written), {done['frames']} latent frames each"
        )
        return 0
    problems = versions.verify_version(args.version)
    for problem in problems:
        console.print(f"[red]{problem.problem}[/]: {problem.file}: {problem.detail}", highlight=False)
    if problems:
        console.print(f"{args.version}: {len(problems)} problem(s)")
        return 1
    console.print(f"{args.version}: every shard and sidecar matches the manifest")
    return 0


def _list(listed: list[dict[str, Any]], root: str, console: Console) -> int:
    from rich.table import Table

    table = Table(title=f"dataset versions in {root}", title_justify="left")
    for column in ("version", "state", "created", "clips", "hours", "shards", "MB", "splits", "labels"):
        table.add_column(column)
    for v in listed:
        if v["published"]:
            table.add_row(
                v["version"],
                "published",
                v["created"][:10],
                str(v["clips"]),
                f"{v['hours']:.2f}",
                str(v["shards"]),
                f"{v['bytes'] / 1e6:.1f}",
                ",".join(v["splits"]),
                "yes" if v["labeled"] else "no",
            )
        else:
            table.add_row(v["version"], "unfinished" if v["pending"] else "not a version", "", "", "", "", "", "", "")
    console.print(table)
    return 0


def _show(manifest: dict[str, Any], console: Console) -> None:
    from orchestration.jobs.progress import summary_table

    table = summary_table(f"{manifest['name']} {manifest['version']}")
    totals = manifest["totals"]
    table.add_row("created", manifest["created"])
    table.add_row(
        "totals",
        f"{totals['clips']} clips · {totals['hours']:.3f} h · {totals['shards']} shards · "
        f"{totals['bytes'] / 1e6:.1f} MB",
    )
    for split, facts in manifest["splits"].items():
        table.add_row(f"  {split}", f"{facts['clips']} clips · {facts['hours']:.3f} h · {facts['sources']} sources")
    table.add_row(
        "audio",
        f"{manifest['audio']['sample_rate']} Hz · {manifest['audio']['channels']} ch · "
        f"members: {', '.join(manifest['members'])}",
    )
    licenses = manifest["licenses"]
    table.add_row("licenses", ", ".join(f"{k}: {v['clips']}" for k, v in licenses["per_license"].items()))
    table.add_row("allowed", ", ".join(licenses["allowed"]) if licenses["allowed"] else "all")
    table.add_row("left out", ", ".join(f"{k}: {v}" for k, v in licenses["excluded_clips"].items()) or "none")
    lineage = manifest["lineage"]
    table.add_row("clip table", f"{lineage['clips']['url']} ({lineage['clips']['hash'][:16]})")
    labels = lineage["labels"]
    table.add_row("labels", f"{labels['url']} (run {labels['label_run']})" if labels else "none")
    console.print(table)


def _print_diff(difference, console: Console) -> None:
    console.print(f"{difference.a} → {difference.b}")
    for name in ("added", "removed", "relabeled", "audio_changed"):
        keys = getattr(difference, name)
        shown = ", ".join(keys[:5]) + (" …" if len(keys) > 5 else "")
        console.print(f"  clips {name.replace('_', ' ')}: {len(keys)}" + (f" ({shown})" if keys else ""))
    console.print(f"  clips moved between splits: {len(difference.moved)}")
    for title, changes in (("config", difference.config), ("lineage", difference.lineage)):
        console.print(f"  {title} changes: {len(changes) or 'none'}")
        for key, old, new in changes:
            console.print(f"    {key}: {old!r} → {new!r}", highlight=False)
