"""`soundry train`: the diffusion transformer on a published version, on one process, under
torchrun (one process per GPU, one node or many), or on a Ray cluster through Ray Train."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orchestration.cli.options import add_job_arguments, job_overrides

if TYPE_CHECKING:
    from rich.console import Console


def add_commands(commands: argparse._SubParsersAction) -> None:
    train = commands.add_parser(
        "train",
        help="train the diffusion transformer on a published dataset version",
        description="Train the DiT (on latents when the version has them, else on audio through the frozen VAE). "
        "Run it as is, under torchrun (`torchrun --nproc_per_node 8 -m orchestration.cli train ...`), or on a "
        "Ray cluster with --ray-address. Running the same command again resumes from the newest checkpoint.",
    )
    train.add_argument(
        "--ray-address",
        metavar="ADDRESS",
        help="train on this Ray cluster with Ray Train (`auto`: the one this machine joined)",
    )
    train.add_argument(
        "--ray-workers",
        type=int,
        default=1,
        metavar="N",
        help="Ray Train workers (one per GPU when the cluster has GPUs; default 1)",
    )
    add_job_arguments(train, "model.training.config:TrainConfig")
    train.set_defaults(handler=_train)

    vae = commands.add_parser(
        "train-vae",
        help="train the audio autoencoder (VAE) on a published dataset version",
        description="Train the VAE with STFT, adversarial, feature-matching and KL losses. Runs as is or under "
        "torchrun like `soundry train`; running the same command again resumes from the newest checkpoint.",
    )
    add_job_arguments(vae, "model.training.config:VAETrainConfig")
    vae.set_defaults(handler=_train_vae)


def _train(args: argparse.Namespace, console: Console) -> int:
    if args.ray_address:
        from orchestration.jobs.train_ray import train_on_ray

        return _run(args, console, lambda config: train_on_ray(config, args.ray_address, args.ray_workers))
    from model.training.train import train

    return _run(args, console, train)


def _train_vae(args: argparse.Namespace, console: Console) -> int:
    from model.training.train_vae import train_vae

    return _run(args, console, train_vae)


def _run(args: argparse.Namespace, console: Console, trainer: Callable[[Any], dict[str, Any]]) -> int:
    """Resolve the config; print it, or train with it and print rank 0's summary."""
    from orchestration.configs.resolve import resolve, to_yaml

    config = resolve(args.job_model, args.config, job_overrides(args))
    if hasattr(config, "recipe"):  # `train`: the recipe's defaults under the file and the options
        from model.training.recipes import named_recipe, recipe_defaults

        config = named_recipe(resolve(args.job_model, args.config, job_overrides(args), base=recipe_defaults(config)))
    if args.print_config:
        print(to_yaml(config), end="")
        return 0
    _log_to(console)
    with _run_folder_lease(config.output, f"soundry {args.command}", console):
        summary = trainer(config)
    if summary.get("rank", 0) == 0:
        print(json.dumps(summary, indent=2))
    return 0


def _run_folder_lease(output: str, command: str, console: Console) -> contextlib.AbstractContextManager:
    """The run folder's lease, held by the launching process or rank 0 of a torchrun job (the
    other ranks write into rank 0's folder under its lease)."""
    if int(os.environ.get("RANK", "0")) != 0:
        return contextlib.nullcontext()
    from orchestration.jobs.lease import output_lease

    return output_lease(output, command, console)


def _log_to(console: Console) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)], force=True
    )
