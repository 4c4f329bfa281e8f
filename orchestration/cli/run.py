"""`soundry run PIPELINE.yaml` and `soundry demo`: the whole road, raw audio to generated audio."""

from __future__ import annotations

import argparse
import logging
import os
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

    from orchestration.configs.pipeline import PipelineConfig


def add_commands(commands: argparse._SubParsersAction) -> None:
    run = commands.add_parser(
        "run",
        help="the whole road: curate, vocab, label, publish, train-vae, train, sample",
        description="Run every stage on raw audio folders. Each stage is skipped when its output for the same "
        "config and inputs exists, so an interrupted run resumes. The YAML has one section per stage "
        "(see orchestration/jobs/demo_pipeline.yaml); --set overrides one value.",
    )
    run.add_argument("config", metavar="PIPELINE.yaml", help="pipeline configuration")
    run.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a value, e.g. --set train.max_steps=500 (repeatable)",
    )
    run.set_defaults(handler=_run)

    demo = commands.add_parser(
        "demo",
        help="generate the demo corpus and run the whole road on it (minutes on 2 CPU cores)",
        description="Generate the procedural demo corpus (if missing) and run the embedded demo pipeline on it: "
        "template vocabulary, random CLAP, tiny VAE and DiT, a generated WAV at the end.",
    )
    demo.add_argument("--dir", default="demo", help="folder for the demo corpus and run (default: demo)")
    demo.add_argument("--pieces", type=int, default=36, help="number of demo pieces (default: 36)")
    demo.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="override a pipeline value (repeatable)"
    )
    demo.set_defaults(handler=_demo)


def _run(args: argparse.Namespace, console: Console) -> int:
    from orchestration.configs.pipeline import PipelineConfig
    from orchestration.configs.resolve import resolve

    return _execute(resolve(PipelineConfig, args.config, _overrides(args.set)), console)


def _demo(args: argparse.Namespace, console: Console) -> int:
    import yaml

    from curation.demo.corpus import generate_demo_corpus, write_demo_captions
    from curation.demo.truth import write_demo_truth
    from orchestration.configs.pipeline import PipelineConfig
    from orchestration.configs.resolve import resolve

    corpus = Path(args.dir) / "corpus"
    console.print(f"demo corpus: {corpus} ({args.pieces} pieces)")
    pieces = generate_demo_corpus(corpus, n_pieces=args.pieces, workers=os.cpu_count() or 1)
    # Beside the corpus, not in it: the rater captions of the demo's vocabularies (Rater-LF sentences, aspect tags).
    captions = write_demo_captions(pieces, Path(args.dir) / "rater_captions.csv")
    # What each piece is (caption, aspect tags, the tempo and key it was written in): the analyze
    # and label stages score themselves against it.
    truth = write_demo_truth(pieces, corpus, Path(args.dir) / "demo_truth.csv")
    base = yaml.safe_load(resources.files("orchestration.jobs").joinpath("demo_pipeline.yaml").read_text())
    if base.get("analyze") is not None:
        base["analyze"] = {**base["analyze"], "truth": str(truth)}
    base |= {
        "run_dir": str(Path(args.dir) / "run"),
        "inputs": [{"path": str(corpus), "source_name": "soundry-demo", "license": "CC0-1.0"}],
    }
    base["vocab"] = {
        **base.get("vocab", {}),
        "captions": [{"path": str(captions), "name": "soundry-demo", "tags_column": "aspect_list"}],
    }
    base["label"] = {**base.get("label", {}), "truth": str(truth)}
    # The eval's tag distributions over the demo's own few dozen tags: the built-in thousand would
    # take random CLAP longer to embed than the rest of the eval stage.
    base["eval"] = {**base.get("eval", {}), "tags": str(_write_demo_tags(captions, Path(args.dir) / "eval_tags.txt"))}
    return _execute(resolve(PipelineConfig, None, _overrides(args.set), base=base), console)


def _write_demo_tags(captions: Path, path: Path) -> Path:
    import ast
    import csv

    with captions.open(newline="", encoding="utf-8") as f:
        tags = sorted({tag for row in csv.DictReader(f) for tag in ast.literal_eval(row["aspect_list"])})
    path.write_text("".join(f"{tag}\n" for tag in tags), encoding="utf-8")
    return path


def _execute(config: PipelineConfig, console: Console) -> int:
    from rich.logging import RichHandler

    from orchestration.jobs.pipeline import run_pipeline

    logging.basicConfig(
        level=logging.INFO, format="%(message)s", handlers=[RichHandler(console=console, show_path=False)], force=True
    )
    run_pipeline(config, console)
    return 0


def _overrides(pairs: list[str]) -> dict[str, str]:
    from orchestration.configs.resolve import ConfigError

    overrides = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {pair!r}: expected KEY=VALUE, e.g. --set train.max_steps=500")
        overrides[key] = value
    return overrides
