"""`soundry train`: the diffusion transformer on a published dataset version.

One visible loop, top to bottom: setup -> data -> model, EMA, optimizer -> resume -> steps
(accumulate, clip, step, EMA) -> log, checkpoint, demo. Launched as one process, or one
process per GPU by torchrun / Ray Train (model/training/distributed.py reads their environment):
every rank reads its own part of the data, rank 0 logs and writes checkpoints.

Every random draw of a step (timesteps, noise, CFG dropout) comes from a generator seeded
by (seed, step, rank, micro-step), and the loader's position is saved with the weights, so
a run stopped at step N and resumed is the run that never stopped.

`parallel: fsdp` shards the model with FSDP2 instead of replicating it with DDP (see
model/training/distributed.py); the loop is the same, and checkpoints hold whole tensors either way.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from curation.core.errors import UserError
from curation.core.storage import write_json_atomic
from model.checkpoint import checkpoint_writer, load_checkpoint, load_vae, write_model_files
from model.config import ModelConfig, preset
from model.generate import generate
from model.latent_diffusion import LatentDiffusion
from model.sao.checkpoint import load_sao_vae_weights, load_sao_weights
from model.sao.config import from_sao_model_config
from model.training.config import DEFAULT_MODEL, TrainConfig
from model.training.data import endless, step_generator, to_device
from model.training.data import loader_config as loader_config_for
from model.training.distributed import (
    Distributed,
    any_rank,
    barrier,
    clip_gradients,
    close_distributed,
    full_model_state,
    full_optimizer_state,
    gradient_sync,
    init_distributed,
    is_sharded,
    load_optimizer_state,
    mean_over_ranks,
    uses_bf16,
    wrap_model,
)
from model.training.ema import EMA
from model.training.log import TrainLog
from model.training.lr_schedule import lr_factor
from model.training.preemption import StopRequest
from model.training.state import (
    latest_checkpoint,
    load_training_state,
    prune_checkpoints,
    resuming_from,
    rng_state,
    save_training_state,
    set_rng_state,
    step_folder,
)
from model.weights import load_strict, read_tensors
from shards.loader.batch import TrainingBatch
from shards.loader.loader import make_loader

log = logging.getLogger("soundry.train")

SUMMARY = "summary.json"  # in the run folder, written by rank 0 when training ends or stops


class TrainError(UserError):
    """A training setup the user must fix (data and model disagree, a missing VAE); names what."""


class Objective(nn.Module):
    """The loss as a module's forward, so DDP sees the call it hooks into."""

    def __init__(self, model: LatentDiffusion) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: TrainingBatch, generator: torch.Generator) -> Tensor:
        return self.model.loss(batch, generator)


def train(config: TrainConfig) -> dict[str, Any]:
    # ---- setup
    ctx = init_distributed(config.device)
    run = Path(config.output)
    checkpoints = run / "checkpoints"
    bf16 = uses_bf16(config.precision, ctx)
    torch.manual_seed(config.seed)

    # ---- model (with the weights it resumes from), DDP or FSDP2, EMA, optimizer
    model = build_model(config).to(ctx.device).train()
    latest = latest_checkpoint(checkpoints)
    if latest is not None:
        with resuming_from(latest):
            load_strict(model, read_tensors(latest / "model.safetensors"), str(latest), skip=model.text_encoder_keys())
    # Wrapped before the EMA and optimizer take the parameters: FSDP2 replaces them with shards.
    objective = wrap_model(Objective(model), ctx, config.parallel, blocks=model.dit.blocks, bf16=bf16)
    ema = EMA(model, config.ema_decay, config.ema_warmup_steps)
    optimizer = torch.optim.AdamW(
        model.trainable_parameters().values(),
        lr=config.optimizer.lr,
        betas=config.optimizer.betas,
        weight_decay=config.optimizer.weight_decay,
        eps=config.optimizer.eps,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, functools.partial(lr_factor, config=config.schedule, max_steps=config.max_steps)
    )

    # ---- data
    loader_config = loader_config_for(config.data, model.config)
    loader = make_loader(config.data.version, loader_config, ctx.rank, ctx.world_size, seed=config.seed)

    # ---- resume the rest; the run's log folder is made only now that model and data are valid
    train_log = TrainLog(run, ctx.is_main)
    step = 0
    if latest is not None:
        with resuming_from(latest):
            step = _resume(latest, model, ema, optimizer, scheduler, loader, ctx)
        train_log.line(f"resumed from {latest} at step {step}")
    train_log.start(config, model, ctx, loader_config)

    # ---- loop
    stop = StopRequest()
    batches = endless(loader)
    frames_per_example = loader_config.latent_size if loader_config.latents else model.config.latent_length
    window_started, window_examples, losses = time.perf_counter(), 0, []
    while step < config.max_steps:
        optimizer.zero_grad(set_to_none=True)
        for micro in range(config.grad_accum):
            batch = to_device(next(batches), ctx.device)
            generator = step_generator(ctx.device, config.seed, step, ctx.rank, micro)
            last = micro == config.grad_accum - 1
            # Gradients are summed locally over micro-steps and averaged over ranks once, at the last.
            with gradient_sync(objective, last), torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=bf16):
                loss = objective(batch, generator) / config.grad_accum
            loss.backward()
            losses.append(loss.detach() * config.grad_accum)
            window_examples += len(batch["prompt"])
        grad_norm = clip_gradients(model.trainable_parameters().values(), config.clip_grad_norm)
        optimizer.step()
        scheduler.step()
        ema.update(model)
        step += 1

        if step % config.log_every == 0 or step == config.max_steps:
            elapsed = time.perf_counter() - window_started
            mean_loss = mean_over_ranks(torch.stack(losses).mean(), ctx).item()
            examples = window_examples * ctx.world_size
            train_log.scalars(
                step,
                {
                    "loss": mean_loss,
                    "lr": scheduler.get_last_lr()[0],
                    "grad_norm": grad_norm.item(),
                    "samples_per_s": examples / elapsed,
                    "latent_frames_per_s": examples * frames_per_example / elapsed,
                    **_memory(ctx.device),
                },
            )
            window_started, window_examples, losses = time.perf_counter(), 0, []
        stopping = any_rank(stop.requested(), ctx)
        saving = stopping or step % config.checkpoint_every == 0 or step == config.max_steps
        demo_due = bool(config.demo.every and step % config.demo.every == 0) or step == config.max_steps
        if saving or demo_due:
            # Whole tensors on rank 0's CPU, gathered from every rank's shards under FSDP2 (all ranks take part).
            weights, averaged = full_model_state(model), ema.full_state(keep=ctx.is_main)
        if saving:
            _save(
                step_folder(checkpoints, step),
                model,
                weights,
                averaged,
                optimizer,
                scheduler,
                loader,
                ema.updates,
                step,
                config,
                ctx,
            )
            if ctx.is_main:
                prune_checkpoints(checkpoints, config.keep_checkpoints)
            train_log.line(f"checkpoint {step_folder(checkpoints, step)}")
        if ctx.is_main and demo_due:
            _demo(model, weights, averaged, config, step, train_log)
        if stopping:
            train_log.line(
                f"{stop.signal_name or 'stop'} received: checkpoint written at step {step}; "
                "run the same command to resume"
            )
            break
    summary = {
        "rank": ctx.rank,
        "step": step,
        "stopped_early": step < config.max_steps,
        "checkpoint": str(step_folder(checkpoints, step)),
        "world_size": ctx.world_size,
        "replicas_agree": _replicas_agree(model, ctx),
        "loader_errors": loader.errors,
        **train_log.last,
    }
    if ctx.is_main:
        write_json_atomic(str(run / SUMMARY), summary)
    train_log.close()
    del objective  # before the process group ends (see close_distributed)
    close_distributed(ctx)
    return summary


def build_model(config: TrainConfig) -> LatentDiffusion:
    """The model the config names, with the weights it starts from (init_from) and its VAE."""
    init = Path(config.init_from) if config.init_from else None
    if init is not None and init.is_dir():
        if config.model is not None:
            raise TrainError(
                f"model: {config.model} and init_from {init} both name an architecture; leave `model` empty, "
                "a checkpoint folder brings its own"
            )
        model = load_checkpoint(init, use_ema=True, text_encoder=config.text_encoder)
        if not isinstance(model, LatentDiffusion):
            raise TrainError(f"init_from {init} is a VAE checkpoint; give a diffusion checkpoint, or the VAE as `vae`")
        if config.sample_size is not None:  # fine-tuning on other crop lengths than the folder's model was made for
            model.config = _with_sample_size(model.config, config.sample_size)
    else:
        model_config = model_config_for(config.model or DEFAULT_MODEL, config.sample_size)
        if config.text_encoder is not None:
            model_config = model_config.with_text_encoder_path(config.text_encoder)
        model = LatentDiffusion(model_config)
        if init is not None:
            load_sao_weights(model, read_tensors(init), str(init))
    if config.vae:
        _load_vae(model, config.vae)
    elif init is None:
        log.warning(
            "no VAE given (vae:): the VAE has random weights; train one with `soundry train-vae` for real audio"
        )
    return model


def model_config_for(model: str, sample_size: int | None = None) -> ModelConfig:
    """A preset or a model_config.json, with the training crop length when one is given."""
    if model.endswith(".json"):
        model_config = from_sao_model_config(model)
    else:
        try:
            model_config = preset(model)
        except KeyError as error:
            raise TrainError(f"model: {error.args[0]} (or give a path to a model_config.json)") from None
    return model_config if sample_size is None else _with_sample_size(model_config, sample_size)


def _with_sample_size(model_config: ModelConfig, sample_size: int) -> ModelConfig:
    try:
        return ModelConfig.model_validate(model_config.model_dump() | {"sample_size": sample_size})
    except ValueError as error:
        raise TrainError(f"sample_size: {error}") from None


def _load_vae(model: LatentDiffusion, source: str) -> None:
    """A `soundry train-vae` checkpoint (its EMA weights) or SAO's VAE file, strictly."""
    path = Path(source)
    if path.is_dir():
        vae = load_vae(path, use_ema=True)
        if vae.config != model.config.vae:
            raise TrainError(
                f"vae {path}: its architecture differs from the model's vae section; "
                "train with the model config the VAE was trained with"
            )
        model.vae.load_state_dict(vae.state_dict())
    else:
        load_sao_vae_weights(model.vae, read_tensors(path), str(path))


def _resume(
    folder: Path,
    model: LatentDiffusion,
    ema: EMA,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    loader: Any,
    ctx: Distributed,
) -> int:
    """Everything but the weights (loaded before wrapping): EMA, optimizer, schedule, data, RNG."""
    state = load_training_state(folder)
    ema.load_state_dict({"updates": state["ema_updates"], "shadow": read_tensors(folder / "ema.safetensors")})
    load_optimizer_state(model, optimizer, state["optimizer"], ctx)
    scheduler.load_state_dict(state["scheduler"])
    positions = state["loader"]
    if len(positions) == ctx.world_size:
        loader.load_state_dict(positions[ctx.rank])
    else:
        # Each rank reads its own part of the data, so positions saved by another number of ranks
        # do not apply here: the data go on from the start of the next epoch (not exactly resumable).
        loader.set_epoch(max(position["epoch"] for position in positions) + 1)
        log.warning(
            "the checkpoint %s was written by %d rank(s), this run has %d: the data continue from the next "
            "epoch, not from where they stopped",
            folder,
            len(positions),
            ctx.world_size,
        )
    set_rng_state(state["rng"])
    return int(state["step"])


def _save(
    folder: Path,
    model: LatentDiffusion,
    weights: dict[str, Tensor],
    averaged: dict[str, Tensor],
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    loader: Any,
    ema_updates: int,
    step: int,
    config: TrainConfig,
    ctx: Distributed,
) -> None:
    """All ranks hand rank 0 their loader position and their part of the optimizer state; rank 0
    commits the folder. The optimizer state is a full state dict keyed by parameter name, the same
    under DDP, FSDP2 and one process, so a checkpoint resumes under any of them."""
    positions = gather(loader.state_dict(), ctx)
    optimizer_state = full_optimizer_state(model, optimizer)
    if ctx.is_main:
        with checkpoint_writer(folder) as tmp:
            write_model_files(
                tmp,
                model,
                state=weights,
                ema_state=averaged,
                step=step,
                metadata={"train": config.model_dump(mode="json")},
            )
            save_training_state(
                tmp,
                {
                    "step": step,
                    "optimizer": optimizer_state,
                    "scheduler": scheduler.state_dict(),
                    "ema_updates": ema_updates,
                    "loader": positions,
                    "rng": rng_state(),
                },
            )
    barrier(ctx)


def _replicas_agree(model: LatentDiffusion, ctx: Distributed) -> bool:
    """Whether every rank ends with the same copy of each replicated weight (what DDP promises;
    checked, not assumed). Under FSDP2 a trained weight is sharded, each part held by one rank:
    there are no copies to compare (gathering them would give every rank the same tensor by
    construction), so the check covers the weights still replicated, the frozen VAE and text encoder."""
    digest = hashlib.sha256()
    for name, p in sorted(model.named_parameters()):
        if not is_sharded(p):
            digest.update(name.encode() + p.detach().float().cpu().numpy().tobytes())
    return len(set(gather(digest.hexdigest(), ctx))) == 1


def gather(obj: Any, ctx: Distributed) -> list[Any]:
    if not ctx.active:
        return [obj]
    gathered: list[Any] = [None] * ctx.world_size
    torch.distributed.all_gather_object(gathered, obj)
    return gathered


def _demo(
    model: LatentDiffusion,
    weights: dict[str, Tensor],
    averaged: dict[str, Tensor],
    config: TrainConfig,
    step: int,
    train_log: TrainLog,
) -> None:
    sampler = _sampler(model, weights, averaged)
    demo = config.demo
    audio = generate(
        sampler,
        demo.prompts,
        demo.seconds,
        length_s=demo.seconds,
        steps=demo.steps,
        cfg_scale=demo.cfg_scale,
        seed=config.seed,
    )
    train_log.demo(step, demo.prompts, audio, model.config.sample_rate)


def _sampler(model: LatentDiffusion, weights: dict[str, Tensor], averaged: dict[str, Tensor]) -> LatentDiffusion:
    """A plain model holding the EMA weights, for sampling on rank 0 whether the trained one is
    replicated or sharded: built on the meta device (no memory, no random draws) around the
    trained model's frozen VAE and text encoder (whole on every rank, and sampling leaves them
    as they are), then given the whole tensors gathered from the ranks."""
    with torch.device("meta"):
        sampler = LatentDiffusion(model.config, vae=model.vae, text_encoder=model.conditioners.text_encoder)
    shared = {f"vae.{k}" for k in model.vae.state_dict()} | model.text_encoder_keys()
    load_strict(
        sampler, {k: v for k, v in weights.items() if k not in shared} | averaged, "the demo's weights", skip=shared
    )
    return sampler.to(next(model.vae.parameters()).device).eval()


def _memory(device: torch.device) -> dict[str, float]:
    if device.type != "cuda":
        return {}
    return {"gpu_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30}
