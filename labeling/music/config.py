"""How clips are analysed for tempo, key and chords: one validated model, every field described."""

from __future__ import annotations

from pydantic import Field

from curation.core.strict_model import StrictModel


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
    chords: bool = Field(True, description="Estimate chord changes and a short Roman-numeral progression")
    min_chord_beats: int = Field(
        2, ge=1, description="Beats a chord must be held to count as a change (shorter: a passing sound)"
    )
    progression_length: int = Field(4, ge=1, description="Chord changes in the Roman-numeral progression")
