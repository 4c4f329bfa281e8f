"""The loader's options (imported by the CLI to build its help: pydantic only, no torch or decoders)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from curation.core.strict_model import StrictModel


class PromptWeights(StrictModel):
    pick: Literal["weighted", "uniform"] = Field(
        "weighted",
        description="weighted: a kind by its weight, then one of the sample's prompts of that kind; uniform: one of "
        "all the sample's prompts alike, as Noise2Music picks (each long-form sentence and tag chunk, and one "
        "structured and one free-form prompt; a kind of weight 0 is left out): for a Noise2Music style run, "
        "uniform with structured and free_form at 0",
    )
    long_form: float = Field(0.4, ge=0, description="Weight of a long-form pseudo-label sentence")
    tag_chunk: float = Field(0.2, ge=0, description="Weight of a chunk of short tags and metadata")
    structured: float = Field(
        0.2, ge=0, description="Weight of a structured prompt (Genre: … | Moods: …) from random fields"
    )
    free_form: float = Field(
        0.2, ge=0, description="Weight of a free-form prompt (tags, comma separated) from random fields"
    )


class LoaderConfig(StrictModel):
    split: str = Field("train", description="Split of the version to read (ignored for a list of URLs)")
    batch_size: int = Field(8, ge=1, description="Samples per batch (per rank)")
    num_workers: int = Field(2, ge=0, description="Loader workers per rank; 0 reads in the training loop itself")
    worker_kind: Literal["thread", "process"] = Field(
        "thread",
        description="thread: workers are threads of the training process (FLAC decoding releases the GIL, "
        "and batches need no copy between processes); process: torch DataLoader worker processes",
    )
    sample_size: int = Field(
        2097152,
        ge=1,
        description="Audio samples per example (Stable Audio Open: 2097152, about 47.5 s at 44.1 kHz); "
        "shorter clips are padded",
    )
    sample_rate: int | None = Field(
        None,
        ge=1000,
        description="Rate to deliver audio at; empty: the version's rate (clips at another rate are resampled)",
    )
    channels: int = Field(2, ge=1, le=2, description="Channels to deliver: 1 (mono mix) or 2 (mono is duplicated)")
    random_crop: bool = Field(True, description="Crop at a random offset; false crops at the clip's start (evaluation)")
    resampled: bool = Field(
        False,
        description="Draw shards with replacement forever (no epochs) instead of one pass per epoch "
        "split over ranks and workers",
    )
    shuffle_buffer: int = Field(
        64, ge=1, description="Samples (compressed) held per worker to shuffle across shards; 1 keeps shard order"
    )
    drop_last: bool = Field(True, description="Drop a worker's last partial batch")
    latents: bool = Field(
        False, description="Read pre-encoded latent.npy (C, L) instead of audio, cropped in latent frames"
    )
    latent_size: int = Field(1024, ge=1, description="Latent frames per example when latents is on")
    latent_hop: int = Field(
        2048, ge=1, description="Audio samples per latent frame (the VAE's downsampling), for the crop's seconds_start"
    )
    prompts: PromptWeights = Field(default_factory=PromptWeights, description="How often each kind of prompt is chosen")
    prefetch_factor: int = Field(2, ge=1, description="Batches each worker prepares ahead")
    pin_memory: bool = Field(False, description="Pin batches in page-locked memory (for CUDA copies)")
