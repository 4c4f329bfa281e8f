"""The configuration of `soundry run`: raw audio in, every stage's options in one file."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from curation.config import Location
from curation.core.strict_model import StrictModel, execution_field
from orchestration.engines.config import RunnerConfig


class SampleStage(StrictModel):
    prompts: list[str] = Field(
        ["Genre: Ambient | Moods: Calm", "Drums, Bass, Energetic"], description="Prompts to generate"
    )
    seconds: float = Field(4.0, gt=0, description="Length of each sample")
    steps: int = Field(30, ge=1, description="Sampler steps")
    cfg_scale: float = Field(3.0, ge=0, description="Guidance scale")
    seed: int = Field(0, description="Sampling seed")


class PipelineConfig(StrictModel):
    run_dir: str = Field(..., description="Folder that holds every stage's output and the report")
    inputs: list[Location] = Field(..., min_length=1, description="Raw audio folders, globs or URLs")
    runner: RunnerConfig = execution_field(default_factory=RunnerConfig, description="Engine for the data stages")
    version: str = Field("v1", description="Name of the published dataset version")
    curate: dict[str, Any] = Field(
        default_factory=dict, description="`soundry curate` options (its job YAML without inputs/output/runner)"
    )
    vocab: dict[str, Any] = Field(
        default_factory=dict, description="`soundry vocab` options (without output/corpus/runner)"
    )
    analyze: dict[str, Any] | None = Field(
        None,
        description="`soundry analyze` options (without clips/output/runner): measure tempo, key and chords before "
        "labeling and join them into the labels (label.music); empty: no analysis",
    )
    label: dict[str, Any] = Field(
        default_factory=lambda: {"clap": {"backend": "random"}},
        description="`soundry label` options (without clips/vocab/output/runner)",
    )
    publish: dict[str, Any] = Field(
        default_factory=dict, description="`soundry publish` options (without clips/labels/root/version/runner)"
    )
    vae: dict[str, Any] = Field(
        default_factory=dict,
        description="`soundry train-vae` options (without output/data.version); "
        "or {checkpoint: PATH} to use a trained VAE (a train-vae folder or SAO's VAE file)",
    )
    latents: bool = Field(
        True,
        description="Pre-encode the version with the VAE (`soundry encode`) and train the DiT on "
        "its latents; false: the trainer encodes audio at every step",
    )
    encode: dict[str, Any] = Field(
        default_factory=dict, description="`soundry encode` options (without source/vae/root/version/runner)"
    )
    train: dict[str, Any] = Field(
        default_factory=dict, description="`soundry train` options (without output/data.version/vae)"
    )
    sample: SampleStage = Field(default_factory=SampleStage, description="Samples generated from the trained model")
    eval: dict[str, Any] = Field(
        default_factory=dict,
        description="`soundry eval` options (without generated/checkpoint/reference/output; clap: the label "
        "stage's unless given): the trained model speaks the version's reference_split (default test) prompts and "
        "is compared with that split's audio",
    )
