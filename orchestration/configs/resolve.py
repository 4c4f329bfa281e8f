"""A job's configuration from its layers: built-in defaults, a YAML file, command-line values.

Errors name the key and where it came from (the file, or the option), and for a mistyped key
the key that was probably meant.
"""

from __future__ import annotations

import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from curation.core.errors import UserError


class ConfigError(UserError):
    """A user's config mistake; the message says which key and what to do."""


def resolve(
    model: type[BaseModel], config_file: str | None, overrides: dict[str, str], base: dict[str, Any] | None = None
) -> BaseModel:
    """base (built-in defaults of an entry point) < YAML file < command-line options."""
    data: dict[str, Any] = dict(base or {})
    origin = "the built-in defaults"
    if config_file:
        data = _merge(data, _load_yaml(config_file))
        origin = config_file
    for dotted, text in overrides.items():
        _set(data, dotted.split("."), _parse_value(model, dotted, text))
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(_explain(error, model, origin, overrides)) from None


def to_yaml(config: BaseModel) -> str:
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def _load_yaml(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text()
    except OSError as error:
        raise ConfigError(f"config file {path}: cannot be read ({error.strerror})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of option names to values")
    return data


def _parse_value(model: type[BaseModel], dotted: str, text: str) -> Any:
    annotation = _field_annotation(model, dotted.split("."))
    if annotation is not None and _allows_str_only(annotation):
        return None if text in ("", "null", "~") and _optional(annotation) else text
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _explain(error: ValidationError, model: type[BaseModel], origin: str, overrides: dict[str, str]) -> str:
    lines = []
    for problem in error.errors():
        loc = ".".join(str(part) for part in problem["loc"])
        where = f"--{loc}" if loc in overrides else origin
        if problem["type"] == "extra_forbidden":
            known = _known_keys(model, [str(p) for p in problem["loc"][:-1]])
            guess = difflib.get_close_matches(str(problem["loc"][-1]), known, n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else f"; known keys here: {', '.join(known)}"
            lines.append(f"  {loc}: unknown key (in {where}){hint}")
        elif problem["type"] == "missing":
            lines.append(f"  {loc}: required; set it in the config file or with --{loc}")
        else:
            lines.append(f"  {loc} = {problem.get('input')!r} (in {where}): {problem['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)


def nested_model(annotation: Any) -> type[BaseModel] | None:
    """The model a field holds, itself or optional; a list of models is one YAML option."""
    if not (is_union(annotation) or isinstance(annotation, type)):
        return None
    for candidate in (annotation, *typing.get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def _field_annotation(model: type[BaseModel], path: list[str]) -> Any:
    current: Any = model
    for part in path:
        nested = (
            nested_model(current) if not (isinstance(current, type) and issubclass(current, BaseModel)) else current
        )
        if nested is None or part not in nested.model_fields:
            return None
        current = nested.model_fields[part].annotation
    return current


def _known_keys(model: type[BaseModel], path: list[str]) -> list[str]:
    current: Any = model
    for part in path:
        if part.isdigit():
            continue
        annotation = _field_annotation(current, [part]) if isinstance(current, type) else None
        inner = nested_model(annotation) or nested_model(_list_item(annotation))
        if inner is None:
            return []
        current = inner
    return list(current.model_fields)


def _list_item(annotation: Any) -> Any:
    args = typing.get_args(annotation)
    return args[0] if args else None


def _optional(annotation: Any) -> bool:
    return type(None) in typing.get_args(annotation)


def _allows_str_only(annotation: Any) -> bool:
    args = [a for a in typing.get_args(annotation) if a is not type(None)] if is_union(annotation) else [annotation]
    return args == [str]


def is_union(annotation: Any) -> bool:
    return typing.get_origin(annotation) in (typing.Union, types.UnionType)


def _merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _set(data: dict[str, Any], path: list[str], value: Any) -> None:
    for part in path[:-1]:
        child = data.get(part)
        if not isinstance(child, dict):
            child = data[part] = {}
        data = child
    data[path[-1]] = value
