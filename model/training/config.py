"""The configuration of a diffusion training run (`soundry train`): one validated tree,
saved with every checkpoint; every value overridable on the command line.

Fields made with `execution_field` say how a run executes (devices, workers, cadence of logs,
checkpoints and demos, memory and speed options), not what it computes: a run resumes under
other values of them, and under changes of any other field it refuses (model/training/resume.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from curation.core.strict_model import StrictModel, execution_field
from labeling.clap.backend import ClapConfig
from model.config import VAELossConfig
from model.training.lr_schedule import ScheduleConfig
from shards.loader.config import PromptWeights


class OptimizerConfig(StrictModel):
    lr: float = Field(1e-3, gt=0, description="AdamW peak learning rate (SAO fine-tuning: 5e-5)")
    betas: tuple[float, float] = Field((0.9, 0.999), description="AdamW betas")
    weight_decay: float = Field(1e-3, ge=0, description="AdamW decoupled weight decay (SAO: 1e-3)")
    eps: float = Field(1e-8, gt=0, description="AdamW epsilon")


class DataConfig(StrictModel):
    """The loader's options that are the user's to choose; lengths, rate and channels come
    from the model, so data and model cannot disagree."""

    version: str = Field(
        ..., description="Dataset version folder or URL (from `soundry publish`); latents are read when it has them"
    )
    split: str = Field("train", description="Which split's shards to train on")
    batch_size: int = Field(4, ge=1, description="Examples per rank per micro-step")
    workers: int = execution_field(
        2,
        ge=0,
        description="Loader worker processes per rank (a resume with another count goes on from the next epoch)",
    )
    shuffle_buffer: int = Field(64, ge=1, description="Samples in each worker's shuffle buffer")
    resampled: bool = Field(False, description="Draw shards with replacement forever instead of epochs")
    prompts: PromptWeights = Field(default_factory=PromptWeights, description="How often each kind of prompt is chosen")


class DemoConfig(StrictModel):
    every: int = execution_field(
        0, ge=0, description="Sample from the EMA weights every N steps, and at the end (0: only at the end)"
    )
    prompts: list[str] = execution_field(
        ["Genre: Ambient | Instruments: Synth Pad | Moods: Calm", "Drums, Bass, Energetic"],
        description="Fixed prompts for demo samples",
    )
    seconds: float = execution_field(4.0, gt=0, description="Length of each demo sample")
    steps: int = execution_field(20, ge=1, description="Sampler steps for demos")
    cfg_scales: list[float] = execution_field(
        [3.0, 5.0, 7.0],
        min_length=1,
        description="Guidance scales: every prompt is sampled at each (SAO's demos: 3, 5, 7)",
    )


class ValidationConfig(StrictModel):
    every: int = execution_field(
        0,
        ge=0,
        description="Validation loss every N steps (0: never): the loss at fixed diffusion times with fixed noise "
        "and every condition kept, on the first batches of the version's split, the same on every rank",
    )
    split: str = execution_field("valid", description="Split of data.version to validate on (absent: no validation)")
    batches: int = execution_field(4, ge=1, description="Batches of data.batch_size examples each validation reads")
    times: list[float] = execution_field(
        [0.1, 0.3, 0.5, 0.7, 0.9],
        min_length=1,
        description="Diffusion times t in [0, 1] the loss is measured at (each logged, and their mean)",
    )


class PeriodicEvalConfig(StrictModel):
    every: int = execution_field(
        0,
        ge=0,
        description="Every N steps (0: never), the EMA weights speak the first `prompts` prompts of the version's "
        "split with fixed seeds, and FAD against those clips' audio and the CLAP score are logged beside the losses",
    )
    split: str = execution_field("valid", description="Split of data.version whose prompts and audio are used")
    prompts: int = execution_field(8, ge=2, description="Clips generated at each evaluation (FAD needs 2 or more)")
    steps: int = execution_field(10, ge=1, description="Sampler steps")
    cfg_scale: float | None = execution_field(None, ge=0, description="Guidance scale (empty: the model config's)")
    batch_size: int = execution_field(8, ge=1, description="Clips generated together")
    clap: ClapConfig = execution_field(
        default_factory=lambda: ClapConfig(backend="random"),
        description="The CLAP model that embeds the audio and prompts (the label stage's options)",
    )


class WandbConfig(StrictModel):
    enabled: bool = execution_field(False, description="Log scalars and demos to Weights & Biases (soundry[wandb])")
    project: str = execution_field("soundry", description="W&B project")
    entity: str | None = execution_field(None, description="W&B entity (team or user); empty: your default")
    name: str | None = execution_field(None, description="Run name shown in W&B; empty: the run folder's name")
    mode: Literal["online", "offline"] = execution_field(
        "online", description="offline: write the run under <output>/wandb for `wandb sync` later"
    )


DEFAULT_MODEL = "tiny"  # when neither `model` nor an init_from folder names the architecture


class TrainConfig(StrictModel):
    output: str = execution_field(..., description="Run folder: checkpoints/, tensorboard/, demos/")
    recipe: Literal["auto", "tiny", "small", "sao-1.0"] = execution_field(
        "auto",
        description="Which training defaults the unset fields take (--print-config shows them): tiny, small, or "
        "sao-1.0 (stable-audio-tools' recipe for Stable Audio Open: lr 5e-5, InverseLR, EMA 0.9999, Sobol times, "
        "activation checkpointing, a checkpoint every 10,000 steps, demos every 2,000 at CFG 3/5/7); auto: the "
        "model's preset (sao-1.0 for a model_config.json or SAO's weights)",
    )
    data: DataConfig = Field(..., description="What to train on")
    model: str | None = Field(
        None,
        description="Model preset (tiny, small, sao-1.0) or a path to a model_config.json (SAO's format); "
        "empty: tiny, or the architecture of an init_from checkpoint folder",
    )
    sample_size: int | None = Field(
        None, ge=1, description="Audio samples per training example; empty: the model's (a multiple of the VAE's ratio)"
    )
    timesteps: Literal["uniform", "sobol", "stratified", "logit_normal"] | None = Field(
        None,
        description="Training timestep distribution over the model's diffusion.timesteps (empty: the model's); "
        "stable-audio-tools draws SAO's uniform times from a scrambled Sobol sequence: sobol",
    )
    text_encoder: str | None = execution_field(
        None,
        description="Local T5 folder (e.g. a t5-base download) for the prompt, over the model's "
        "conditioning.prompt.path: SAO's model_config.json names none, and a checkpoint folder's may be "
        "another machine's; empty: the model's",
    )
    vae: str | None = execution_field(
        None,
        description="VAE checkpoint (`soundry train-vae` folder or SAO's VAE .safetensors/.ckpt); "
        "needed to train on audio or to decode samples; versions with latents still need it for demos",
    )
    init_from: str | None = Field(
        None,
        description="Weights to start from: a soundry checkpoint folder (its architecture too: "
        "leave `model` empty; `sample_size` still applies) or SAO's model.safetensors for `model` (fine-tuning)",
    )
    max_steps: int = Field(200, ge=1, description="Optimizer steps to train for (a resume may raise it to train on)")
    grad_accum: int = Field(
        1, ge=1, description="Micro-steps per optimizer step (global batch = batch_size x ranks x grad_accum)"
    )
    clip_grad_norm: float | None = Field(1.0, gt=0, description="Clip the global gradient norm (empty: no clipping)")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig, description="AdamW")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="Learning-rate schedule")
    ema_decay: float = Field(0.999, gt=0, lt=1, description="EMA decay of the weights used for sampling (SAO: 0.9999)")
    ema_warmup_steps: int = Field(100, ge=0, description="Steps over which the EMA decay ramps up linearly from 0")
    ema_warmup_power: float | None = Field(
        None,
        gt=0,
        description="Instead of the linear ramp: decay = 1 - (1 + updates) ** -power, capped at ema_decay "
        "(stable-audio-tools' EMA: 0.75)",
    )
    precision: Literal["auto", "bf16", "fp32"] = execution_field(
        "auto", description="auto: bf16 autocast on GPU, fp32 on CPU"
    )
    device: Literal["auto", "cpu", "cuda"] = execution_field("auto", description="Where to train")
    parallel: Literal["ddp", "fsdp"] = execution_field(
        "ddp",
        description="How several ranks hold the model: ddp (a whole replica each) or fsdp "
        "(FSDP2: weights, gradients and optimizer state sharded per DiT block, for models that "
        "do not fit one device)",
    )
    activation_checkpointing: int = execution_field(
        0,
        ge=0,
        description="Recompute the activations of every n-th DiT block in backward instead of keeping them "
        "(1: every block, 2: every other, 0: off): less memory for about a third more compute",
    )
    compile: Literal["auto", "on", "off"] = execution_field(
        "auto", description="torch.compile each DiT block (regional: the same blocks under DDP and FSDP2); auto: on GPU"
    )
    compile_backend: str = execution_field(
        "inductor", description="torch.compile backend (inductor generates kernels; aot_eager only traces)"
    )
    seed: int = Field(0, description="Seeds every random choice (with the step and rank), so reruns and resumes agree")
    log_every: int = execution_field(10, ge=1, description="Steps between log lines and TensorBoard points")
    peak_tflops: float | None = execution_field(
        None,
        gt=0,
        description="The device's peak TFLOP/s (e.g. its bf16 matrix-multiply rate): logs MFU, the DiT's "
        "training FLOPs per second per device as a fraction of it",
    )
    checkpoint_every: int = execution_field(100, ge=1, description="Steps between checkpoints")
    keep_checkpoints: int = execution_field(3, ge=1, description="Newest checkpoints to keep")
    checkpoint_format: Literal["auto", "whole", "sharded"] = execution_field(
        "auto",
        description="whole: rank 0 writes whole tensors (safetensors); sharded: every rank writes its own shards "
        "with torch.distributed.checkpoint, in parallel, readable at any world size; auto: sharded under fsdp",
    )
    async_checkpoints: bool = execution_field(
        False,
        description="Sharded checkpoints: copy the state to CPU memory, then write in the background while "
        "training goes on (a checkpoint appears when written; a stop or the end waits for it)",
    )
    demo: DemoConfig = execution_field(default_factory=DemoConfig, description="Demo samples from the EMA weights")
    validation: ValidationConfig = execution_field(
        default_factory=ValidationConfig, description="Validation loss on a held-out split"
    )
    eval: PeriodicEvalConfig = execution_field(
        default_factory=PeriodicEvalConfig, description="A small evaluation (FAD, CLAP score) during training"
    )
    wandb: WandbConfig = execution_field(default_factory=WandbConfig, description="Weights & Biases logging")


class VAETrainConfig(StrictModel):
    """`soundry train-vae`: the autoencoder on a version's audio (SAO's recipe: STFT, adversarial,
    feature matching and KL losses; the adversarial part starts after a warm-up)."""

    output: str = execution_field(..., description="Run folder: checkpoints/, tensorboard/, demos/")
    data: DataConfig = Field(..., description="What to train on (audio; latents in the version are ignored)")
    model: str = Field(
        "tiny", description="Preset or model_config.json whose vae section (and rate, channels) is trained"
    )
    sample_size: int = Field(65536, ge=1, description="Audio samples per training crop (a multiple of the VAE's ratio)")
    max_steps: int = Field(200, ge=1, description="Optimizer steps (a resume may raise it to train on)")
    lr: float = Field(1.5e-4, gt=0, description="AdamW learning rate of the autoencoder")
    discriminator_lr: float = Field(3e-4, gt=0, description="AdamW learning rate of the discriminator")
    betas: tuple[float, float] = Field((0.8, 0.99), description="AdamW betas of both optimizers")
    adversarial_start: int = Field(
        50, ge=0, description="Steps of reconstruction-only training before the discriminator joins"
    )
    clip_grad_norm: float | None = Field(
        1.0, gt=0, description="Clip the autoencoder's gradient norm (empty: no clipping)"
    )
    losses: VAELossConfig = Field(default_factory=VAELossConfig, description="Loss weights and resolutions")
    ema_decay: float = Field(
        0.999, gt=0, lt=1, description="EMA decay of the weights the checkpoint's ema.safetensors holds"
    )
    ema_warmup_steps: int = Field(50, ge=0, description="Steps over which the EMA decay ramps up from 0")
    precision: Literal["auto", "bf16", "fp32"] = execution_field(
        "auto", description="auto: bf16 autocast on GPU, fp32 on CPU"
    )
    device: Literal["auto", "cpu", "cuda"] = execution_field("auto", description="Where to train")
    seed: int = Field(0, description="Seeds every random choice (with the step and rank)")
    log_every: int = execution_field(10, ge=1, description="Steps between log lines and TensorBoard points")
    checkpoint_every: int = execution_field(100, ge=1, description="Steps between checkpoints")
    keep_checkpoints: int = execution_field(3, ge=1, description="Newest checkpoints to keep")
