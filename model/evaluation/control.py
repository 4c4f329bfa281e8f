"""Control accuracy (as Mustango reports it): does generated audio have the tempo and key its prompt asked for?

The asked-for facts are a sample's structured `bpm`/`key` fields (what the label stage states
from its music analysis) or, for prompts alone, "120 bpm" and "A minor" written in the prompt.
Generated and reference clips with asked-for facts are measured by labeling.music's analyzer
and scored with the MIREX measures: tempo Accuracy1 (within 4%) and Accuracy2 (octave errors
forgiven), key exact and weighted. The reference clips' score is the ceiling: how often the
analyzer itself finds what the label stage stated. Clips that ask for nothing are counted and
skipped; without the analysis extra (librosa) the measure is skipped and says so.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from labeling.music.scoring import accuracy_report, parse_key

BPM = re.compile(r"(\d{2,3}(?:\.\d+)?)\s*bpm\b", re.IGNORECASE)
ANALYSIS_RATE = 22050  # labeling.music's default analysis rate
KEY = re.compile(r"\b([A-G][#b]?)\s+(major|minor)\b", re.IGNORECASE)


def asked_facts(prompt: str | None, structured: dict[str, list[str]] | None = None) -> tuple[float | None, str | None]:
    """(bpm, key) a clip asks for: its structured fields first, else what its prompt says; None where absent."""
    structured = structured or {}
    bpm_text = (structured.get("bpm") or [None])[0]
    key = (structured.get("key") or [None])[0]
    if bpm_text is None and prompt and (found := BPM.search(prompt)):
        bpm_text = found.group(1)
    if key is None and prompt and (found := KEY.search(prompt)):
        key = f"{found.group(1)[0].upper()}{found.group(1)[1:]} {found.group(2).lower()}"
    try:
        key = key if key is None or parse_key(key) else None
    except ValueError:
        key = None  # a key the scoring cannot read is no fact
    return (float(bpm_text) if bpm_text else None), key


def control_accuracy(
    asked: dict[str, tuple[float | None, str | None]],
    clips: Callable[[str, set[str]], Iterator[tuple[str, np.ndarray]]],
) -> dict[str, Any]:
    """asked: clip name -> (bpm, key), for every generated clip; clips(side, names): that side's
    clips of those names, one (name, mono audio at ANALYSIS_RATE) at a time (memory holds one clip)."""
    with_facts = {name: facts for name, facts in asked.items() if facts != (None, None)}
    counts = {"clips_asking": len(with_facts), "clips_asking_nothing": len(asked) - len(with_facts)}
    if not with_facts:
        return {**counts, "skipped": "no prompt asks for a tempo or key (bpm/key fields or '120 bpm', 'A minor')"}
    if importlib.util.find_spec("librosa") is None:
        return {
            **counts,
            "skipped": "measuring tempo and key needs the analysis extra: pip install 'soundry[analysis]'",
        }
    from labeling.music.analysis import analyze
    from labeling.music.config import AnalysisSettings

    settings = AnalysisSettings(sample_rate=ANALYSIS_RATE)
    report: dict[str, Any] = dict(counts)
    for side in ("generated", "reference"):
        pairs = []
        for name, audio in clips(side, set(with_facts)):
            facts = analyze(audio, settings)
            pairs.append((facts.bpm, facts.key_name, *with_facts[name]))
        report[side] = accuracy_report(pairs) if pairs else None
    return report
