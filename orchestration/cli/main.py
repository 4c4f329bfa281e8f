"""The `soundry` command: one subcommand module per stage, listed in COMMAND_MODULES.

A command module has `add_commands(commands)`, which adds its subparsers (each with a
`handler(args, console) -> exit code` default). A mistake the user can fix raises a
`UserError` (curation/core/errors.py): printed as one line, exit status 2, never a
traceback. Modules import their heavy dependencies (torch, Ray, Beam) inside the handlers,
so `--help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from curation.core.errors import UserError
from curation.core.object_store_errors import object_store_error
from orchestration.cli.options import build_chosen_options

COMMAND_MODULES = (
    "orchestration.cli.curate",
    "orchestration.cli.shard",
    "orchestration.cli.view",
    "orchestration.cli.vocab",
    "orchestration.cli.analyze",
    "orchestration.cli.label",
    "orchestration.cli.encode",
    "orchestration.cli.train",
    "orchestration.cli.checkpoints",
    "orchestration.cli.evaluate",
    "orchestration.cli.run",
)


def main(argv: list[str] | None = None) -> int:
    # Model hubs are unreachable on many clusters; never let a library wait on one.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    argv = sys.argv[1:] if argv is None else argv
    modules = [importlib.import_module(name) for name in COMMAND_MODULES]
    parser, commands = _parser(modules)
    build_chosen_options(commands, argv)
    args = parser.parse_args(argv)
    from rich.console import Console  # a tenth of a second: not for --help
    from rich.markup import escape

    console = Console(stderr=True)
    try:
        return args.handler(args, console)
    except UserError as error:
        console.print(
            f"[bold red]soundry {args.command}: error:[/] {escape(str(error))}", highlight=False, soft_wrap=True
        )
        return 2
    except KeyboardInterrupt:
        console.print(f"soundry {args.command}: interrupted; run the same command again to resume")
        return 130
    except Exception as error:
        # Missing credentials or an unreachable endpoint are the user's to fix, not a traceback.
        line = object_store_error(error)
        if line is None:
            raise
        console.print(f"[bold red]soundry {args.command}: error:[/] {escape(line)}", highlight=False, soft_wrap=True)
        return 2


def _parser(modules: list) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(
        prog="soundry",
        description="Curate raw audio into pseudo-labeled, versioned WebDatasets and train text-to-audio models on "
        "them.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in modules:
        module.add_commands(commands)
    return parser, commands


if __name__ == "__main__":
    sys.exit(main())
