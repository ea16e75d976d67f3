"""Turn pydantic's validation errors into one short line per problem, named by its dotted key path."""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from ..errors import ConfigError
from .schema import CLOUD_ID, NAME_PATTERN, NODE_TYPE_PATTERN, USER_PATTERN, ClusterConfig

_PLAIN_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")
# A model validator may name the field it judges: "max_workers: must be >= min_workers (2)".
# "run_options[2]: ..." names an entry of a list field.
_KEYED_MESSAGE = re.compile(r"^([A-Za-z_][A-Za-z0-9_-]*)((?:\[\d+\])*): (.+)$", re.DOTALL)
# Keys the loader handles itself, valid at the top level besides the model's fields.
LOADER_KEYS = ("from",)


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config: where (dotted key path) and what."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigValidationError(ConfigError):
    """A config failed validation; the message is the first issue, `issues` holds them all."""

    def __init__(self, issues: Sequence[ConfigIssue]) -> None:
        self.issues = tuple(issues)
        first = self.issues[0]
        super().__init__(first.path, first.message)


def format_path(parts: Sequence[str | int]) -> str:
    """``("file_mounts", "/data")`` -> ``file_mounts."/data"``; list indices as ``[2]``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        key = part if _PLAIN_KEY.match(part) else '"' + part.replace('"', '\\"') + '"'
        out += f".{key}" if out else key
    return out


def describe(value: Any) -> str:
    """How a YAML value reads to a user: ``a string ('two')``."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def did_you_mean(word: str, choices: Sequence[str], what: str = "valid keys") -> str:
    """``did you mean 'x'?`` for a close choice, else the list of choices."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return f"{what}: {', '.join(sorted(choices))}" if choices else f"no {what}"


def _unwrap(annotation: Any) -> Any:
    """Strip ``Annotated`` and ``Optional`` so the walk sees the real container or model."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, types.UnionType):
        members = [a for a in get_args(annotation) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return annotation


def _union_models(annotation: Any) -> dict[str, type[BaseModel]]:
    """For a discriminated union of models: tag value -> model; empty for anything else."""
    if get_origin(annotation) not in (Union, types.UnionType):
        return {}
    tagged: dict[str, type[BaseModel]] = {}
    for member in get_args(annotation):
        if (
            not (isinstance(member, type) and issubclass(member, BaseModel))
            or "type" not in member.model_fields
        ):
            return {}
        tag = member.model_fields["type"].annotation
        if get_origin(tag) is not Literal:
            return {}
        tagged[str(get_args(tag)[0])] = member
    return tagged


def walk(loc: Sequence[str | int]) -> tuple[list[str | int], type[BaseModel] | None]:
    """Follow a pydantic `loc` through the schema: the user's key path (union tags dropped) and the
    model that holds the last key (None when the path leaves the models, e.g. into a dict's values)."""
    node: Any = ClusterConfig
    parts: list[str | int] = []
    holder: type[BaseModel] | None = None
    index = 0
    while index < len(loc):
        item = loc[index]
        annotation = _unwrap(node)
        tagged = _union_models(annotation)
        if tagged:
            # pydantic inserts the discriminator's value: not a key the user wrote.
            node = tagged.get(str(item))
            index += 1
            continue
        parts.append(item)
        holder = None
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            holder = annotation
            field = annotation.model_fields.get(str(item))
            node = field.annotation if field else None
        elif get_origin(annotation) is dict:
            node = get_args(annotation)[1]
        elif get_origin(annotation) is list:
            node = get_args(annotation)[0]
        else:
            node = None
        index += 1
    return parts, holder


def valid_keys(model: type[BaseModel]) -> list[str]:
    keys = list(model.model_fields)
    return [*keys, *LOADER_KEYS] if model is ClusterConfig else keys


_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "finite_number": "a finite number",
}

_NAME_RULE = (
    "must start with a lowercase letter and hold only lowercase letters, digits and '-' "
    "(at most 40 characters)"
)

_PATTERN_RULES = {
    NAME_PATTERN: _NAME_RULE,
    NODE_TYPE_PATTERN: "must start with a letter or digit and hold only letters, digits, '_', '.' and '-' "
    "(at most 64 characters)",
    USER_PATTERN: "must be a user name: a letter or '_', then letters, digits, '_', '.' or '-' "
    "(at most 32 characters)",
    CLOUD_ID: "must be a plain identifier: letters, digits and . _ ( ) - (at most 90 characters)",
    r"^https?://[^\s]+$": "must be an http:// or https:// URL",
}


def _message(
    error: Any, parts: list[str | int], holder: type[BaseModel] | None
) -> tuple[list[str | int], str]:
    """One short line for a pydantic error dict; may extend the path (keyed validator messages)."""
    kind: str = error["type"]
    value = error.get("input")
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(parts[-1])
        choices = valid_keys(holder) if holder else []
        return parts, f"unknown key {key!r}; {did_you_mean(key, choices)}"
    if kind == "missing":
        return parts, "required key is missing"
    if kind in _EXPECTED:
        return parts, f"expected {_EXPECTED[kind]}, got {describe(value)}"
    if kind == "string_pattern_mismatch":
        rule = _PATTERN_RULES.get(str(ctx.get("pattern")), f"must match {ctx.get('pattern')}")
        return parts, f"{rule}, got {value!r}"
    if kind == "union_tag_invalid":
        return [*parts, "type"], f"unknown type {ctx.get('tag')!r} (known: {ctx.get('expected_tags')})"
    if kind == "union_tag_not_found":
        return [*parts, "type"], "required key is missing"
    bounds = {
        "greater_than_equal": ">=",
        "greater_than": ">",
        "less_than_equal": "<=",
        "less_than": "<",
    }
    if kind in bounds:
        limit = next(iter(ctx.values()), "?")
        return parts, f"must be {bounds[kind]} {limit:g}, got {value!r}"
    if kind in ("string_too_long", "too_long"):
        unit = "characters" if kind == "string_too_long" else "entries"
        return parts, f"at most {ctx.get('max_length')} {unit} allowed"
    if kind in ("string_too_short", "too_short"):
        unit = "character" if kind == "string_too_short" else "entry"
        return parts, f"at least {ctx.get('min_length')} {unit} needed"
    if kind == "value_error":
        text = str(ctx.get("error", error["msg"]))
        keyed = _KEYED_MESSAGE.match(text)
        if keyed:
            indexes = [int(i) for i in re.findall(r"\d+", keyed.group(2))]
            return [*parts, keyed.group(1), *indexes], keyed.group(3)
        return parts, text
    return parts, str(error["msg"])


def translate(exc: ValidationError) -> ConfigValidationError:
    """All of pydantic's errors (from validating a ClusterConfig) as issues with user-facing paths."""
    issues = []
    for error in exc.errors():
        # A bad mapping key: pydantic appends "[key]" to the key's own path.
        parts, holder = walk([p for p in error["loc"] if p != "[key]"])
        parts, message = _message(error, parts, holder)
        issues.append(ConfigIssue(format_path(parts), message))
    return ConfigValidationError(issues)
