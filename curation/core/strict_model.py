"""The base of every configuration model: unknown keys are errors, values never change after validation.

Fields that say how the work runs, not what it makes (workers, engine, cluster address,
model replicas) are made with `execution_field` (EXECUTION); `identity` leaves them out, so changing
one never makes finished work invalid. Fields where a secret may land (storage options, the
name of an API key's variable, where a key is sometimes pasted by mistake) carry
`json_schema_extra=SENSITIVE`: configuration errors never echo their values.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.fields import FieldInfo

EXECUTION = {"execution": True}
SENSITIVE = {"sensitive": True}


def execution_field(default: Any = ..., **kwargs: Any) -> Any:
    """A Field marked EXECUTION: how the work runs, so a run may resume under another value."""
    return Field(default, json_schema_extra=EXECUTION, **kwargs)


class StrictModel(BaseModel):
    """`extra="forbid"` so that a mistyped key is an error naming it, never a silent default."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=True)


def identity(model: BaseModel) -> dict[str, Any]:
    """The model as JSON (secrets redacted) without its execution fields, at any depth: what a
    stage's result depends on, the form runs are compared in."""
    return _without_execution(model, model.model_dump(mode="json"))


def is_execution(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("execution") is True


def is_sensitive(field: FieldInfo) -> bool:
    extra = field.json_schema_extra
    return isinstance(extra, dict) and extra.get("sensitive") is True


def _without_execution(value: Any, dumped: Any) -> Any:
    if isinstance(value, BaseModel) and isinstance(dumped, dict):
        return {
            name: _without_execution(getattr(value, name), dumped[name])
            for name, field in type(value).model_fields.items()
            if not is_execution(field) and name in dumped
        }
    if isinstance(value, (list, tuple)) and isinstance(dumped, list):
        return [_without_execution(v, d) for v, d in zip(value, dumped, strict=True)]
    if isinstance(value, dict) and isinstance(dumped, dict) and len(value) == len(dumped):
        return {k: _without_execution(v, d) for (k, v), d in zip(value.items(), dumped.values(), strict=True)}
    return dumped
