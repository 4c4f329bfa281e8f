"""`soundry analyze`'s work unit: a run of clips decoded, analysed, written as one part.

A unit's part (`analysis/part-<unit>.parquet`, written atomically) marks it done, so a
rerun skips it. Units are the label stage's (labeling.labels.units): read by row groups,
one unit's audio in memory at a time, never the corpus.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import soundfile
import soxr

from curation.core.storage import exists, join, write_table_atomic
from labeling.labels.units import LabelUnit, read_unit_rows
from labeling.music.analysis import analyze
from labeling.music.compile_once import compile_kernels
from labeling.music.config import AnalysisSettings
from labeling.music.facts import ANALYSIS_DIR, facts_to_table


@dataclass(frozen=True)
class UnitSettings:
    output: str
    analysis: AnalysisSettings


def unit_part(output: str, unit_id: str) -> str:
    return join(output, ANALYSIS_DIR, f"part-{unit_id}.parquet")


def decode_mono(flac: bytes, sample_rate: int) -> np.ndarray:
    """A clip's FLAC bytes -> float32 mono at `sample_rate`."""
    audio, rate = soundfile.read(io.BytesIO(flac), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    if rate != sample_rate:
        mono = soxr.resample(mono, rate, sample_rate)
    return np.ascontiguousarray(mono, dtype=np.float32)


def analyze_unit(unit: LabelUnit, settings: UnitSettings) -> dict[str, Any]:
    out = unit_part(settings.output, unit.id)
    if exists(out):
        return {"unit": unit.id, "clips": unit.rows, "resumed": True}
    compile_kernels(settings.analysis)
    started = time.perf_counter()
    rows = read_unit_rows(unit, ["clip_id", "audio_flac", "duration_s"]).to_pydict()
    facts, decode_s = [], 0.0
    for flac in rows["audio_flac"]:
        decoded = time.perf_counter()
        mono = decode_mono(flac, settings.analysis.sample_rate)
        decode_s += time.perf_counter() - decoded
        facts.append(analyze(mono, settings.analysis))
    write_table_atomic(out, facts_to_table(rows["clip_id"], facts))
    return {
        "unit": unit.id,
        "clips": unit.rows,
        "resumed": False,
        "audio_s": float(sum(rows["duration_s"])),
        "decode_s": round(decode_s, 3),
        "wall_s": round(time.perf_counter() - started, 3),
    }
