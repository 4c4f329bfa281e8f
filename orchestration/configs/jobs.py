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
from labeling.clap.backend import ClapConfig
from labeling.labels.config import LabelConfig
from labeling.music.config import AnalyzeConfig
from labeling.vocab.config import VocabConfig
from model.latents.config import EncodeConfig
from orchestration.engines.config import RunnerConfig
from orchestration.engines.reach import refuse_scattered_paths
from shards.config import ShardConfig


def clap_files(clap: ClapConfig) -> list[str | None]:
    """The files a CLAP backend opens where the model is built: on every model worker."""
    return [clap.checkpoint, clap.tokenizer, clap.model_dir]


class CurateJob(CurationConfig):
    runner: RunnerConfig = execution_field(default_factory=RunnerConfig, description="Engine that runs the work units")

    def stage_config(self) -> CurationConfig:
        # decode.ffmpeg is a program: each node runs its own, installed at that path.
        refuse_scattered_paths(self.runner, [*(i.path for i in self.inputs), self.output])
        return CurationConfig.model_validate(self.model_dump(exclude={"runner"}))


class VocabJob(VocabConfig):
    runner: RunnerConfig = execution_field(
        default_factory=RunnerConfig,
        description="Engine that runs LLM generation (the template backend runs in this process)",
    )

    def stage_config(self) -> VocabConfig:
        # Only the LLM's units run on the engine: they write their parts under output and their
        # answers to the cache, and open the model and the CLAP check's files. The corpus, song
        # lists and caption files are read here, and the template backend runs all in this process.
        if self.llm.backend != "template":
            cache = self.llm.cache  # empty: under output
            model = self.llm.model if self.llm.backend == "transformers" else None  # openai: a name, no path
            check = self.cleaning.clap_check
            refuse_scattered_paths(
                self.runner, [self.output, cache], [model, *(clap_files(check.clap) if check else [])]
            )
        return VocabConfig.model_validate(self.model_dump(exclude={"runner"}))


class LabelJob(LabelConfig):
    runner: RunnerConfig = execution_field(default_factory=RunnerConfig, description="Engine that runs the work units")

    def stage_config(self) -> LabelConfig:
        music = self.music.analysis if self.music else None
        # The model workers write the embedding cache and open CLAP's files; the label units
        # open the prompt tokenizer.
        refuse_scattered_paths(
            self.runner,
            [self.clips, self.vocab, self.output, music, self.cache_root()],
            [*clap_files(self.clap), self.prompts.tokenizer],
        )
        return LabelConfig.model_validate(self.model_dump(exclude={"runner"}))


class AnalyzeJob(AnalyzeConfig):
    runner: RunnerConfig = Field(default_factory=RunnerConfig, description="Engine that runs the work units")

    def stage_config(self) -> AnalyzeConfig:
        refuse_scattered_paths(self.runner, [self.clips, self.output, self.truth])
        return AnalyzeConfig.model_validate(self.model_dump(exclude={"runner"}))


class ShardJob(ShardConfig):
    runner: RunnerConfig = execution_field(default_factory=RunnerConfig, description="Engine that writes the shards")

    def stage_config(self) -> ShardConfig:
        # splits.assignments is read here, while the plan is made: not checked.
        refuse_scattered_paths(self.runner, [self.clips, self.labels, self.root])
        return ShardConfig.model_validate(self.model_dump(exclude={"runner"}))


class EncodeJob(EncodeConfig):
    runner: RunnerConfig = execution_field(default_factory=RunnerConfig, description="Engine that runs the VAE workers")

    def stage_config(self) -> EncodeConfig:
        # The VAE's weights (and a weights file's model config) are opened by every model worker.
        refuse_scattered_paths(self.runner, [self.source, self.root], [self.vae, self.model])
        return EncodeConfig.model_validate(self.model_dump(exclude={"runner"}))
