"""The model's configuration: one validated tree and three named presets (no torch: the CLI's help reads it).

`ModelConfig()` is the `tiny` preset; `preset("small")` and `preset("sao-1.0")` are the others.
Stable Audio Open's `model_config.json` is translated to and from it in model/sao/config.py.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from curation.core.errors import UserError
from curation.core.strict_model import StrictModel

# Shapes of the T5 encoders a config can name. With no local path, a random-weights encoder
# of that shape stands in (tests, demos, parameter counts); with a path, the folder's own
# config.json decides and the name only documents what the weights should be.
T5_SHAPES: dict[str, dict[str, int]] = {
    "tiny": {"d_model": 64, "d_kv": 16, "d_ff": 128, "num_layers": 2, "num_heads": 4},
    "t5-small": {"d_model": 512, "d_kv": 64, "d_ff": 2048, "num_layers": 6, "num_heads": 8},
    "t5-base": {"d_model": 768, "d_kv": 64, "d_ff": 3072, "num_layers": 12, "num_heads": 12},
    "t5-large": {"d_model": 1024, "d_kv": 64, "d_ff": 4096, "num_layers": 24, "num_heads": 16},
}
CONDITION_IDS = ("prompt", "seconds_start", "seconds_total")


class ModelConfigError(UserError):
    """A model configuration that cannot be built; names what and why."""


class VAEConfig(StrictModel):
    channels: int = Field(8, ge=1, description="Base channel count C of the Oobleck encoder/decoder (SAO: 128)")
    c_mults: list[int] = Field(
        [1, 2, 4, 8, 16],
        min_length=1,
        description="Channel multiplier per block: block i works at C*c_mults[i] channels (SAO: 1,2,4,8,16)",
    )
    strides: list[int] = Field(
        [2, 4, 4, 8, 8],
        min_length=1,
        description="Downsampling stride per block, each even; their product is samples per latent frame (SAO: "
        "2,4,4,8,8 = 2048)",
    )
    latent_dim: int = Field(64, ge=1, description="Latent channels (the encoder outputs twice this: mean and scale)")
    final_tanh: bool = Field(False, description="Squash the decoder output with tanh (SAO: no)")

    @model_validator(mode="after")
    def _check(self) -> VAEConfig:
        if len(self.c_mults) != len(self.strides):
            raise ValueError(
                f"c_mults ({len(self.c_mults)} values) and strides ({len(self.strides)} values) must have one value "
                f"per block"
            )
        odd = [s for s in self.strides if s % 2]
        if odd:
            raise ValueError(
                f"strides must be even (a transposed conv with kernel 2*stride undoes only even strides exactly), "
                f"got {odd}"
            )
        return self

    @property
    def downsampling_ratio(self) -> int:
        return math.prod(self.strides)


class TextEncoderConfig(StrictModel):
    kind: Literal["t5"] = Field(
        "t5", description="Text encoder family (a CLAP text tower can be added as another kind)"
    )
    name: str = Field(
        "tiny",
        description=f"Which encoder: one of {', '.join(T5_SHAPES)}; sets the shape of the random stand-in when path "
        f"is empty",
    )
    path: str | None = Field(
        None,
        description="Local folder with the real encoder (config.json, weights, tokenizer), e.g. a t5-base download; "
        "empty: random weights of the named shape, stated in the log (prompts then do not steer the model)",
    )
    max_length: int = Field(
        64, ge=1, description="Prompt tokens: longer prompts are truncated, shorter ones padded (SAO: 128)"
    )

    @model_validator(mode="after")
    def _check(self) -> TextEncoderConfig:
        if self.path is None and self.name not in T5_SHAPES:
            raise ValueError(
                f"name {self.name!r} has no known shape for a random stand-in ({', '.join(T5_SHAPES)}); set path to "
                f"a local T5 folder"
            )
        return self


class NumberConfig(StrictModel):
    min_val: float = Field(0.0, description="Values are clamped to [min_val, max_val], then normalized to [0, 1]")
    max_val: float = Field(512.0, description="Upper clamp (SAO: 512 s)")

    @model_validator(mode="after")
    def _check(self) -> NumberConfig:
        if self.max_val <= self.min_val:
            raise ValueError(f"max_val ({self.max_val}) must be above min_val ({self.min_val})")
        return self


class ConditioningConfig(StrictModel):
    cond_dim: int = Field(64, ge=1, description="Width of every condition token (SAO: 768, T5-base's width)")
    prompt: TextEncoderConfig = Field(default_factory=TextEncoderConfig, description="Text encoder for the prompt")
    seconds_start: NumberConfig = Field(
        default_factory=NumberConfig, description="Number conditioner for the crop's offset in its source (s)"
    )
    seconds_total: NumberConfig = Field(
        default_factory=NumberConfig, description="Number conditioner for the source's duration (s)"
    )
    cross_attention_ids: list[str] = Field(
        list(CONDITION_IDS), description="Conditions the DiT cross-attends to, as tokens in this order"
    )
    global_ids: list[str] = Field(
        ["seconds_start", "seconds_total"],
        description="Conditions concatenated into the global embedding "
        "(prepended as a token with the timestep); single-token conditions only",
    )

    @model_validator(mode="after")
    def _check(self) -> ConditioningConfig:
        for where, ids in (("cross_attention_ids", self.cross_attention_ids), ("global_ids", self.global_ids)):
            unknown = [i for i in ids if i not in CONDITION_IDS]
            if unknown:
                raise ValueError(f"{where}: unknown condition {unknown[0]!r}; known: {', '.join(CONDITION_IDS)}")
            if len(set(ids)) != len(ids):
                raise ValueError(f"{where}: a condition is listed twice")
        if "prompt" in self.global_ids:
            raise ValueError("global_ids: the prompt is a sequence of tokens; only the number conditions can be global")
        if not self.cross_attention_ids:
            raise ValueError("cross_attention_ids: the DiT needs at least one condition to cross-attend to")
        return self


class DiTConfig(StrictModel):
    embed_dim: int = Field(128, ge=1, description="Transformer width (SAO: 1536)")
    depth: int = Field(4, ge=1, description="Transformer blocks (SAO: 24)")
    num_heads: int = Field(2, ge=1, description="Self-attention heads (SAO: 24, head dim 64)")
    ff_mult: int = Field(4, ge=1, description="Feed-forward hidden width as a multiple of embed_dim (gated, SAO: 4)")

    @model_validator(mode="after")
    def _check(self) -> DiTConfig:
        if self.embed_dim % self.num_heads:
            raise ValueError(f"embed_dim ({self.embed_dim}) must be a multiple of num_heads ({self.num_heads})")
        return self

    @property
    def head_dim(self) -> int:
        return self.embed_dim // self.num_heads


class DiffusionConfig(StrictModel):
    objective: Literal["v", "rectified_flow"] = Field(
        "v",
        description="v: v-objective on the cosine schedule (SAO); rectified_flow: x_t = (1-t) x + t noise, target "
        "noise - x",
    )
    timesteps: Literal["uniform", "sobol", "stratified", "logit_normal"] = Field(
        "uniform",
        description="Training timestep distribution on [0, 1]: uniform (SAO), sobol (a scrambled Sobol set per "
        "batch, as stable-audio-tools draws its uniform times), stratified (one time per 1/batch of [0, 1]), "
        "logit_normal (usual for rectified flow)",
    )
    cfg_dropout: float = Field(
        0.1,
        ge=0,
        le=1,
        description="Probability that an example's cross-attention conditions are zeroed in training "
        "(classifier-free guidance)",
    )
    mask_padding: bool = Field(
        False,
        description="Leave padded frames out of the loss; SAO trains on them so that it learns silence after "
        "seconds_total",
    )


class SamplingDefaults(StrictModel):
    sampler: Literal["dpmpp-3m-sde", "dpmpp-2m", "euler"] = Field(
        "dpmpp-3m-sde", description="Sampler (SAO: DPM-Solver++ 3M SDE)"
    )
    steps: int = Field(100, ge=1, description="Denoiser evaluations (SAO: 100)")
    cfg_scale: float = Field(
        7.0, ge=0, description="Classifier-free guidance scale; 1 is the plain conditional model (SAO: 7)"
    )
    sigma_min: float = Field(0.3, gt=0, description="Last noise level before the final denoise (SAO: 0.3)")
    sigma_max: float = Field(500.0, gt=0, description="First noise level (SAO: 500)")


class ModelConfig(StrictModel):
    sample_rate: int = Field(44100, ge=8000, description="Audio sample rate (Hz)")
    audio_channels: int = Field(2, ge=1, le=2, description="Audio channels")
    sample_size: int = Field(
        262144,
        ge=1,
        description="Samples generated per example (SAO: 2097152 = 47.6 s; tiny: 262144 = 5.9 s); a multiple of the "
        "VAE's ratio",
    )
    vae: VAEConfig = Field(default_factory=VAEConfig, description="Audio autoencoder")
    conditioning: ConditioningConfig = Field(
        default_factory=ConditioningConfig, description="Conditioners and where their tokens go"
    )
    dit: DiTConfig = Field(default_factory=DiTConfig, description="Diffusion transformer")
    diffusion: DiffusionConfig = Field(default_factory=DiffusionConfig, description="Training objective")
    sampling: SamplingDefaults = Field(default_factory=SamplingDefaults, description="Sampling defaults")

    @model_validator(mode="after")
    def _check(self) -> ModelConfig:
        ratio = self.vae.downsampling_ratio
        if self.sample_size % ratio:
            raise ValueError(
                f"sample_size ({self.sample_size}) must be a multiple of the VAE's downsampling ratio ({ratio})"
            )
        head, cond = self.dit.head_dim, self.conditioning.cond_dim
        # Cross-attention keys/values are cond_dim wide, cut into heads of the query's head size.
        if cond % head:
            raise ValueError(f"conditioning.cond_dim ({cond}) must be a multiple of the DiT head dim ({head})")
        if self.dit.num_heads % (cond // head):
            raise ValueError(
                f"dit.num_heads ({self.dit.num_heads}) must be a multiple of the cross-attention key/value heads "
                f"({cond // head})"
            )
        return self

    @property
    def latent_rate(self) -> float:
        """Latent frames per second."""
        return self.sample_rate / self.vae.downsampling_ratio

    @property
    def latent_length(self) -> int:
        return self.sample_size // self.vae.downsampling_ratio

    def with_text_encoder_path(self, path: str) -> ModelConfig:
        """The same model with its prompt encoder read from `path`."""
        prompt = self.conditioning.prompt.model_copy(update={"path": path})
        return self.model_copy(update={"conditioning": self.conditioning.model_copy(update={"prompt": prompt})})


def _small() -> ModelConfig:
    return ModelConfig(
        sample_size=1048576,
        vae=VAEConfig(channels=32),
        conditioning=ConditioningConfig(cond_dim=768, prompt=TextEncoderConfig(name="t5-base", max_length=128)),
        dit=DiTConfig(embed_dim=768, depth=12, num_heads=12),
    )


def _sao_1_0() -> ModelConfig:
    return ModelConfig(
        sample_size=2097152,
        vae=VAEConfig(channels=128),
        conditioning=ConditioningConfig(cond_dim=768, prompt=TextEncoderConfig(name="t5-base", max_length=128)),
        dit=DiTConfig(embed_dim=1536, depth=24, num_heads=24),
    )


PRESETS = {"tiny": ModelConfig, "small": _small, "sao-1.0": _sao_1_0}


def preset(name: str) -> ModelConfig:
    if name not in PRESETS:
        raise KeyError(f"unknown model preset {name!r}; presets: {', '.join(PRESETS)}")
    return PRESETS[name]()


class VAELossConfig(StrictModel):
    """Weights and resolutions of the VAE's training losses (SAO's autoencoder recipe, without
    the A-weighting prefilter of its STFT loss)."""

    stft_weight: float = Field(1.0, ge=0, description="Multi-resolution STFT loss (sum-and-difference for stereo)")
    adversarial_weight: float = Field(
        0.1, ge=0, description="Hinge adversarial loss from the multi-scale STFT discriminator"
    )
    feature_matching_weight: float = Field(
        5.0,
        ge=0,
        description="L1 between the discriminator's features of real and decoded audio, relative to the real ones",
    )
    kl_weight: float = Field(1e-4, ge=0, description="KL divergence of the posterior from N(0, 1)")
    fft_sizes: list[int] = Field(
        [2048, 1024, 512, 256, 128, 64, 32], min_length=1, description="STFT loss resolutions (hop = size / 4)"
    )
    discriminator_ffts: list[int] = Field(
        [2048, 1024, 512, 256, 128], min_length=1, description="Discriminator scales (hop = size / 4)"
    )
    discriminator_filters: int = Field(32, ge=1, description="Discriminator base channels (SAO: 64)")
