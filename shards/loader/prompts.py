"""Stable Audio style prompts from a clip's structured fields.

Stable Audio trained on prompts drawn anew for every example from the same metadata: a
random subset of the fields in shuffled order, either structured
(`Genre: Jazz | Instruments: Piano, Double Bass | Moods: Calm`) or free-form
(`Piano, Double Bass, Jazz, Calm`), so the model learns to follow either way of asking.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Literal

PromptStyle = Literal["structured", "free_form"]

# How a field is titled in a structured prompt; other aspects are titled from their name.
ASPECT_TITLES = {
    "genre": "Genre", "instrument": "Instruments", "mood": "Moods", "tempo": "Tempo", "era": "Era",
    "production": "Production", "vocals": "Vocals", "key": "Key", "artist": "Artist", "title": "Title",
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
