"""Each data job's configuration: its stage's config and the engine that runs it.

Light on purpose: the command line builds every option from these models, and `soundry --help`
must not import the stages' code (scipy, pyarrow, torch...).
"""

from __future__ import annotations

from pydantic import Field

from curation.config import CurationConfig
from curation.core.strict_model import EXECUTION
from labeling.labels.config import LabelConfig
from labeling.music.config import AnalyzeConfig
from labeling.vocab.config import VocabConfig
from model.latents.config import EncodeConfig
from orchestration.engines.config import RunnerConfig
from shards.config import ShardConfig


class CurateJob(CurationConfig):
    runner: RunnerConfig = Field(
        default_factory=RunnerConfig, description="Engine that runs the work units", json_schema_extra=EXECUTION
    )

    def stage_config(self) -> CurationConfig:
        return CurationConfig.model_validate(self.model_dump(exclude={"runner"}))


class VocabJob(VocabConfig):
    runner: RunnerConfig = Field(
        default_factory=RunnerConfig,
        description="Engine that runs LLM generation (the template backend runs in this process)",
        json_schema_extra=EXECUTION,
    )

    def stage_config(self) -> VocabConfig:
        return VocabConfig.model_validate(self.model_dump(exclude={"runner"}))


class LabelJob(LabelConfig):
    runner: RunnerConfig = Field(
        default_factory=RunnerConfig, description="Engine that runs the work units", json_schema_extra=EXECUTION
    )

    def stage_config(self) -> LabelConfig:
        return LabelConfig.model_validate(self.model_dump(exclude={"runner"}))


class AnalyzeJob(AnalyzeConfig):
    runner: RunnerConfig = Field(default_factory=RunnerConfig, description="Engine that runs the work units")

    def stage_config(self) -> AnalyzeConfig:
        return AnalyzeConfig.model_validate(self.model_dump(exclude={"runner"}))


class ShardJob(ShardConfig):
    runner: RunnerConfig = Field(
        default_factory=RunnerConfig, description="Engine that writes the shards", json_schema_extra=EXECUTION
    )

    def stage_config(self) -> ShardConfig:
        return ShardConfig.model_validate(self.model_dump(exclude={"runner"}))


class EncodeJob(EncodeConfig):
    runner: RunnerConfig = Field(
        default_factory=RunnerConfig, description="Engine that runs the VAE workers", json_schema_extra=EXECUTION
    )

    def stage_config(self) -> EncodeConfig:
        return EncodeConfig.model_validate(self.model_dump(exclude={"runner"}))
