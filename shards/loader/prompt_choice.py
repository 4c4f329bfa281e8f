"""Pick one training prompt per example from a sample's candidates.

Noise2Music trained on one candidate drawn per example (a long-form pseudo-label, or a chunk
of short tags and metadata); Stable Audio on prompts built anew from metadata fields, either
structured or free-form. Each kind has a weight; kinds a sample lacks are left out and the
rest renormalized. Classifier-free guidance dropout is the trainer's, not the loader's.
"""

from __future__ import annotations

import random
from typing import Any

from pydantic import Field

from curation.core.strict_model import StrictModel
from shards.loader.prompts import build_prompt


class PromptWeights(StrictModel):
    long_form: float = Field(0.4, ge=0, description="Weight of a long-form pseudo-label sentence")
    tag_chunk: float = Field(0.2, ge=0, description="Weight of a chunk of short tags and metadata")
    structured: float = Field(0.2, ge=0, description="Weight of a structured prompt (Genre: … | Moods: …) from random fields")
    free_form: float = Field(0.2, ge=0, description="Weight of a free-form prompt (tags, comma separated) from random fields")


def choose_prompt(record: dict[str, Any], weights: PromptWeights, rng: random.Random) -> str:
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
    kind = rng.choices(kinds, weights=[getattr(weights, kind) for kind in kinds])[0]
    if kind == "long_form":
        return rng.choice(record["long_form"])
    if kind == "tag_chunk":
        return rng.choice(record["tag_chunks"])
    return build_prompt(structured, rng, kind)
