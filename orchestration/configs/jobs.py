"""Each data job's configuration: its stage's config and the engine that runs it.

Every job starts from `stage_config()`, which first refuses paths a cluster engine's workers
could not see (orchestration/engines/reach.py): the one gate all stages pass before any work.

Light on purpose: the command line builds every option from these models, and `soundry --help`
must not import the stages' code (scipy, pyarrow, torch...).
"""

from __future__ import annotations

from pydantic import Field

from curation.config import CurationConfig
from curation.core.strict_model import execution_field
from labeling.labels.config import LabelConfig
from labeling.music.config import AnalyzeConfig
from labeling.vocab.config import VocabConfig
from model.latents.config import EncodeConfig
from orchestration.engines.config import RunnerConfig
from orchestration.engines.reach import refuse_scattered_paths
from shards.config import ShardConfig


class CurateJob(CurationConfig):
    runner: RunnerConfig = execution_field(default_factory=RunnerConfig, description="Engine that runs the work units")

    def stage_config(self) -> CurationConfig:
        refuse_scattered_paths(self.runner, [*(i.path for i in self.inputs), self.output])
        return CurationConfig.model_validate(self.model_dump(exclude={"runner"}))


class VocabJob(VocabConfig):
    runner: RunnerConfig = execution_field(
        default_factory=RunnerConfig,
        description="Engine that runs LLM generation (the template backend runs in this process)",
    )

    def stage_config(self) -> VocabConfig:
        # Only the LLM's units run on the engine; they write their parts under output.
        refuse_scattered_paths(self.runner, [self.output])
        return VocabConfig.model_validate(self.model_dump(exclude={"runner"}))


class LabelJob(LabelConfig):
    runner: RunnerConfig = execution_field(default_factory=RunnerConfig, description="Engine that runs the work units")

    def stage_config(self) -> LabelConfig:
        music = self.music.analysis if self.music else None
        refuse_scattered_paths(self.runner, [self.clips, self.vocab, self.output, music])
        return LabelConfig.model_validate(self.model_dump(exclude={"runner"}))


class AnalyzeJob(AnalyzeConfig):
    runner: RunnerConfig = Field(default_factory=RunnerConfig, description="Engine that runs the work units")

    def stage_config(self) -> AnalyzeConfig:
        refuse_scattered_paths(self.runner, [self.clips, self.output, self.truth])
        return AnalyzeConfig.model_validate(self.model_dump(exclude={"runner"}))


class ShardJob(ShardConfig):
    runner: RunnerConfig = execution_field(default_factory=RunnerConfig, description="Engine that writes the shards")

    def stage_config(self) -> ShardConfig:
        refuse_scattered_paths(self.runner, [self.clips, self.labels, self.root])
        return ShardConfig.model_validate(self.model_dump(exclude={"runner"}))


class EncodeJob(EncodeConfig):
    runner: RunnerConfig = execution_field(default_factory=RunnerConfig, description="Engine that runs the VAE workers")

    def stage_config(self) -> EncodeConfig:
        refuse_scattered_paths(self.runner, [self.source, self.root])
        return EncodeConfig.model_validate(self.model_dump(exclude={"runner"}))
