"""The curation stage's configuration: one validated model, every field described.

Descriptions double as `soundry curate --help` text. `extra="forbid"` everywhere so a
mistyped key is an error naming it, never a silent default.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_serializer, field_validator, model_validator

from curation.core.strict_model import SENSITIVE, StrictModel

REDACTED = "<redacted>"


def redact(value: Any) -> Any:
    """The same structure with every string and number replaced; booleans and nulls hold no secret."""
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    if value is None or isinstance(value, bool):
        return value
    return REDACTED


def _redacted_names(value: Any, prefix: str = "") -> list[str]:
    if isinstance(value, dict):
        return [name for key, item in value.items() for name in _redacted_names(item, f"{prefix}{key}.")]
    if isinstance(value, (list, tuple)):
        return [name for index, item in enumerate(value) for name in _redacted_names(item, f"{prefix}{index}.")]
    return [prefix.rstrip(".")] if value == REDACTED else []


class Location(StrictModel):
    path: str = Field(description="A folder, a glob (**/*.mp3) or an fsspec URL (s3://bucket/prefix) holding audio")
    source_name: str | None = Field(None, description="Name of the collection; recorded on every clip from here")
    license: str | None = Field(None, description="License of the files here, e.g. CC-BY-4.0")
    split_hint: str | None = Field(None, description="Split these files should land in (train, valid, test)")
    storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec options for this location, e.g. {anon: true} or {client_kwargs: {endpoint_url: ...}}; "
        "prefer credentials from the environment: values given here are never written or printed (saved "
        "configs and manifests keep the names, values redacted)",
        json_schema_extra=SENSITIVE,
    )

    @field_validator("storage_options")
    @classmethod
    def _not_redacted(cls, options: dict[str, Any]) -> dict[str, Any]:
        """A config printed by --print-config (or saved in config.json) holds REDACTED where the
        values were; run again as is, it would hand the filesystem that text as a credential."""
        hidden = sorted(_redacted_names(options))
        if hidden:
            raise ValueError(
                f"{', '.join(hidden)} holds {REDACTED}: saved and printed configs hide storage option values; "
                "give the real value, or leave it out and let fsspec take credentials from the environment"
            )
        return options

    @field_serializer("storage_options", when_used="json")
    def _redact(self, options: dict[str, Any]) -> dict[str, Any]:
        """Every JSON dump (config.json, manifests, run fingerprints, --print-config) keeps the
        option names and drops their values: a key or a secret here must never reach a file."""
        return redact(options)


class AudioFormat(StrictModel):
    sample_rate: int = Field(44100, ge=8000, le=384000, description="Training sample rate (Hz)")
    channels: int = Field(2, ge=1, le=2, description="Training channels: 1 (mono) or 2 (stereo)")


class Encoding(StrictModel):
    flac_compression: float = Field(
        0.5,
        ge=0,
        le=1,
        description="FLAC compression, 0 (fastest) to 1 (smallest); 0.5 is as small as libFLAC's default "
        "(0.40 of WAV on music) and 30% faster to encode",
    )


class Segmenting(StrictModel):
    window_s: float = Field(30.0, gt=0, description="Clip length in seconds (Noise2Music: 30 s)")
    hop_s: float | None = Field(None, gt=0, description="Step between clip starts; empty means the window (no overlap)")
    min_clip_s: float = Field(
        2.0, gt=0, description="Shortest clip kept; a shorter tail or file is rejected as too_short"
    )

    @model_validator(mode="after")
    def _check(self) -> Segmenting:
        if self.min_clip_s > self.window_s:
            raise ValueError(f"min_clip_s ({self.min_clip_s}) is longer than window_s ({self.window_s})")
        return self

    @property
    def hop(self) -> float:
        return self.hop_s if self.hop_s is not None else self.window_s


class Filtering(StrictModel):
    min_peak_dbfs: float | None = Field(-50.0, description="Reject clips whose peak is below this (silent)")
    min_lufs: float | None = Field(-45.0, description="Reject clips quieter than this integrated loudness (too_quiet)")
    max_silence_ratio: float | None = Field(
        0.5,
        ge=0,
        le=1,
        description="Reject clips with more of their 50 ms frames below -60 dBFS than this (mostly_silent)",
    )
    max_clipping_ratio: float | None = Field(
        0.01, ge=0, le=1, description="Reject clips with more samples at full scale than this fraction (clipped)"
    )
    min_bandwidth_hz: float | None = Field(
        None,
        ge=0,
        description="Reject clips whose effective bandwidth is below this, e.g. 8000 to drop upsampled low-bitrate "
        "audio (low_bandwidth)",
    )
    reject_mono_as_stereo: bool = Field(
        False, description="Reject stereo clips whose two channels are identical (mono_as_stereo)"
    )


class Decoding(StrictModel):
    backend: Literal["auto", "soundfile", "pyav", "ffmpeg"] = Field(
        "auto",
        description="auto: libsndfile in-process for wav/flac/ogg-vorbis/mp3, PyAV in-process for other codecs; "
        "or force one backend for every file (ffmpeg runs the ffmpeg CLI through ffmpeg-python)",
    )
    ffmpeg: str | None = Field(
        None, description="ffmpeg binary to use; empty: the system's, else the imageio-ffmpeg wheel's"
    )
    block_frames: int = Field(65536, ge=1024, description="Frames decoded per block (bounds memory per worker)")


class Partitioning(StrictModel):
    max_files: int = Field(256, ge=1, description="Most files in one work unit")
    max_bytes: int = Field(
        256 * 2**20, ge=1, description="Most bytes of input in one work unit (a larger file is a unit alone)"
    )
    min_units: int = Field(
        16, ge=1, description="Fewest units a corpus is split into, so small corpora still spread over every worker"
    )
    rows_per_group: int = Field(
        8,
        ge=1,
        description="Clips buffered before a Parquet row group is written: with max_files, what bounds a worker's "
        "memory",
    )


# The most clips any instant of audio may land in: a hop shorter than window_s / MAX_OVERLAP
# multiplies the corpus past what any training wants (a hop of a microsecond never ends).
MAX_OVERLAP = 100


class CurationConfig(StrictModel):
    inputs: list[Location] = Field(description="Where the raw audio is; each location's attributes flow into its clips")
    output: str = Field(description="Folder (or fsspec URL) the clip table, rejects and summary are written to")
    audio: AudioFormat = Field(default_factory=AudioFormat, description="Training audio format")
    segment: Segmenting = Field(default_factory=Segmenting, description="How sources are cut into clips")
    filter: Filtering = Field(default_factory=Filtering, description="Quality thresholds; empty disables one")
    decode: Decoding = Field(default_factory=Decoding, description="Decoding backends")
    encode: Encoding = Field(default_factory=Encoding, description="How kept clips are stored")
    units: Partitioning = Field(default_factory=Partitioning, description="How the input is split into work units")
    dedup: bool = Field(True, description="Drop exact duplicates (same decoded PCM) across the corpus, keeping one")
    follow_sidecars: bool = Field(
        True, description="Read a .json beside each file (same stem) that overrides its location's attributes"
    )

    @field_validator("segment")
    @classmethod
    def _check_segment_lengths(cls, segment: Segmenting, info: ValidationInfo) -> Segmenting:
        """Lengths in seconds become sample counts at the training rate: each must be one sample or more."""
        audio = info.data.get("audio")
        if audio is None:
            return segment  # the audio format is wrong itself; its own error says how
        rate = audio.sample_rate
        lengths = {"window_s": segment.window_s, "hop_s": segment.hop, "min_clip_s": segment.min_clip_s}
        for name, seconds in lengths.items():
            if round(seconds * rate) < 1:
                raise ValueError(
                    f"{name} = {seconds:g} s is shorter than one sample at audio.sample_rate {rate} Hz "
                    f"({1 / rate:.3g} s)"
                )
        floor = segment.window_s / MAX_OVERLAP
        if segment.hop < floor:
            raise ValueError(
                f"hop_s = {segment.hop:g} s would put every instant of audio into more than {MAX_OVERLAP} "
                f"clips of window_s {segment.window_s:g} s; use a hop of at least {floor:g} s "
                f"(window_s / {MAX_OVERLAP})"
            )
        return segment
