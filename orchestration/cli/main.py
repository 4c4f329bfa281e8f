"""The `soundry` command: one subcommand module per stage, listed in COMMAND_MODULES.

A command module has `add_commands(commands)`, which adds its subparsers (each with a
`handler(args, console) -> exit code` default), and `USER_ERRORS`, the exceptions that
are the user's to fix: printed as one clear message, never a traceback. Modules import
their heavy dependencies (torch, Ray, Beam) inside the handlers, so `--help` stays fast;
such a module's USER_ERRORS is a function returning the classes, called only after its
handler has imported them.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from rich.console import Console

COMMAND_MODULES = (
    "orchestration.cli.curate",
    "orchestration.cli.shard",
    "orchestration.cli.vocab",
    "orchestration.cli.label",
    "orchestration.cli.encode",
    "orchestration.cli.train",
    "orchestration.cli.checkpoints",
    "orchestration.cli.run",
)


def main(argv: list[str] | None = None) -> int:
    # Model hubs are unreachable on many clusters; never let a library wait on one.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    modules = [importlib.import_module(name) for name in COMMAND_MODULES]
    args = _parser(modules).parse_args(argv)
    console = Console(stderr=True)
    try:
        return args.handler(args, console)
    except Exception as error:
        if not isinstance(error, _user_errors(modules)):
            raise
        console.print(f"[bold red]soundry {args.command}: error:[/] {error}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print(f"soundry {args.command}: interrupted; run the same command again to resume")
        return 130


def _user_errors(modules: list) -> tuple[type[Exception], ...]:
    found: list[type[Exception]] = []
    for module in modules:
        errors = module.USER_ERRORS
        found += errors() if callable(errors) else errors
    return tuple(found)


def _parser(modules: list) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soundry",
        description="Curate raw audio into pseudo-labeled, versioned WebDatasets and train text-to-audio models on them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in modules:
        module.add_commands(commands)
    return parser


if __name__ == "__main__":
    sys.exit(main())
