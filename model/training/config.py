"""The configuration of a diffusion training run (`soundry train`): one validated tree,
saved with every checkpoint; every value overridable on the command line."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from curation.core.strict_model import EXECUTION, StrictModel
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
    workers: int = Field(2, ge=0, description="Loader worker processes per rank")
    shuffle_buffer: int = Field(64, ge=1, description="Samples in each worker's shuffle buffer")
    resampled: bool = Field(False, description="Draw shards with replacement forever instead of epochs")
    prompts: PromptWeights = Field(default_factory=PromptWeights, description="How often each kind of prompt is chosen")


class DemoConfig(StrictModel):
    every: int = Field(0, ge=0, description="Sample from the EMA weights every N steps (0: only at the end)")
    prompts: list[str] = Field(
        ["Genre: Ambient | Instruments: Synth Pad | Moods: Calm", "Drums, Bass, Energetic"],
        description="Fixed prompts for demo samples",
    )
    seconds: float = Field(4.0, gt=0, description="Length of each demo sample")
    steps: int = Field(20, ge=1, description="Sampler steps for demos")
    cfg_scale: float = Field(3.0, ge=0, description="Guidance scale for demos")


DEFAULT_MODEL = "tiny"  # when neither `model` nor an init_from folder names the architecture


class TrainConfig(StrictModel):
    output: str = Field(..., description="Run folder: checkpoints/, tensorboard/, demos/")
    data: DataConfig = Field(..., description="What to train on")
    model: str | None = Field(
        None,
        description="Model preset (tiny, small, sao-1.0) or a path to a model_config.json (SAO's format); "
        "empty: tiny, or the architecture of an init_from checkpoint folder",
    )
    sample_size: int | None = Field(
        None, ge=1, description="Audio samples per training example; empty: the model's (a multiple of the VAE's ratio)"
    )
    text_encoder: str | None = Field(
        None,
        description="Local T5 folder (e.g. a t5-base download) for the prompt, over the model's "
        "conditioning.prompt.path: SAO's model_config.json names none, and a checkpoint folder's may be "
        "another machine's; empty: the model's",
    )
    vae: str | None = Field(
        None,
        description="VAE checkpoint (`soundry train-vae` folder or SAO's VAE .safetensors/.ckpt); "
        "needed to train on audio or to decode samples; versions with latents still need it for demos",
    )
    init_from: str | None = Field(
        None,
        description="Weights to start from: a soundry checkpoint folder (its architecture too: "
        "leave `model` empty; `sample_size` still applies) or SAO's model.safetensors for `model` (fine-tuning)",
    )
    max_steps: int = Field(200, ge=1, description="Optimizer steps to train for")
    grad_accum: int = Field(
        1, ge=1, description="Micro-steps per optimizer step (global batch = batch_size x ranks x grad_accum)"
    )
    clip_grad_norm: float | None = Field(1.0, gt=0, description="Clip the global gradient norm (empty: no clipping)")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig, description="AdamW")
    schedule: ScheduleConfig = Field(default_factory=ScheduleConfig, description="Learning-rate schedule")
    ema_decay: float = Field(0.999, gt=0, lt=1, description="EMA decay of the weights used for sampling (SAO: 0.9999)")
    ema_warmup_steps: int = Field(100, ge=0, description="Steps over which the EMA decay ramps up from 0")
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto: bf16 autocast on GPU, fp32 on CPU")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to train")
    parallel: Literal["ddp", "fsdp"] = Field(
        "ddp",
        description="How several ranks hold the model: ddp (a whole replica each) or fsdp "
        "(FSDP2: weights, gradients and optimizer state sharded per DiT block, for models that "
        "do not fit one device); checkpoints are the same either way",
    )
    seed: int = Field(0, description="Seeds every random choice (with the step and rank), so reruns and resumes agree")
    log_every: int = Field(
        10, ge=1, description="Steps between log lines and TensorBoard points", json_schema_extra=EXECUTION
    )
    checkpoint_every: int = Field(100, ge=1, description="Steps between checkpoints")
    keep_checkpoints: int = Field(3, ge=1, description="Newest checkpoints to keep")
    demo: DemoConfig = Field(default_factory=DemoConfig, description="Demo samples from the EMA weights")


class VAETrainConfig(StrictModel):
    """`soundry train-vae`: the autoencoder on a version's audio (SAO's recipe: STFT, adversarial,
    feature matching and KL losses; the adversarial part starts after a warm-up)."""

    output: str = Field(..., description="Run folder: checkpoints/, tensorboard/, demos/")
    data: DataConfig = Field(..., description="What to train on (audio; latents in the version are ignored)")
    model: str = Field(
        "tiny", description="Preset or model_config.json whose vae section (and rate, channels) is trained"
    )
    sample_size: int = Field(65536, ge=1, description="Audio samples per training crop (a multiple of the VAE's ratio)")
    max_steps: int = Field(200, ge=1, description="Optimizer steps")
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
    precision: Literal["auto", "bf16", "fp32"] = Field("auto", description="auto: bf16 autocast on GPU, fp32 on CPU")
    device: Literal["auto", "cpu", "cuda"] = Field("auto", description="Where to train")
    seed: int = Field(0, description="Seeds every random choice (with the step and rank)")
    log_every: int = Field(
        10, ge=1, description="Steps between log lines and TensorBoard points", json_schema_extra=EXECUTION
    )
    checkpoint_every: int = Field(100, ge=1, description="Steps between checkpoints")
    keep_checkpoints: int = Field(3, ge=1, description="Newest checkpoints to keep")
