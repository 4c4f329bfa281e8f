"""The configuration of `soundry vocab`: inputs, the LLM backend, prompts and cleaning rules.

Descriptions double as `soundry vocab --help` text. Nothing here holds a secret: an API key
is named by the environment variable that holds it, never written in a config.
"""

from __future__ import annotations

import re
import string
from typing import Literal

from pydantic import Field, field_validator, model_validator

from curation.core.strict_model import SENSITIVE, StrictModel, execution_field
from labeling.clap.backend import ClapConfig
from labeling.vocab.builtin_tags import ASPECTS

FileFormat = Literal["auto", "csv", "jsonl", "json", "parquet"]


class CaptionSource(StrictModel):
    path: str = Field(
        description="A caption dataset: CSV, JSON Lines, JSON (a list of objects) or Parquet, e.g. MusicCaps' "
        "musiccaps-public.csv"
    )
    name: str | None = Field(None, description="Dataset name recorded as source rater:<name>; empty: the file's stem")
    caption_column: str = Field("caption", description="Column holding the free-text caption")
    tags_column: str | None = Field(
        None, description="Column holding a list of short tags (e.g. MusicCaps' aspect_list); empty: none"
    )
    format: FileFormat = Field("auto", description="File format; auto: from the extension")
    encoding: str = Field(
        "utf-8", description="Text encoding of CSV/JSON files; rows that do not decode are counted and skipped"
    )

    @property
    def dataset_name(self) -> str:
        if self.name:
            return self.name
        stem = re.split(r"[\\/]", self.path.rstrip("/"))[-1]
        return stem.split(".")[0] or stem


class SongList(StrictModel):
    path: str = Field(
        description="A list of songs (CSV, JSON Lines, JSON or Parquet) whose titles and artists prompt the LLM"
    )
    title_column: str = Field("title", description="Column holding the song title")
    artist_column: str = Field("artist", description="Column holding the artist")
    tags_column: str | None = Field(
        None,
        description="Optional column of tags (a list, or text split on , ; |) given to the LLM and added to the tags "
        "vocabulary",
    )
    format: FileFormat = Field("auto", description="File format; auto: from the extension")
    encoding: str = Field("utf-8", description="Text encoding of CSV/JSON files")


class TransformersOptions(StrictModel):
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="Where the model runs; auto: the GPU when there is one"
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="Weights' type; auto: bfloat16 on a GPU that supports it, else float32"
    )
    batch_size: int = Field(8, ge=1, description="Prompts generated together in one batch (left-padded)")
    cpu_threads: int = Field(
        0,
        ge=0,
        description="Threads torch uses when running on the CPU; 0: torch's default (every core). With several model "
        "workers on one machine give cores / workers: oversubscribed threads make small models many times slower",
    )
    model_workers: int = execution_field(
        1,
        ge=1,
        description="Model replicas, each loading the model once and generating unit after unit: Ray actors "
        "(one per GPU with gpus_per_model_worker 1), Beam model DoFns (bounded by Beam's workers); the local runner "
        "runs "
        "one, in its own process",
    )
    gpus_per_model_worker: float | None = execution_field(
        None,
        ge=0,
        description="GPUs each model replica takes on Ray (fractions share a GPU); empty: 1 when the cluster has "
        "GPUs, else 0",
    )


ENVIRONMENT_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class OpenAIOptions(StrictModel):
    base_url: str = Field(
        "http://localhost:8000/v1",
        description="OpenAI-compatible endpoint (vLLM, TGI, llama.cpp server, Ollama, hosted APIs), up to /v1",
    )
    api_key_env: str | None = Field(
        "OPENAI_API_KEY",
        description="NAME of the environment variable holding the API key (the key itself is never read from or "
        "written to a config); empty: no key",
        json_schema_extra=SENSITIVE,
    )
    concurrency: int = execution_field(
        8,
        ge=1,
        description="Requests in flight at once per work unit; an engine runs units side by side, so the endpoint "
        "sees up to concurrency x the units running at once: runner.workers on local, up to 2 x runner.workers on a "
        "Ray "
        "cluster with that many CPUs, Beam's worker threads",
    )
    timeout_s: float = Field(120.0, gt=0, description="Seconds before a request is abandoned and retried")
    max_retries: int = Field(
        6, ge=0, description="Retries of a request after a 429, a 5xx, a timeout or a malformed answer"
    )
    backoff_s: float = Field(
        1.0,
        gt=0,
        description="First wait before a retry; doubled after each, with jitter, or as the server's Retry-After says",
    )
    max_backoff_s: float = Field(60.0, gt=0, description="Longest wait between retries")

    @field_validator("api_key_env")
    @classmethod
    def _check_variable_name(cls, name: str | None) -> str | None:
        # Not echoed: a value that is no variable name is most likely the key itself.
        if name is None or name == "":
            return None
        if not ENVIRONMENT_VARIABLE.fullmatch(name):
            raise ValueError(
                "must be the NAME of an environment variable (letters, digits and _, e.g. OPENAI_API_KEY), not the "
                "key itself: export the key in a variable and give the variable's name here"
            )
        return name


class LLMConfig(StrictModel):
    backend: Literal["template", "transformers", "openai"] = Field(
        "template",
        description="template: deterministic sentences from tag combinations, no model; transformers: a local model "
        "folder; openai: an OpenAI-compatible endpoint",
    )
    model: str | None = Field(
        None, description="transformers: the local model folder; openai: the model name the endpoint serves"
    )
    max_new_tokens: int = Field(256, ge=1, description="Longest answer, in tokens")
    temperature: float = Field(0.8, ge=0, description="Sampling temperature; 0: greedy")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass")
    seed: int = Field(0, description="Sampling seed")
    prompts_per_unit: int = Field(
        64, ge=1, description="Prompts in one work unit (one part file, one task on the engine)"
    )
    cache: str | None = Field(
        None, description="Folder of cached answers, shared between runs; empty: <output>/llm_cache"
    )
    transformers: TransformersOptions = Field(
        default_factory=TransformersOptions, description="Options of the transformers backend"
    )
    openai: OpenAIOptions = Field(default_factory=OpenAIOptions, description="Options of the openai backend")

    @model_validator(mode="after")
    def _check(self) -> LLMConfig:
        if self.backend != "template" and not self.model:
            where = "a local model folder" if self.backend == "transformers" else "the endpoint's model name"
            raise ValueError(f"llm.model is required for the {self.backend} backend ({where})")
        return self


SONG_FIELDS = ("title", "artist", "album", "tags", "n")
ASPECT_FIELDS = ("description", "n")


class PromptConfig(StrictModel):
    song: str = Field(
        'Describe the music of the song "{title}" by {artist}{tags} in {n} short sentences, one per line. '
        "Say how it sounds: genre, instruments, mood, tempo, vocals and production. "
        "Do not name the song, the artist or the album, and do not talk about lyrics, charts or history.",
        description="Prompt for one song; fields: {title} {artist} {album} {tags} (' (genre: jazz; ...)' or empty) {n}",
    )
    aspects: str = Field(
        "Write {n} short sentences, one per line, each describing a different piece of music that is {description}. "
        "Say how it sounds: instruments, mood, tempo and production.",
        description="Prompt for a combination of tags, for corpora without metadata; fields: {description} {n}",
    )
    sentences_per_answer: int = Field(5, ge=1, le=50, description="Sentences asked of every answer ({n})")
    combinations: int = Field(200, ge=0, description="Prompts made from random combinations of built-in tags")
    combination_aspects: list[str] = Field(
        default_factory=lambda: ["genre", "instrument", "mood"],
        description="Aspects drawn for each combination (one tag of each)",
    )
    max_songs: int | None = Field(
        None, ge=0, description="Most songs prompted (corpus first, then song lists); empty: all"
    )

    @field_validator("combination_aspects")
    @classmethod
    def _known_aspects(cls, aspects: list[str]) -> list[str]:
        unknown = [a for a in aspects if a not in ASPECTS]
        if unknown:
            raise ValueError(f"unknown aspect {unknown[0]!r}; the built-in tags have: {', '.join(ASPECTS)}")
        return aspects

    @field_validator("song")
    @classmethod
    def _song_fields(cls, template: str) -> str:
        return _check_fields(template, SONG_FIELDS)

    @field_validator("aspects")
    @classmethod
    def _aspect_fields(cls, template: str) -> str:
        return _check_fields(template, ASPECT_FIELDS)


def _check_fields(template: str, allowed: tuple[str, ...]) -> str:
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
    except ValueError as error:
        raise ValueError(f"not a valid template ({error}); write literal braces as {{{{ and }}}}") from None
    unknown = sorted(fields - set(allowed))
    if unknown:
        raise ValueError(
            f"unknown field {{{unknown[0]}}}; this template may use {', '.join('{' + f + '}' for f in allowed)}"
        )
    return template


DEFAULT_NON_DESCRIPTIVE = {
    # Sentences about the assistant, the reader or the conversation, not the music.
    "about_the_assistant": (
        r"\b(as an ai|language model|i (cannot|can't|don't|do not|am not|am unable|'m not|'m unable)|"
        r"my (knowledge|training))\b"
    ),
    "talks_to_reader": (
        r"\?\s*$|\b(let me know|i hope|feel free|you (might|may|will|would|can) (enjoy|like|love|find)|"
        r"give it a listen)\b"
    ),
    # Facts about a release or a career describe one song's history, not how music sounds.
    "release_facts": (
        r"\b(released|release date|(lead|hit|debut|second|third) single|(debut|studio|live|compilation|their|"
        r"her|his) album|billboard|charts?|charted|grammy|awards?|sold|sales|record label|music video|on tour|"
        r"toured|covered by|number one)\b"
    ),
    "lyrics_and_credits": (
        r"\b(lyrics?|lyrical|the song is about|sings about|tells the story|written by|wrote|songwriters?|"
        r"composed by|produced by)\b"
    ),
    "biography": r"\b(was born|were formed|was formed|band members|best known|known for|famous for|career)\b",
}


# Written for the CLAP check: how people describe what music sounds like, across genres,
# instruments, moods, tempos and recording qualities, so that a descriptive sentence about
# any music is near one of them.
DEFAULT_MUSIC_DESCRIPTIONS = (
    "A calm piano melody plays over soft sustained strings.",
    "An energetic rock song with distorted electric guitars, bass and pounding drums.",
    "Fast electronic dance music with a four-on-the-floor kick drum and a pulsing synth bass.",
    "A slow ambient piece with warm synth pads and gentle bell tones.",
    "A mellow jazz trio with upright bass, brushed drums and a swinging piano.",
    "A lo-fi hip hop beat with dusty drums, vinyl crackle and a jazzy Rhodes loop.",
    "An acoustic folk song with fingerpicked guitar and a soft female voice.",
    "A full orchestra plays a dramatic, cinematic theme with brass and timpani.",
    "A male singer belts a soulful melody over an organ and a tight rhythm section.",
    "A melancholic string quartet plays a slow piece in a minor key.",
    "A rap verse over a heavy trap beat with booming 808 bass and rapid hi-hats.",
    "An upbeat pop song with catchy vocals, bright synths and handclaps.",
    "A heavy metal track with fast double-kick drums and aggressive growled vocals.",
    "A reggae groove with offbeat guitar chords and a deep, round bass line.",
    "A solo classical guitar plays a gentle, flowing melody.",
    "The recording is noisy and low quality, with a muffled mono sound.",
    "A choir sings a slow hymn with long reverb in a large hall.",
    "A funky bass line and wah guitar drive a danceable groove with horn stabs.",
    "A country song with a twangy electric guitar, fiddle and a steady shuffle beat.",
    "Traditional percussion and a flute play a lively, repetitive rhythm.",
)


class ClapCheckConfig(StrictModel):
    clap: ClapConfig = Field(
        description="The CLAP model whose text tower embeds the sentences (the label stage's clap section: laion, hf "
        "or random)"
    )
    references: tuple[str, ...] | None = Field(
        None,
        min_length=1,
        description="Music descriptions a kept sentence must be near; empty: twenty built-in ones covering genres, "
        "instruments, moods and recording qualities",
    )
    threshold: float = Field(
        ge=-1,
        le=1,
        description="Drop a sentence whose best cosine similarity to the references is below this "
        "(non_descriptive:clap). "
        "It depends on the model: run once with a low value and read the similarity quantiles in the summary",
    )

    @property
    def descriptions(self) -> tuple[str, ...]:
        return self.references or DEFAULT_MUSIC_DESCRIPTIONS


class CleaningConfig(StrictModel):
    min_words: int = Field(4, ge=1, description="Shortest long-form sentence kept, in words (too_short)")
    max_words: int = Field(40, ge=1, description="Longest long-form sentence kept, in words (too_long)")
    max_chars: int = Field(300, ge=10, description="Longest long-form sentence kept, in characters (too_long)")
    drop_song_names: bool = Field(
        True, description="Drop sentences naming the prompted song's title, artist or album (names_song)"
    )
    non_descriptive: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_NON_DESCRIPTIVE),
        description="Rules that drop non-descriptive sentences: name -> case-insensitive regular expression "
        "(non_descriptive:<name>)",
    )
    require_music_word: bool = Field(
        True,
        description="Drop sentences that name no musical thing: no instrument, genre, rhythm word or the like "
        "(not_about_music)",
    )
    clap_check: ClapCheckConfig | None = Field(
        None,
        description="Optional last per-sentence rule: drop sentences whose CLAP text embedding is far from every music "
        "description (non_descriptive:clap); long-form sentences only, batched; empty: off",
    )
    near_duplicate_threshold: float | None = Field(
        0.85,
        gt=0,
        le=1,
        description="Drop a sentence whose content-word Jaccard similarity to a kept one reaches this "
        "(near_duplicate; MinHash LSH finds candidates, each verified exactly); empty: exact duplicates only",
    )
    minhash_permutations: int = Field(
        64, ge=16, le=512, description="MinHash permutations for the near-duplicate search"
    )
    exclude: list[CaptionSource] = Field(
        default_factory=list,
        description="Evaluation captions (e.g. MusicCaps' eval split) no sentence or tag may match or nearly match "
        "(eval_overlap); a file also given in captions keeps its sentences, and they become no prompts by default",
    )
    max_tag_words: int = Field(6, ge=1, description="Longest short-form tag kept, in words (too_long)")
    max_tag_chars: int = Field(60, ge=2, description="Longest short-form tag kept, in characters (too_long)")
    max_caption_chars: int = Field(
        20000, ge=100, description="Longest input caption read; longer ones are counted and skipped (caption_too_long)"
    )
    max_line_bytes: int = Field(
        2**17,
        ge=1024,
        description="Longest line read from a CSV or JSON Lines file; longer ones are counted and skipped "
        "(line_too_long)",
    )

    @field_validator("non_descriptive")
    @classmethod
    def _compile(cls, rules: dict[str, str]) -> dict[str, str]:
        for name, pattern in rules.items():
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"rule {name!r}: not a valid regular expression ({error})") from None
        return rules


class VocabNames(StrictModel):
    llm_long: str = Field("llm_long", description="Vocabulary of LLM-written (or template) long-form sentences")
    rater_long: str = Field("rater_long", description="Vocabulary of sentences split from caption datasets")
    tags: str = Field("tags", description="Vocabulary of short-form tags, each with an aspect")

    @model_validator(mode="after")
    def _distinct(self) -> VocabNames:
        names = [self.llm_long, self.rater_long, self.tags]
        if len(set(names)) != 3:
            raise ValueError(f"vocabulary names must differ, got {names}")
        for name in names:
            if not re.fullmatch(r"[A-Za-z0-9_]+", name):
                raise ValueError(f"vocabulary name {name!r}: use letters, digits and _ only")
        return self


class VocabConfig(StrictModel):
    output: str = Field(description="Folder (or fsspec URL) the vocabulary tables and manifest.json are written to")
    corpus: list[str] = Field(
        default_factory=list,
        description="Curated clip-table folders (outputs of `soundry curate`) whose tags prompt the LLM",
    )
    songs: list[SongList] = Field(
        default_factory=list, description="Song lists (title, artist, optional tags) that prompt the LLM"
    )
    captions: list[CaptionSource] = Field(
        default_factory=list,
        description="Caption datasets split into rater sentences (and their tag columns into tags)",
    )
    builtin_tags: bool = Field(
        True, description="Add the built-in vocabulary of about a thousand music tags to the tags vocabulary"
    )
    metadata_tags: bool = Field(True, description="Add the corpus's and song lists' genre tags to the tags vocabulary")
    llm: LLMConfig = Field(default_factory=LLMConfig, description="The LLM that writes long-form sentences")
    prompts: PromptConfig = Field(default_factory=PromptConfig, description="How prompts are made")
    cleaning: CleaningConfig = Field(
        default_factory=CleaningConfig, description="Cleaning rules; the summary counts what each removed"
    )
    names: VocabNames = Field(default_factory=VocabNames, description="Names of the three vocabularies")
    seed: int = Field(0, description="Seed of the tag combinations and the template backend")
