"""How clips are analysed for tempo, key and chords: one validated model, every field described."""

from __future__ import annotations

from pydantic import Field

from curation.core.strict_model import StrictModel

# Raised when the measurement changes (here: meter, the pitch evidence for a key, refined tempo;
# 3: tempo from a register's onsets when the whole spectrum shows no beat, the key from the
# diatonic collection and the bass),
# so that an analysis folder made by an older method is not resumed or joined as if current.
METHOD_VERSION = 3


class AnalysisSettings(StrictModel):
    sample_rate: int = Field(22050, ge=8000, le=48000, description="Rate the clips are resampled to for analysis")
    min_duration_s: float = Field(
        4.0, ge=1, description="Clips shorter than this get unknown tempo and key (too few beats to tell)"
    )
    silence_dbfs: float = Field(
        -60.0, le=0, description="Clips whose RMS level is below this (dBFS) are silent: unknown tempo and key"
    )
    min_periodicity: float = Field(
        0.4,
        ge=0,
        le=1,
        description="Onset autocorrelation at the beat period (0..1) below which a clip has no tempo (noise, "
        "arrhythmic sound effects): unknown, confidence 0",
    )
    min_tonality: float = Field(
        0.4,
        ge=-1,
        le=1,
        description="Correlation of the best key profile below which a clip has no key (noise, drums): unknown, "
        "confidence 0",
    )
    min_pitch_classes: int = Field(
        3,
        ge=1,
        le=12,
        description="Peaks (pitch classes above both neighbours, at least a quarter as strong as the strongest) a "
        "clip's chroma must show to have a key (a triad shows three); a click or a drone shows one: unknown, "
        "confidence 0",
    )
    min_pitch_share: float = Field(
        0.3,
        ge=0,
        le=1,
        description="Share of the clip's chroma above its quietest pitch class below which it has no key (noise and "
        "drums spread evenly over all twelve): unknown, confidence 0",
    )
    min_accent_db: float = Field(
        1.5,
        ge=0,
        description="How much louder (dB) the downbeat must be than the bar's other beats, on average, to state a "
        "meter (3/4 or 4/4); below it the meter is not stated",
    )
    chords: bool = Field(True, description="Estimate chord changes and a short Roman-numeral progression")
    min_chord_beats: int = Field(
        2, ge=1, description="Beats a chord must be held to count as a change (shorter: a passing sound)"
    )
    progression_length: int = Field(4, ge=1, description="Chord changes in the Roman-numeral progression")


class AnalyzeConfig(StrictModel):
    clips: str = Field(
        description="Curated folder (the output of `soundry curate`, holding clips/) or a clips/ folder itself"
    )
    output: str = Field(description="Analysis folder to write (analysis/part-*.parquet, summary.json, manifest.json)")
    analysis: AnalysisSettings = Field(default_factory=AnalysisSettings, description="How each clip is analysed")
    truth: str | None = Field(
        None,
        description="Table of known facts (Parquet or CSV: clip_id or source_id or source_uri, and bpm and/or key "
        "such as 'A minor'); the summary then reports tempo Accuracy1/2 and the MIREX key score against it",
    )
    clips_per_unit: int = Field(64, ge=1, description="Clips in one work unit (decoded, analysed, written as one part)")

    def analysis_run_fields(self) -> dict:
        """What decides the facts (not where files go, nor how the work is spread): the settings and the method."""
        return {"method": METHOD_VERSION, **self.analysis.model_dump(mode="json")}


class MusicFields(StrictModel):
    analysis: str = Field(description="Analysis folder (the output of `soundry analyze` on the same clip table)")
    min_confidence: float = Field(
        0.5,
        ge=0,
        le=1,
        description="Tempo and key with a confidence below this are left out of tags and prompts, not stated wrongly",
    )
    tempo_bins: dict[str, float] = Field(
        default_factory=lambda: {"slow": 0.0, "medium": 85.0, "fast": 115.0, "very fast": 150.0},
        description="Tempo words and the BPM each starts at; a clip's tempo word is the last one its BPM reaches",
    )
    long_form: bool = Field(
        True, description="Add one sentence of the facts as a long-form prompt candidate ('A minor, 120 bpm, ...')"
    )
