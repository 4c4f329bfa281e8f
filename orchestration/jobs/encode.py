"""`soundry encode`: a version's audio through a frozen VAE into a new version with latents.

Every shard of the source is one unit for the engine's model workers (the VAE is loaded
once per worker, on a GPU where the cluster has them): each streams the source tar and
writes the derived one. Shards already written are found and skipped, so a killed run
resumes; the new version is committed (stats, card, manifest last) when all are there.
"""

from __future__ import annotations

import functools
import time
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from curation.core.lease import OutputLease
from curation.core.storage import join
from curation.core.strict_model import identity
from model.latents.config import EncodeConfig
from orchestration.configs.jobs import EncodeJob
from orchestration.jobs.lease import output_lease

LATENT_MEMBER = "latent.npy"


def encode_version(job: EncodeJob, console: Console | None = None) -> dict[str, Any]:
    from shards.publish import refuse_published

    console = console or Console(stderr=True)
    config = job.stage_config()
    target = join(config.root, config.version)
    refuse_published(target)
    with output_lease(target, "soundry encode", console) as lease:
        return _encode_version(job, config, target, lease, console)


def _encode_version(
    job: EncodeJob, config: EncodeConfig, target: str, lease: OutputLease, console: Console
) -> dict[str, Any]:
    # torch and the shard writers load here, not with the command line.
    from model.latents.encode import EncodeError, LatentEncoder, check_vae_weights, vae_format, vae_weights_sha256
    from orchestration.engines.base import ModelStage
    from orchestration.engines.registry import make_runner, worker_count
    from shards.derive import claim_derived, derived_shards, finish_derived
    from shards.manifest import read_manifest
    from shards.writer import ShardResult, find_written_shard

    started = time.perf_counter()
    source = read_manifest(config.source)
    form = vae_format(config)
    if LATENT_MEMBER in source["members"]:
        raise EncodeError(f"source {config.source} already carries latents; encode the version it was derived from")
    audio = source["audio"]
    if (audio["sample_rate"], audio["channels"]) != (form.sample_rate, form.channels):
        raise EncodeError(
            f"source {config.source} holds {audio['sample_rate']} Hz, {audio['channels']} channel(s) audio; "
            f"the VAE {config.vae} takes {form.sample_rate} Hz, {form.channels} channel(s): publish a "
            "version curated at the VAE's format (curation's sample_rate and channels)"
        )
    check_vae_weights(config)
    # Without how the work is spread (model workers, GPUs): a resumed run may change that.
    recorded = {**identity(config), "vae_sha256": vae_weights_sha256(config)}
    claim_derived(target, config.source, recorded)
    lease.remove_stale_temporaries()
    shards = derived_shards(config.source, target)
    found = {shard.name: find_written_shard(target, shard.name) for shard in shards}
    results = [r for r in found.values() if r is not None]
    pending = [shard for shard in shards if found[shard.name] is None]
    if pending:
        runner = make_runner(job.runner)  # no warm imports: the CPU step passes the shard on as it is
        try:
            with Progress(
                TextColumn("[bold]encode"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("shards"),
                TimeElapsedColumn(),
                console=console,
            ) as progress:
                bar = progress.add_task("encode", total=len(shards), completed=len(results))
                stage = ModelStage(
                    prepare=_shard_payload,
                    load=functools.partial(LatentEncoder, config),
                    workers=config.model_workers,
                    num_gpus=config.gpus_per_model_worker,
                )
                done = runner.map_model(stage, pending, lambda _: progress.advance(bar))
        finally:
            runner.close()
        results += [ShardResult.from_dict(r) for r in done]
    derivation = {
        "latents": {
            "source": config.source,
            "vae": config.vae,
            "vae_sha256": recorded["vae_sha256"],
            "mode": config.latents,
            "dtype": config.dtype,
            **form.lineage(),
        }
    }
    lease.check()
    manifest = finish_derived(
        config.source,
        target,
        results,
        name=config.name or source["name"],
        description=config.description if config.description is not None else source["description"],
        added=[LATENT_MEMBER],
        derivation=derivation,
        config=recorded,
    )
    fresh = [r for r in results if not r.resumed]
    return {
        "version": target,
        "source": config.source,
        "vae": config.vae,
        "runner": job.runner.name,
        "workers": worker_count(job.runner),
        "model_workers": config.model_workers,
        "clips": manifest["totals"]["clips"],
        "hours": manifest["totals"]["hours"],
        "shards": len(results),
        "shards_resumed": len(results) - len(fresh),
        "bytes": manifest["totals"]["bytes"],
        "latent_rate": form.sample_rate / form.vae.downsampling_ratio,
        "latent_dim": form.vae.latent_dim,
        "wall_s": time.perf_counter() - started,
    }


def _shard_payload(shard: Any) -> Any:
    """Nothing to prepare on CPU workers: the model worker streams its shard itself."""
    return shard
