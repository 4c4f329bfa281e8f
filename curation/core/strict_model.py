"""The base of every configuration model: unknown keys are errors, values never change after validation."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """`extra="forbid"` so that a mistyped key is an error naming it, never a silent default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)
