"""The training prompt of one example, chosen at load time from its sample's candidates and fields.

Noise2Music trained on one candidate drawn per example (a long-form pseudo-label, or a chunk
of short tags and metadata); Stable Audio on prompts drawn anew for every example from the
same metadata: a random subset of the fields in shuffled order, either structured
(`Genre: Jazz | Instruments: Piano, Double Bass | Moods: Calm`) or free-form
(`Piano, Double Bass, Jazz, Calm`), so the model learns to follow either way of asking.
Two ways to pick: `weighted` draws a kind by its weight (kinds a sample lacks are left out and
the rest renormalized), then a prompt of that kind; `uniform` draws one of all the sample's
prompts alike, Noise2Music's pick (with 6 long-form sentences and 1 tag chunk the chunk gets
1/7; weighted gives it its kind's share whatever the counts). Classifier-free guidance dropout
is the trainer's, not the loader's.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from shards.loader.config import PromptWeights

PromptStyle = Literal["structured", "free_form"]

# How a field is titled in a structured prompt; other aspects are titled from their name.
ASPECT_TITLES = {
    "genre": "Genre",
    "instrument": "Instruments",
    "mood": "Moods",
    "tempo": "Tempo",
    "era": "Era",
    "production": "Production",
    "vocals": "Vocals",
    "key": "Key",
    "bpm": "BPM",
    "chords": "Chords",
    "artist": "Artist",
    "title": "Title",
}


def aspect_title(aspect: str) -> str:
    return ASPECT_TITLES.get(aspect, aspect.replace("_", " ").capitalize())


def build_prompt(structured: Mapping[str, Sequence[str]], rng: random.Random, style: PromptStyle) -> str:
    """One prompt: a random non-empty subset of the fields, each a random non-empty subset of its
    values, all in shuffled order. Empty fields give an empty prompt (the unconditional case)."""
    fields = [(aspect, list(values)) for aspect, values in sorted(structured.items()) if values]
    if not fields:
        return ""
    chosen = rng.sample(fields, rng.randint(1, len(fields)))
    picked = [(aspect, rng.sample(values, rng.randint(1, len(values)))) for aspect, values in chosen]
    if style == "structured":
        return " | ".join(f"{aspect_title(aspect)}: {', '.join(values)}" for aspect, values in picked)
    return ", ".join(value for _, values in picked for value in values)


def choose_prompt(record: dict[str, Any], weights: PromptWeights, rng: random.Random) -> str:
    """One prompt for a sample's json record; its `text` when it offers no kind with weight."""
    structured = {field["aspect"]: field["values"] for field in record.get("structured") or [] if field["values"]}
    available = {
        "long_form": bool(record.get("long_form")),
        "tag_chunk": bool(record.get("tag_chunks")),
        "structured": bool(structured),
        "free_form": bool(structured),
    }
    kinds = [kind for kind, present in available.items() if present and getattr(weights, kind) > 0]
    if not kinds:
        return record.get("text") or ""
    if weights.pick == "uniform":
        written = [
            *(record["long_form"] if "long_form" in kinds else []),
            *(record["tag_chunks"] if "tag_chunk" in kinds else []),
        ]
        built = [kind for kind in ("structured", "free_form") if kind in kinds]
        chosen = rng.randrange(len(written) + len(built))
        return written[chosen] if chosen < len(written) else build_prompt(structured, rng, built[chosen - len(written)])
    kind = rng.choices(kinds, weights=[getattr(weights, kind) for kind in kinds])[0]
    if kind == "long_form":
        return rng.choice(record["long_form"])
    if kind == "tag_chunk":
        return rng.choice(record["tag_chunks"])
    return build_prompt(structured, rng, kind)
