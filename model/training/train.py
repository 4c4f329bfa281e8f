"""`soundry train`: the diffusion transformer on a published dataset version.

One visible loop, top to bottom: setup -> resume point -> model, EMA, optimizer -> data ->
resume -> steps (accumulate, clip, step, EMA) -> log, validate, checkpoint, demo. Launched as one
process, or one process per GPU by torchrun / Ray Train (model/training/distributed.py reads
their environment): every rank reads its own part of the data, rank 0 logs.

Every random draw of a step (timesteps, noise, CFG dropout) comes from a generator seeded
by (seed, step, rank, micro-step), and the loader's position is saved with the weights, so
a run stopped at step N and resumed is the run that never stopped.

`parallel: fsdp` shards the model with FSDP2 instead of replicating it with DDP (see
model/training/distributed.py); the loop is the same. Checkpoints (model/training/checkpointing.py)
are whole tensors written by rank 0, or under FSDP2 shards written by every rank at once.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from curation.core.errors import UserError
from curation.core.storage import write_json_atomic
from model.checkpoint import load_checkpoint, load_vae, read_checkpoint_info
from model.config import ModelConfig, preset
from model.latent_diffusion import LatentDiffusion
from model.sao.checkpoint import load_sao_vae_weights, load_sao_weights
from model.sao.config import from_sao_model_config
from model.training.checkpointing import CheckpointSaver, load_whole_weights, restore
from model.training.config import DEFAULT_MODEL, TrainConfig
from model.training.data import endless, step_generator, to_device
from model.training.data import loader_config as loader_config_for
from model.training.demo import demo, sampler_with
from model.training.distributed import (
    Distributed,
    clip_gradients,
    close_distributed,
    full_model_state,
    gather,
    gradient_sync,
    init_distributed,
    is_sharded,
    mean_over_ranks,
    uses_bf16,
    wrap_model,
)
from model.training.ema import EMA
from model.training.log import TrainLog
from model.training.lr_schedule import lr_factor
from model.training.periodic_eval import PeriodicEval
from model.training.preemption import StopRequest, StopVote
from model.training.resume import check_unchanged, data_identity, resume_folder
from model.training.state import resuming_from, step_folder
from model.training.throughput import Throughput
from model.training.validation import Validation
from model.weights import load_strict, read_tensors
from shards.loader.batch import TrainingBatch
from shards.loader.loader import make_loader

log = logging.getLogger("soundry.train")

SUMMARY = "summary.json"  # in the run folder, written by rank 0 when training ends or stops


class TrainError(UserError):
    """A training setup the user must fix (data and model disagree, a missing VAE); names what."""


class Objective(nn.Module):
    """The loss as a module's forward, so DDP and FSDP2 see the call they hook into: the training
    loss, or (given a time t) the fixed-time validation loss."""

    def __init__(self, model: LatentDiffusion) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: TrainingBatch, generator: torch.Generator, t: float | None = None) -> Tensor:
        if t is None:
            return self.model.loss(batch, generator)
        return self.model.fixed_time_loss(batch, t, generator)


def train(config: TrainConfig) -> dict[str, Any]:
    # ---- setup
    ctx = init_distributed(config.device)
    run = Path(config.output)
    checkpoints = run / "checkpoints"
    bf16 = uses_bf16(config.precision, ctx)
    torch.manual_seed(config.seed)
    identity = data_identity(config.data.version)

    # ---- the checkpoint to resume from: rank 0's choice, refused if the config changed beyond execution
    latest = resume_folder(checkpoints, ctx)
    if latest is not None:
        with resuming_from(latest):
            check_unchanged(latest, config, read_checkpoint_info(latest).metadata)

    # ---- model (with the weights it resumes from), DDP or FSDP2, EMA, optimizer
    model = build_model(config).to(ctx.device).train()
    model.dit.set_activation_checkpointing(config.activation_checkpointing)
    if config.compile == "on" or (config.compile == "auto" and ctx.device.type == "cuda"):
        compile_blocks(model, config.compile_backend)
    if latest is not None:
        with resuming_from(latest):
            whole = load_whole_weights(latest)
            if whole is not None:
                load_strict(model, whole, str(latest), skip=model.text_encoder_keys())
    # Wrapped before the EMA and optimizer take the parameters: FSDP2 replaces them with shards.
    objective = wrap_model(Objective(model), ctx, config.parallel, blocks=model.dit.blocks, bf16=bf16)
    ema = EMA(model, config.ema_decay, config.ema_warmup_steps, config.ema_warmup_power)
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
    loader_config = loader_config_for(config.data, model.config, pin_memory=ctx.device.type == "cuda")
    loader = make_loader(config.data.version, loader_config, ctx.rank, ctx.world_size, seed=config.seed)

    # ---- resume the rest; the run's log folder is made only now that model and data are valid
    train_log = TrainLog(run, ctx.is_main, config)
    step = 0
    if latest is not None:
        with resuming_from(latest):
            step = restore(latest, model, ema, optimizer, scheduler, loader, ctx)
        train_log.line(f"resumed from {latest} at step {step}")
    train_log.start(config, model, ctx, loader_config)
    saver = CheckpointSaver(
        config, checkpoints, ctx, {"train": config.model_dump(mode="json"), "data_identity": identity}
    )
    validation = Validation(config, loader_config, ctx.device, train_log.line)
    periodic_eval = PeriodicEval(config) if ctx.is_main else None

    # ---- loop
    vote = StopVote(StopRequest(), ctx)
    batches = endless(loader)
    frames = loader_config.latent_size if loader_config.latents else model.config.latent_length
    meter = Throughput(model.config, frames, ctx.world_size, ctx.device, config.peak_tflops)
    losses = []
    stopping = False
    while step < config.max_steps and not stopping:
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
            meter.add(len(batch["prompt"]))
        grad_norm = clip_gradients(model.trainable_parameters().values(), config.clip_grad_norm)
        optimizer.step()
        scheduler.step()
        ema.update(model)
        step += 1

        values: dict[str, float] = {}
        if step % config.log_every == 0 or step == config.max_steps:
            # The only host-device syncs of a step, every log_every steps.
            values |= {
                "loss": mean_over_ranks(torch.stack(losses).mean(), ctx).item(),
                "lr": scheduler.get_last_lr()[0],
                "grad_norm": grad_norm.item(),
                **meter.rates(),
            }
            losses = []
        if validation.due(step):
            values |= validation.run(objective, bf16)
        train_log.scalars(step, values)
        stopping = vote.poll()  # a stop asked for on any rank, one step ago
        final = stopping or step == config.max_steps
        saving = final or step % config.checkpoint_every == 0
        demo_due = bool(config.demo.every and step % config.demo.every == 0) or step == config.max_steps
        eval_due = bool(config.eval.every and step % config.eval.every == 0)
        gathered = None
        if demo_due or eval_due:
            # Whole tensors on rank 0's CPU, gathered from every rank's shards under FSDP2 (all ranks take part).
            gathered = full_model_state(model), ema.full_state(keep=ctx.is_main)
        if saving:
            folder = saver.save(step, model, ema, optimizer, scheduler, loader, final=final, gathered=gathered)
            train_log.line(f"checkpoint {folder}" + (" (writing in the background)" if saver.pending else ""))
        if ctx.is_main and demo_due:
            demo(model, *gathered, config, step, train_log)
        if periodic_eval is not None and eval_due:
            train_log.scalars(step, periodic_eval.run(sampler_with(model, *gathered)))
    saver.wait()
    vote.close()
    if stopping:
        train_log.line(
            f"{vote.stop.signal_name or 'stop'} received: checkpoint written at step {step}; "
            "run the same command to resume"
        )
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


def compile_blocks(model: LatentDiffusion, backend: str) -> None:
    """torch.compile each DiT block's forward (regional compilation: one small graph, compiled once
    and reused by every block; the same under DDP and FSDP2, whose hooks stay outside it, and
    under activation checkpointing, which reruns it)."""
    for block in model.dit.blocks:
        block.forward = torch.compile(block.forward, backend=backend)


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
