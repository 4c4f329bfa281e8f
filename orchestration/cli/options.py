"""Every field of a job's config as a command-line option (`--segment.window_s 10`).

Options are generated from the pydantic models, so `--help` lists every field with its
description and default, and a field added to a model is on the command line at once.
Resolving the layers (defaults, YAML, options) is orchestration/configs/resolve.py's job.
"""

from __future__ import annotations

import argparse
import importlib
import typing
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pydantic import BaseModel


def add_model_options(parser: argparse.ArgumentParser, model: type[BaseModel], prefix: str = "") -> None:
    from orchestration.configs.resolve import nested_model

    group = parser.add_argument_group(f"{prefix.rstrip('.') or 'job'} options") if not prefix else parser
    for name, field in model.model_fields.items():
        nested = nested_model(field.annotation)
        key = f"{prefix}{name}"
        if nested is not None:
            add_model_options(parser, nested, f"{key}.")
            continue
        default = "" if field.is_required() else f" (default: {_show(field.get_default(call_default_factory=True))})"
        group.add_argument(
            f"--{key}",
            dest=key,
            default=argparse.SUPPRESS,
            metavar=_metavar(field.annotation),
            # argparse %-formats help strings; a description may hold a literal %.
            help=f"{field.description or ''}{default}".replace("%", "%%"),
        )


def defer_options(parser: argparse.ArgumentParser, build: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add `parser`'s options with `build` only when its command is the one run (main calls
    build_chosen_options): a config model and what it imports stay unloaded for every other
    command and for `soundry --help`."""
    earlier = parser.get_default("build_options")

    def build_all(chosen: argparse.ArgumentParser) -> None:
        if earlier is not None:
            earlier(chosen)
        build(chosen)

    parser.set_defaults(build_options=build_all)


def build_chosen_options(commands: argparse._SubParsersAction, argv: list[str]) -> None:
    chosen = commands.choices.get(argv[0]) if argv else None
    build = chosen.get_default("build_options") if chosen is not None else None
    if build is not None:
        build(chosen)


def add_job_arguments(parser: argparse.ArgumentParser, model: str) -> None:
    """--config, --print-config and one option per field of the job's model, named "module:Class".

    The model is imported only when this command is the one run; its class is then the
    namespace's `job_model`, which the handler resolves.
    """
    parser.add_argument("-c", "--config", metavar="YAML", help="job configuration file")
    parser.add_argument("--print-config", action="store_true", help="print the resolved configuration as YAML and exit")

    def build(chosen: argparse.ArgumentParser) -> None:
        module, name = model.split(":")
        job_model = getattr(importlib.import_module(module), name)
        add_model_options(chosen, job_model)
        chosen.set_defaults(job_model=job_model)

    defer_options(parser, build)


def job_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The job model's options given on the command line (argparse leaves the others unset)."""
    fields = set(args.job_model.model_fields)
    return {k: v for k, v in vars(args).items() if "." in k or k in fields}


def _metavar(annotation: Any) -> str:
    from orchestration.configs.resolve import is_union

    args = [a for a in typing.get_args(annotation) if a is not type(None)] if is_union(annotation) else [annotation]
    if typing.get_origin(args[0]) is typing.Literal:
        return "{" + ",".join(map(str, typing.get_args(args[0]))) + "}"
    name = getattr(args[0], "__name__", str(args[0]))
    return {"str": "TEXT", "int": "INT", "float": "NUMBER", "bool": "BOOL"}.get(name, "YAML")


def _show(value: Any) -> str:
    if hasattr(value, "model_fields"):  # a nested model: its own options list its fields
        return "..."
    return "empty" if value is None else str(value)
