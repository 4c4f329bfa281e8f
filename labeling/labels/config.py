"""The labeling stage's configuration: one validated model, every field described."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from curation.core.strict_model import StrictModel, execution_field
from labeling.clap.backend import ClapConfig
from labeling.music.config import MusicFields

MetadataField = Literal["genre", "artist", "title", "album"]


class AudioWindows(StrictModel):
    min_last_window_s: float = Field(
        1.0,
        ge=0,
        le=10,
        description="A clip's last 10 s window shorter than this is left out (when the clip has others); "
        "a longer one is padded by repetition, as LAION's own inference pads",
    )


class TopKSearch(StrictModel):
    k: int = Field(
        10, ge=1, description="Candidates kept per clip and vocabulary, by cosine similarity (Noise2Music: 10)"
    )
    min_similarity: float | None = Field(
        None, ge=-1, le=1, description="Drop candidates scoring below this; empty: keep all K"
    )
    clip_batch: int = Field(
        256, ge=1, description="Clips scored together; with caption_chunk, bounds the score block in memory"
    )
    caption_chunk: int = Field(65536, ge=1, description="Captions scored at once against a clip batch")


class Balancing(StrictModel):
    labels_per_vocabulary: dict[str, int] = Field(
        default_factory=lambda: {"llm_long": 3, "rater_long": 3, "tags": 6},
        description="K': labels drawn per clip from each vocabulary's top-K (Noise2Music: 3 LLM long-form, 3 rater "
        "long-form, 6 tags)",
    )
    default_labels: int = Field(3, ge=0, description="K' for a vocabulary not named in labels_per_vocabulary")
    seed: int = Field(0, description="Run seed; with the clip id it seeds every draw, so reruns and all engines agree")

    def labels_for(self, vocab: str) -> int:
        return self.labels_per_vocabulary.get(vocab, self.default_labels)


class Prompts(StrictModel):
    max_tokens: int = Field(
        64, ge=4, description="Token limit of one tag-chunk prompt (the training text encoder's, e.g. 64 or 128)"
    )
    tokenizer: str | None = Field(
        None,
        description="Local folder of the training text encoder's tokenizer (e.g. t5-base) to count tokens exactly; "
        "empty: count words and punctuation marks (fewer than subword tokens)",
    )
    metadata_fields: list[MetadataField] = Field(
        default_factory=lambda: ["genre", "artist", "title"],
        description="Container tags added to the tag prompts and structured fields",
    )
    long_form_vocabularies: list[str] | None = Field(
        None,
        description="Vocabularies whose long-form labels become prompts; empty: all. Leave out rater_long when "
        "evaluating on MusicCaps: its sentences are MusicCaps' (Noise2Music kept them out of training)",
    )
    evaluation_sentences: bool = Field(
        False,
        description="Let sentences of a caption dataset that is also an evaluation file (the vocabulary manifest's "
        "evaluation_sources) become prompts; by default they are labels only",
    )


class QualitySettings(StrictModel):
    id_column: str | None = Field(
        None,
        description="Column of the truth table naming clips or their sources (e.g. MusicCaps' ytid); empty: the "
        "first of clip_id, source_id, source_uri it has",
    )
    clip_column: str | None = Field(
        None,
        description="Column of the clip table the id column matches (clip_id, source_id, source_uri, title, ... or "
        "source_stem: the source file's name without extension, e.g. <ytid>.wav); empty: the id column's name",
    )
    tags_column: str = Field(
        "aspect_list",
        description="Column of known tags: a list, a list literal (MusicCaps' aspect_list) or text split on , ; |",
    )
    caption_column: str = Field("caption", description="Column of known captions (free text), the retrieval queries")
    tags_vocabulary: str = Field(
        "tags", description="Vocabulary whose tags are scored against the known tags and whose drawn labels are checked"
    )


class LabelConfig(StrictModel):
    clips: str = Field(
        description="Curated folder (the output of `soundry curate`, holding clips/) or a clips/ folder itself"
    )
    vocab: str = Field(description="Vocabulary folder (the output of `soundry vocab`, holding manifest.json)")
    output: str = Field(description="Label folder to write (labels/, clip_embeddings/, manifest.json, summary)")
    vocabularies: list[str] | None = Field(
        None, description="Vocabularies to label with; empty: every one in the vocabulary manifest"
    )
    cache: str | None = Field(
        None, description="Embedding cache shared between runs; empty: clap_cache beside the output folder"
    )
    clap: ClapConfig = Field(description="The CLAP model")
    audio: AudioWindows = Field(default_factory=AudioWindows, description="How clips are cut into CLAP's 10 s windows")
    topk: TopKSearch = Field(default_factory=TopKSearch, description="The top-K search")
    balance: Balancing = Field(default_factory=Balancing, description="Frequency-balanced label draws")
    prompts: Prompts = Field(default_factory=Prompts, description="Prompt candidates and structured fields")
    music: MusicFields | None = Field(
        None, description="Tempo, key and chords from a `soundry analyze` folder; empty: no musical facts"
    )
    truth: str | None = Field(
        None,
        description="Labeled set (Parquet or CSV: an id column, known tags and/or captions, as MusicCaps or the demo's "
        "demo_truth.csv); the run then writes label_quality.json: zero-shot tag accuracy and mAP, text-to-audio "
        "recall@1/10, precision of the drawn labels, each beside its chance level",
    )
    quality: QualitySettings = Field(
        default_factory=QualitySettings, description="How the truth table is read and matched to clips"
    )
    clips_per_unit: int = Field(
        64, ge=1, description="Clips in one work unit (decoded together, embedded, searched, written as one part)"
    )
    captions_per_unit: int = Field(4096, ge=1, description="Captions embedded in one work unit")
    model_workers: int = execution_field(
        1,
        ge=1,
        description="Model replicas on ray and beam (each loads CLAP once); local runs one in-process",
    )
    gpus_per_model_worker: float | None = execution_field(
        None,
        ge=0,
        description="GPUs each model replica takes on ray; empty: 1 when the cluster has GPUs, else 0",
    )

    @model_validator(mode="after")
    def _check(self) -> LabelConfig:
        too_many = {v: n for v, n in self.balance.labels_per_vocabulary.items() if n > self.topk.k}
        if too_many:
            name, n = next(iter(too_many.items()))
            raise ValueError(
                f"balance.labels_per_vocabulary draws {n} labels from {name} but topk.k keeps only {self.topk.k}"
            )
        if self.balance.default_labels > self.topk.k:
            raise ValueError(
                f"balance.default_labels ({self.balance.default_labels}) is more than topk.k ({self.topk.k})"
            )
        return self

    def cache_root(self) -> str:
        if self.cache:
            return self.cache
        parent = self.output.rstrip("/").rpartition("/")[0]
        return f"{parent}/clap_cache" if parent else "clap_cache"

    def label_run_fields(self) -> dict:
        """What decides the labels (not where files go, nor how the work is spread). The model's
        files enter the label run through its identity (their hashes), not their paths."""
        fields = self.model_dump(mode="json", include={"vocabularies", "audio", "topk", "balance", "prompts"})
        if self.music:  # only when set, so that label runs without it keep their ids
            fields["music"] = self.music.model_dump(mode="json", exclude={"analysis"})
        fields["clap"] = self.clap.model_dump(
            mode="json",
            exclude={"audio_batch_size", "text_batch_size", "threads", "checkpoint", "tokenizer", "model_dir"},
        )
        return fields
