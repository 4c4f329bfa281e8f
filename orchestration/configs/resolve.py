"""A job's configuration from its layers: built-in defaults, a YAML file, command-line values.

Errors name the key and where it came from (the file, or the option), and for a mistyped key
the key that was probably meant. A value is shown only when it is a plain one of a field not
marked SENSITIVE (a field where a secret may land by mistake is never echoed). A key written
twice in one mapping is an error naming both lines: YAML itself would keep the last silently.
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
from curation.core.strict_model import is_sensitive


class ConfigError(UserError):
    """A user's config mistake; the message says which key and what to do."""


class _DuplicateKey(Exception):
    def __init__(self, key: Any, first_line: int, second_line: int) -> None:
        super().__init__(f"key {key!r} appears twice, on lines {first_line} and {second_line}")


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # `<<: *base` merges on purpose; its keys may be overridden
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, seen[key], line)
                seen[key] = line
            except TypeError:
                continue  # an unhashable key: the constructor below says what is wrong with it
        return super().construct_mapping(node, deep)


def load_yaml_text(text: str, where: str) -> Any:
    """Parse YAML (safe, unique keys); `where` names the file or option in the error."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except _DuplicateKey as error:
        raise ConfigError(f"{where}: {error}; keep one (YAML would keep only the last, silently)") from None


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
        data = load_yaml_text(text, f"config file {path}") or {}
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
        return load_yaml_text(text, f"--{dotted}")
    except yaml.YAMLError:
        return text


def _explain(error: ValidationError, model: type[BaseModel], origin: str, overrides: dict[str, str]) -> str:
    lines = []
    for problem in error.errors():
        loc = ".".join(str(part) for part in problem["loc"])
        # The option that set the value, or one inside the section the error is about.
        given = [key for key in overrides if loc == key or loc.startswith(f"{key}.") or key.startswith(f"{loc}.")]
        where = ", ".join(f"--{key}" for key in sorted(given)) if given else origin
        if problem["type"] == "extra_forbidden":
            known = _known_keys(model, [str(p) for p in problem["loc"][:-1]])
            guess = difflib.get_close_matches(str(problem["loc"][-1]), known, n=1)
            hint = f"; did you mean {guess[0]!r}?" if guess else f"; known keys here: {', '.join(known)}"
            lines.append(f"  {loc}: unknown key (in {where}){hint}")
        elif problem["type"] == "missing":
            lines.append(f"  {loc}: required; set it in the config file or with --{loc}")
        else:
            value = problem.get("input")
            shown = "" if _hidden(model, problem["loc"], value) else f" = {value!r}"
            lines.append(f"  {loc or '(the whole configuration)'}{shown} (in {where}): {problem['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)


def _hidden(model: type[BaseModel], loc: tuple[Any, ...], value: Any) -> bool:
    """Whether an error must not show its value: a whole section (it may hold secrets), or a
    field marked sensitive, or anything inside one."""
    if isinstance(value, (dict, list, tuple, BaseModel)):
        return True
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            current = _list_item(current) if current is not None else None
            continue
        nested = nested_model(current) or nested_model(_list_item(current))
        if nested is None or part not in nested.model_fields:
            return False
        field = nested.model_fields[part]
        if is_sensitive(field):
            return True
        current = field.annotation
    return False


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
