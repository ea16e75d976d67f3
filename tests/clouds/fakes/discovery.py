"""Request schemas for the GCP fake, read from the discovery documents google-api-python-client ships.

Accepted fields, their JSON types, enums, patterns and the fields a method requires
(`annotations.required`) come from Google's own description of the API, so the fake accepts what GCP
accepts and refuses the rest: a field misspelt, an enum value GCP does not know, a name that does not
match GCP's pattern. Nested messages are expanded lazily (the documents are recursive).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from .schema import F, one_of


@cache
def document(api: str) -> dict[str, Any]:
    """`api`: "compute.v1", "iam.v1", "cloudresourcemanager.v3", "storage.v1"."""
    import googleapiclient

    path = Path(googleapiclient.__file__).parent / "discovery_cache" / "documents" / f"{api}.json"
    return dict(json.loads(path.read_text()))


def _type_check(kind: str, fmt: str | None) -> Any:
    def check(v: Any) -> str | None:
        if kind == "string":
            ok = isinstance(v, str)
        elif kind == "boolean":
            ok = isinstance(v, bool)
        elif kind == "integer":  # int64 travels as a string in JSON
            ok = (isinstance(v, int) and not isinstance(v, bool)) or (
                isinstance(v, str) and v.lstrip("-").isdigit()
            )
        elif kind == "number":
            ok = isinstance(v, int | float) and not isinstance(v, bool)
        else:
            ok = True
        return None if ok else f"{v!r} is not a valid {kind}{f' ({fmt})' if fmt else ''}"

    return check


def _all(*checks: Any) -> Any:
    def check(v: Any) -> str | None:
        for c in checks:
            problem = c(v)
            if problem:
                return str(problem)
        return None

    return check


def _pattern(regex: str) -> Any:
    compiled = re.compile(regex)
    return lambda v: (
        None if isinstance(v, str) and compiled.fullmatch(v) else f"{v!r} must be a match of regex '{regex}'"
    )


def _scalar(prop: Mapping[str, Any]) -> Any:
    checks = [_type_check(prop.get("type", ""), prop.get("format"))]
    if "enum" in prop:
        checks.append(one_of(*prop["enum"]))
    if "pattern" in prop:
        checks.append(_pattern(prop["pattern"]))
    return _all(*checks)


def _list_check(item: Mapping[str, Any]) -> Any:
    inner = _scalar(item)

    def check(v: Any) -> str | None:
        if not isinstance(v, list):
            return "must be a list"
        for x in v:
            problem = inner(x)
            if problem:
                return str(problem)
        return None

    return check


def _map_check(value: Mapping[str, Any]) -> Any:
    inner = _scalar(value) if "$ref" not in value else (lambda v: None)

    def check(v: Any) -> str | None:
        if not isinstance(v, dict):
            return "must be a map"
        for x in v.values():
            problem = inner(x)
            if problem:
                return str(problem)
        return None

    return check


class Fields(Mapping[str, F]):
    """The fields of one message of a discovery document, built on first use (they nest recursively)."""

    def __init__(self, api: str, schema: Mapping[str, Any], method: str | None) -> None:
        self.api = api
        self.schema = schema
        self.method = method
        self._built: dict[str, F] | None = None

    def _build(self) -> dict[str, F]:
        if self._built is None:
            self._built = {k: self._field(p) for k, p in self.schema.get("properties", {}).items()}
        return self._built

    def _field(self, prop: Mapping[str, Any]) -> F:
        required = self.method is not None and self.method in prop.get("annotations", {}).get("required", [])
        if "$ref" in prop:
            return F(required=required, fields=message(self.api, prop["$ref"], self.method))
        kind = prop.get("type")
        if kind == "object" and "properties" in prop:
            return F(required=required, fields=Fields(self.api, prop, self.method))
        if kind == "object":  # a map (labels): free keys
            return F(required=required, check=_map_check(prop.get("additionalProperties", {})))
        if kind == "array":
            item = prop.get("items", {})
            if "$ref" in item:
                return F(required=required, items=message(self.api, item["$ref"], self.method))
            if item.get("type") == "object" and "properties" in item:
                return F(required=required, items=Fields(self.api, item, self.method))
            return F(required=required, check=_list_check(item))
        return F(required=required, check=_scalar(prop))

    def __getitem__(self, key: str) -> F:
        return self._build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())


@cache
def message(api: str, name: str, method: str | None = None) -> Fields:
    """The fields of message `name` in `api`, with those `method` requires marked required."""
    return Fields(api, document(api)["schemas"][name], method)


def schema(
    api: str,
    name: str,
    method: str | None = None,
    *,
    require: tuple[str, ...] = (),
    optional: tuple[str, ...] = (),
    checks: Mapping[str, Any] | None = None,
) -> dict[str, F]:
    """`message` as a plain dict, with what the service does though its document does not say so:
    `require`s, `optional`s (a required field a newer one replaces), `checks` layered on top of a
    field's own (label formats)."""
    out = dict(message(api, name, method))
    for key in (*require, *optional):
        base = out[key]
        out[key] = F(required=key in require, fields=base.fields, items=base.items, check=base.check)
    for key, extra in (checks or {}).items():
        base = out[key]
        combined = _all(base.check, extra) if base.check else extra
        out[key] = F(required=base.required, fields=base.fields, items=base.items, check=combined)
    return out
