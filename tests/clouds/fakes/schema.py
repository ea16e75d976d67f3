"""Payload checks as strict as the real APIs: unknown fields, missing required ones, bad values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

Check = Callable[[Any], "str | None"]  # returns what is wrong, or None


@dataclass(frozen=True)
class F:
    """One field: `fields` for an object, `items` for a list of objects, `check` for a value;
    `readonly`: accepted (clients send back what they read) and ignored."""

    required: bool = False
    fields: Mapping[str, F] | None = None
    items: Mapping[str, F] | None = None
    check: Check | None = None  # for a map of free keys (labels, tags) too
    readonly: bool = False


def require(fields: Mapping[str, F], *paths: str) -> dict[str, F]:
    """`fields` with the (dotted) `paths` required: what a service requires beyond its description."""
    out = dict(fields)
    for path in paths:
        key, _, rest = path.partition(".")
        base = out[key]
        if rest:
            assert base.fields is not None, path
            out[key] = F(True, require(base.fields, rest), base.items, base.check, base.readonly)
        else:
            out[key] = F(True, base.fields, base.items, base.check, base.readonly)
    return out


def strip_readonly(body: Any, fields: Mapping[str, F]) -> Any:
    """`body` without what is read-only in it (the service ignores those)."""
    if not isinstance(body, Mapping):
        return body
    out = {}
    for key, value in body.items():
        spec = fields.get(key)
        if spec is None or spec.readonly:
            continue
        if spec.fields is not None:
            value = strip_readonly(value, spec.fields)
        elif spec.items is not None and isinstance(value, list):
            value = [strip_readonly(v, spec.items) for v in value]
        out[key] = value
    return out


@dataclass(frozen=True)
class Problem:
    kind: str  # "unknown" | "missing" | "invalid"
    path: str
    detail: str = ""


def find_problem(body: Any, fields: Mapping[str, F], path: str = "") -> Problem | None:
    """The first thing wrong with `body` against `fields`, or None."""
    if not isinstance(body, Mapping):
        return Problem("invalid", path or "body", "must be an object")
    for key in body:
        if key not in fields:
            return Problem("unknown", f"{path}.{key}" if path else key)
    for key, spec in fields.items():
        where = f"{path}.{key}" if path else key
        if spec.readonly:
            continue
        if key not in body or body[key] in (None, "", [], {}):
            if spec.required:
                return Problem("missing", where)
            continue
        problem = _check_value(body[key], spec, where)
        if problem:
            return problem
    return None


def _check_value(value: Any, spec: F, where: str) -> Problem | None:
    if spec.fields is not None:
        problem = find_problem(value, spec.fields, where)
        if problem:
            return problem
    if spec.items is not None:
        if not isinstance(value, list):
            return Problem("invalid", where, "must be a list")
        for i, item in enumerate(value):
            problem = find_problem(item, spec.items, f"{where}[{i}]")
            if problem:
                return problem
    if spec.check is not None:
        detail = spec.check(value)
        if detail:
            return Problem("invalid", where, detail)
    return None


def one_of(*allowed: str) -> Check:
    return lambda v: None if v in allowed else f"{v!r} is not one of {', '.join(allowed)}"


def is_list_of_str(v: Any) -> str | None:
    return None if isinstance(v, list) and all(isinstance(x, str) for x in v) else "must be a list of strings"
