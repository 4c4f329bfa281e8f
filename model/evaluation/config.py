"""The configuration of `soundry eval` (model/evaluation/evaluate.py), apart from the code that
imports numpy and torch, so the command line can be built without them."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from curation.core.strict_model import StrictModel, execution_field
from labeling.clap.backend import ClapConfig


class EvalConfig(StrictModel):
    generated: str = Field(
        ...,
        description="Folder of generated audio files (wav, flac, ogg, mp3, aiff); with checkpoint, the folder the "
        "generated audio is written to (files already there are kept: a stopped run resumes); or a published "
        "dataset version, compared with reference (another version or split): FAD and label distribution shift",
    )
    generated_split: str = Field("test", description="When generated is a published version: the split it reads")
    checkpoint: str | None = Field(
        None,
        description="Diffusion checkpoint folder to generate from: one clip per clip of the reference version's split, "
        "from its prompt and timing, named by clip_id (needs reference to be a published version)",
    )
    steps: int | None = Field(None, ge=1, description="checkpoint: sampling steps (empty: the model config's)")
    cfg_scale: float | None = Field(
        None, ge=0, description="checkpoint: classifier-free guidance scale (empty: the model config's)"
    )
    generation_batch_size: int = execution_field(
        1,
        ge=1,
        description="checkpoint: clips generated together (each still from its own seed: the same audio as one at "
        "a time, up to the device's arithmetic)",
    )
    generation_device: Literal["auto", "cpu", "cuda"] = execution_field(
        "auto", description="checkpoint: where the model generates; auto: a GPU when there is one"
    )
    reference: str = Field(
        ...,
        description="Reference audio the generated audio is compared to: a folder of audio files, or a published "
        "dataset version (folder or URL; its samples' prompts count as prompts, see reference_split)",
    )
    reference_split: str = Field("test", description="When reference is a published version: the split it reads")
    max_clips: int | None = Field(
        None,
        ge=2,
        description="When reference is a published version: only its split's first N clips (manifest order) are "
        "generated and compared; empty: all",
    )
    output: str = Field(..., description="Folder for eval.json (made if missing; an earlier eval.json is replaced)")
    prompts: str | None = Field(
        None,
        description="JSON file {file name without suffix: prompt} for both sides (over a version's own prompts); "
        "with prompts the CLAP score is measured (generated audio against its prompt, reference audio against its "
        "own as the ceiling)",
    )
    clap: ClapConfig = Field(
        ..., description="The CLAP model that embeds audio (FAD, tag distributions) and prompts (CLAP score)"
    )
    fad_embedder: Literal["clap", "encodec"] = Field(
        "clap",
        description="The model whose embeddings FAD (and FAD∞) compares: clap (the clap model above) or encodec "
        "(EnCodec's encoder features pooled over time, see encodec_model); tag KL and CLAP score always use clap",
    )
    encodec_model: str | None = Field(
        None,
        description="fad_embedder encodec: a local folder of an HF EnCodec checkpoint (e.g. facebook/encodec_24khz "
        "saved with save_pretrained), or random (seeded random weights, for tests and demos)",
    )
    tags: str | None = Field(
        None,
        description="Text file of tags, one a line, for the tag distributions (KL); empty: the built-in tag "
        "vocabulary (about a thousand music tags)",
    )
    tag_temperature: float = Field(
        0.01, gt=0, description="Softmax temperature of the CLAP zero-shot tag distributions (cosine / temperature)"
    )
    fad_infinity: bool = Field(
        False, description="Also report FAD∞: FAD of subsets of the generated audio extrapolated to infinitely many"
    )
    fad_infinity_points: int = Field(15, ge=3, description="FAD∞: how many subset sizes the line is fitted to")
    seed: int = Field(
        0,
        description="Seed of the generation (each clip's from seed and clip_id) and of FAD∞'s random subsets: the same "
        "seed gives the same figures",
    )
    tensorboard: str | None = Field(
        None,
        description="Run folder (e.g. a training output): the figures, CLAP score histograms and plots are also "
        "written as TensorBoard events in RUN/tensorboard, at the generating checkpoint's step (0 without one)",
    )
    clips_per_batch: int = execution_field(
        32, ge=1, description="Audio files decoded and embedded together (memory holds one batch of audio)"
    )

    @model_validator(mode="after")
    def _encodec_needs_a_model(self) -> EvalConfig:
        if self.fad_embedder == "encodec" and not self.encodec_model:
            raise ValueError("fad_embedder encodec needs encodec_model: a local EnCodec checkpoint folder, or random")
        return self
