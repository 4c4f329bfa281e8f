"""`soundry run PIPELINE.yaml`: raw audio folders in; curation, vocabularies, labels, a
published version, a VAE, the version's latents, the diffusion transformer, generated
samples and an evaluation of the model on the version's test split out.

Each stage writes into its own folder under `run_dir` and records, last, in
`run_dir/stages/<stage>.json` the fingerprint of what it was made from (its resolved config
and its inputs' fingerprints): a stage whose folder holds the same fingerprint is skipped, so an interrupted run resumes
(and the stages themselves resume inside: curation by unit, training by checkpoint). A
changed config is refused for a finished stage instead of silently mixing two runs; the eval
stage alone, which nothing reads, is measured again instead.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from curation.core.storage import write_json_atomic
from curation.core.strict_model import StrictModel, identity
from orchestration.configs.pipeline import PipelineConfig, SampleStage
from orchestration.configs.resolve import ConfigError
from orchestration.jobs.lease import output_lease

STAGES = "stages"


def run_pipeline(config: PipelineConfig, console: Console | None = None) -> dict[str, Any]:
    console = console or Console(stderr=True)
    with output_lease(config.run_dir, "soundry run", console):
        return _run_pipeline(config, console)


def _run_pipeline(config: PipelineConfig, console: Console) -> dict[str, Any]:
    from model.evaluation.config import EvalConfig
    from model.training.config import TrainConfig, VAETrainConfig
    from orchestration.configs.jobs import CurateJob, EncodeJob, LabelJob, ShardJob, VocabJob

    run = Path(config.run_dir)
    runner = config.runner.model_dump(mode="json")
    report: list[dict[str, Any]] = []

    curate_job = _job(
        CurateJob,
        "curate",
        config.curate,
        inputs=[i.model_dump() for i in config.inputs],  # not JSON: that form has the storage options redacted
        output=str(run / "curated"),
        runner=runner,
    )
    curated = _stage(run, "curated", curate_job, [], report, console, _curate)
    vocab_job = _job(
        VocabJob, "vocab", config.vocab, output=str(run / "vocab"), corpus=[str(run / "curated")], runner=runner
    )
    vocab = _stage(run, "vocab", vocab_job, [curated], report, console, _vocab)
    label_options, label_inputs = config.label, [curated, vocab]
    if config.analyze is not None:
        analysis = _analysis_stage(config, run, curated, report, console)
        label_options = {**config.label, "music": {**config.label.get("music", {}), "analysis": str(run / "analysis")}}
        label_inputs = [curated, vocab, analysis]
    label_job = _job(
        LabelJob,
        "label",
        label_options,
        clips=str(run / "curated"),
        vocab=str(run / "vocab"),
        output=str(run / "labels"),
        runner=runner,
    )
    labels = _stage(run, "labels", label_job, label_inputs, report, console, _label)
    publish_job = _job(
        ShardJob,
        "publish",
        config.publish,
        clips=str(run / "curated"),
        labels=str(run / "labels"),
        root=str(run / "versions"),
        version=config.version,
        runner=runner,
    )
    version = _stage(run, f"versions/{config.version}", publish_job, [curated, labels], report, console, _publish)
    version_dir = str(run / "versions" / config.version)

    if "checkpoint" in config.vae:
        vae_checkpoint = str(config.vae["checkpoint"])
        vae = hashlib.sha256(vae_checkpoint.encode()).hexdigest()
        report.append({"stage": "vae", "status": "given", "seconds": 0.0, "output": vae_checkpoint})
    else:
        vae_job = _job(
            VAETrainConfig,
            "vae",
            config.vae,
            output=str(run / "vae"),
            data={"version": version_dir, **config.vae.get("data", {})},
        )
        vae = _stage(run, "vae", vae_job, [version], report, console, _train_vae)
        vae_checkpoint = str(run / "vae" / "final")
    train_version, train_data = version_dir, version
    if config.latents:
        latent_version = f"{config.version}-latents"
        encode_job = _job(
            EncodeJob,
            "encode",
            config.encode,
            source=version_dir,
            vae=vae_checkpoint,
            root=str(run / "versions"),
            version=latent_version,
            runner=runner,
        )
        train_data = _stage(run, f"versions/{latent_version}", encode_job, [version, vae], report, console, _encode)
        train_version = str(run / "versions" / latent_version)
    train_job = _job(
        TrainConfig,
        "train",
        config.train,
        output=str(run / "train"),
        vae=vae_checkpoint,
        data={"version": train_version, **config.train.get("data", {})},
    )
    model = _stage(run, "train", train_job, [train_data, vae], report, console, _train)
    _stage(
        run,
        "samples",
        config.sample,
        [model],
        report,
        console,
        lambda job, out, console: _sample(job, str(run / "train" / "final"), out, console),
    )
    eval_job = _job(
        EvalConfig,
        "eval",
        {"clap": config.label.get("clap", {"backend": "random"}), **config.eval},
        generated=str(run / "eval" / "generated"),
        checkpoint=str(run / "train" / "final"),
        reference=version_dir,
        output=str(run / "eval"),
    )
    _stage(run, "eval", eval_job, [model, version], report, console, _eval, redo_on_change=True)
    report[-1]["figures"] = json.loads((run / STAGES / "eval.json").read_text())["summary"]

    write_json_atomic(str(run / "report.json"), report)
    _print_report(report, console)
    page = Path(version_dir, "explore", "index.html")
    if page.exists():  # listen to the version: the page opens from the folder, or `soundry view` serves it
        console.print(f"explorer page: {page} (or: soundry view {version_dir})", highlight=False)
    return {"run_dir": str(run), "stages": report}


def _analysis_stage(config: PipelineConfig, run: Path, curated: str, report: list, console: Console) -> str:
    """Tempo, key and chords of the curated clips (`soundry analyze`), which the label stage joins."""
    from orchestration.configs.jobs import AnalyzeJob

    if "analysis" in config.label.get("music", {}):
        raise ConfigError("label.music.analysis: set by the pipeline when it runs the analyze stage; remove it")
    job = _job(
        AnalyzeJob,
        "analyze",
        config.analyze,
        clips=str(run / "curated"),
        output=str(run / "analysis"),
        runner=config.runner.model_dump(mode="json"),
    )
    return _stage(run, "analysis", job, [curated], report, console, _analyze)


def _job(model: type[StrictModel], section: str, options: dict[str, Any], **paths: Any) -> StrictModel:
    """A stage's job: the pipeline's paths and engine, then the section's options over them."""
    clash = sorted(set(options) & set(paths) - {"data"})
    if clash:
        raise ConfigError(f"{section}.{clash[0]}: set by the pipeline (it wires the stages together); remove it")
    try:
        # paths["data"], where there is one, already holds the section's own data options
        return model.model_validate({**options, **paths})
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"{section}.{where}: {first['msg']}") from None


def _fingerprint(job: StrictModel, upstream: list[str]) -> str:
    """What the stage's output depends on: its config without execution settings (engine,
    workers, cluster address) and secrets, and its inputs' fingerprints."""
    text = json.dumps({"config": identity(job), "upstream": upstream}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _stage(
    run: Path,
    name: str,
    job: StrictModel,
    upstream: list[str],
    report: list[dict[str, Any]],
    console: Console,
    work: Callable[[Any, Path, Console], dict[str, Any]],
    *,
    redo_on_change: bool = False,
) -> str:
    out = run / name
    fingerprint = _fingerprint(job, upstream)
    record = run / STAGES / f"{name.replace('/', '-')}.json"
    if record.exists():
        found = json.loads(record.read_text())
        if found["fingerprint"] == fingerprint:
            report.append({"stage": name, "status": "skipped (done)", "seconds": 0.0, "output": str(out)})
            return fingerprint
        if redo_on_change:  # nothing downstream read it: its output is made again from scratch
            record.unlink()
            shutil.rmtree(out, ignore_errors=True)
        else:
            raise ConfigError(
                f"{out} was made from another configuration or other inputs; "
                f"choose a new run_dir, or delete {out} (and the stages after it) to redo it"
            )
    console.rule(f"[bold]{name}")
    started = time.perf_counter()
    summary = work(job, out, console)
    seconds = time.perf_counter() - started
    write_json_atomic(str(record), {"fingerprint": fingerprint, "seconds": seconds, "summary": summary})
    report.append({"stage": name, "status": "ran", "seconds": round(seconds, 1), "output": str(out)})
    return fingerprint


def _curate(job: Any, out: Path, console: Console) -> dict[str, Any]:
    from orchestration.jobs.curate import curate
    from orchestration.jobs.progress import print_summary

    summary = curate(job, console)
    print_summary(summary, console)
    return summary


def _vocab(job: Any, out: Path, console: Console) -> dict[str, Any]:
    from orchestration.jobs.vocab import build_vocabularies

    return build_vocabularies(job, console)


def _analyze(job: Any, out: Path, console: Console) -> dict[str, Any]:
    from orchestration.cli.analyze import print_analysis_summary
    from orchestration.jobs.analyze import analyze_clips

    summary = analyze_clips(job, console)
    print_analysis_summary(summary, console)
    return summary


def _label(job: Any, out: Path, console: Console) -> dict[str, Any]:
    from orchestration.jobs.label import label

    return label(job, console)


def _publish(job: Any, out: Path, console: Console) -> dict[str, Any]:
    from orchestration.jobs.shard import publish_version

    return publish_version(job, console)


def _encode(job: Any, out: Path, console: Console) -> dict[str, Any]:
    from orchestration.cli.encode import print_encode_summary
    from orchestration.jobs.encode import encode_version

    summary = encode_version(job, console)
    print_encode_summary(summary, console)
    return summary


def _train_vae(job: Any, out: Path, console: Console) -> dict[str, Any]:
    from model.training.train_vae import train_vae

    with output_lease(str(out), "soundry run (train-vae)", console):
        return _finish_training(train_vae(job), out)


def _train(job: Any, out: Path, console: Console) -> dict[str, Any]:
    from model.training.train import train

    with output_lease(str(out), "soundry run (train)", console):
        return _finish_training(train(job), out)


def _finish_training(summary: dict[str, Any], out: Path) -> dict[str, Any]:
    """Point `final` at the last checkpoint, so later stages name one stable path."""
    if summary["stopped_early"]:
        raise KeyboardInterrupt
    final = out / "final"
    final.unlink(missing_ok=True)
    final.symlink_to(Path(summary["checkpoint"]).relative_to(out))
    return summary


def _sample(job: SampleStage, checkpoint: str, out: Path, console: Console) -> dict[str, Any]:
    from model.checkpoint import load_checkpoint
    from model.generate import generate, write_wav

    model = load_checkpoint(checkpoint, use_ema=True).eval()
    audio = generate(
        model, job.prompts, job.seconds, length_s=job.seconds, steps=job.steps, cfg_scale=job.cfg_scale, seed=job.seed
    )
    files = []
    for i, (prompt, clip) in enumerate(zip(job.prompts, audio, strict=True)):
        path = out / f"sample-{i}.wav"
        write_wav(path, clip, model.config.sample_rate)
        files.append({"prompt": prompt, "file": str(path)})
        console.print(f"{path}: {prompt!r}")
    return {"samples": files}


def _eval(job: Any, out: Path, console: Console) -> dict[str, Any]:
    from model.evaluation.evaluate import REPORT_FILE, evaluate
    from orchestration.cli.evaluate import eval_figures, print_eval_summary

    report = evaluate(job)
    print_eval_summary(report, str(out / REPORT_FILE), console)
    return eval_figures(report)


def _print_report(report: list[dict[str, Any]], console: Console) -> None:
    table = Table(title="soundry run")
    for column in ("stage", "status", "seconds", "output"):
        table.add_column(column)
    for row in report:
        table.add_row(row["stage"], row["status"], f"{row['seconds']:.1f}", row["output"])
    console.print(table)
    for row in report:
        if "figures" in row:
            console.print(_figures_line(row["figures"]), highlight=False)


def _figures_line(figures: dict[str, Any]) -> str:
    """The eval stage's figures in one line, saying when weights were random (the demo's are)."""
    parts = [f"FAD {figures['fad']:.4f}"]
    if figures.get("tag_kl") is not None:
        parts.append(f"tag KL {figures['tag_kl']:.4f}")
    parts += [
        f"CLAP score {side} {figures[f'clap_score_{side}']:.4f}"
        for side in ("generated", "reference")
        if f"clap_score_{side}" in figures
    ]
    random = [
        *(["CLAP"] if figures["random_clap_weights"] else []),
        *(["generating model"] if figures.get("model_weights") == "random" else []),
    ]
    note = (
        f" [yellow](random weights: {', '.join(random)}; figures check the machinery, not quality)[/]" if random else ""
    )
    return f"eval ({figures['clips']} clips, model step {figures.get('model_step')}): {' · '.join(parts)}{note}"
