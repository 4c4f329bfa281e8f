"""Decide whether a measured clip is kept: the first failed threshold is the reason."""

from __future__ import annotations

from curation.config import Filtering
from curation.measure import QualityMeasures


def rejection(measures: QualityMeasures, rules: Filtering) -> tuple[str, str] | None:
    """(reason, detail) for a clip that fails a rule, None for a clip that passes."""
    m = measures
    if not m.finite:
        return "non_finite", "the decoded samples contain NaN or infinity"
    checks = [
        (
            "silent",
            rules.min_peak_dbfs,
            m.peak_dbfs < (rules.min_peak_dbfs or 0),
            f"peak {m.peak_dbfs:.1f} dBFS < filter.min_peak_dbfs {rules.min_peak_dbfs}",
        ),
        (
            "too_quiet",
            rules.min_lufs,
            m.lufs < (rules.min_lufs or 0),
            f"loudness {m.lufs:.1f} LUFS < filter.min_lufs {rules.min_lufs}",
        ),
        (
            "mostly_silent",
            rules.max_silence_ratio,
            m.silence_ratio > (rules.max_silence_ratio or 0),
            f"silence ratio {m.silence_ratio:.2f} > filter.max_silence_ratio {rules.max_silence_ratio}",
        ),
        (
            "clipped",
            rules.max_clipping_ratio,
            m.clipping_ratio > (rules.max_clipping_ratio or 0),
            f"clipping ratio {m.clipping_ratio:.4f} > filter.max_clipping_ratio {rules.max_clipping_ratio}",
        ),
        (
            "low_bandwidth",
            rules.min_bandwidth_hz,
            m.bandwidth_hz < (rules.min_bandwidth_hz or 0),
            f"bandwidth {m.bandwidth_hz:.0f} Hz < filter.min_bandwidth_hz {rules.min_bandwidth_hz}",
        ),
    ]
    for reason, threshold, failed, detail in checks:
        if threshold is not None and failed:
            return reason, detail
    if rules.reject_mono_as_stereo and m.mono_as_stereo:
        return "mono_as_stereo", "both channels are identical (filter.reject_mono_as_stereo)"
    return None
