"""Request schemas for the Azure fake, read from the management SDKs' own models.

The accepted fields (wire names), what is required, what is read-only (accepted, ignored), enums and
JSON types come from the models the installed SDKs build requests from, in both of their generations:
TypeSpec models (`rest_field`: rest names, visibility, annotations; network, compute, storage,
resources) and msrest models (`_attribute_map` with flattened keys, `_validation`; msi, authorization).
So the fake accepts what the SDKs can send and ARM accepts, and refuses what neither knows. Nested models
expand lazily (they are recursive). The api-versions accepted per resource provider are those the
installed SDKs send (`api_versions`).
"""

from __future__ import annotations

import enum
import importlib
import re
import sys
import types
import typing
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from .schema import F, require

_PRIMITIVE = {str: "string", int: "integer", float: "number", bool: "boolean"}
# Enums whose values ARM checks against a catalogue (sizes per region), not against the SDK's list.
OPEN_ENUMS = {"VirtualMachineSizeTypes"}


def _type_check(kind: str) -> Any:
    def check(v: Any) -> str | None:
        ok = {
            "string": isinstance(v, str),
            "integer": isinstance(v, int) and not isinstance(v, bool),
            "number": isinstance(v, int | float) and not isinstance(v, bool),
            "boolean": isinstance(v, bool),
        }.get(kind, True)
        return None if ok else f"{v!r} is not a valid {kind}"

    return check


def _enum_check(values: list[str]) -> Any:
    allowed = {v.lower() for v in values}  # ARM compares enum values case-insensitively
    return lambda v: None if str(v).lower() in allowed else f"{v!r} is not one of {', '.join(values)}"


def _list_check(inner: Any) -> Any:
    def check(v: Any) -> str | None:
        if not isinstance(v, list):
            return "must be a list"
        return next((str(p) for x in v if (p := inner(x))), None)

    return check


def _map_check(inner: Any) -> Any:
    def check(v: Any) -> str | None:
        if not isinstance(v, dict):
            return "must be a map"
        return next((str(p) for x in v.values() if (p := inner(x))), None)

    return check


def _anything(v: Any) -> None:
    return None


# -- TypeSpec models (rest_field) ------------------------------------------------------------------------


def _resolve(ref: Any, package: str) -> Any:
    if isinstance(ref, typing.ForwardRef):
        name = ref.__forward_arg__.rsplit(".", 1)[-1]
        return getattr(importlib.import_module(package), name)
    if isinstance(ref, str):
        return getattr(importlib.import_module(package), ref.rsplit(".", 1)[-1])
    return ref


def issubclass_model(cls: Any) -> bool:
    return any(b.__name__ == "Model" and "model_base" in b.__module__ for b in getattr(cls, "__mro__", ()))


def _annotated(annotation: Any, package: str) -> tuple[bool, F]:
    """(optional, the field) for a TypeSpec annotation."""
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        optional = type(None) in args
        rest = [_resolve(a, package) for a in args if a is not type(None)]
        enums = [a for a in rest if isinstance(a, type) and issubclass(a, enum.Enum)]
        if enums and enums[0].__name__ in OPEN_ENUMS:
            return optional, F(check=_type_check("string"))
        if enums:  # Union[str, "_models.Kind"]: an enum (extensible in the SDK, checked by ARM)
            return optional, F(check=_enum_check([e.value for e in enums[0]]))
        if len(rest) == 1:
            return optional or _annotated(rest[0], package)[0], _annotated(rest[0], package)[1]
        return optional, F()
    annotation = _resolve(annotation, package)
    if origin is list:
        (item,) = args
        item = _resolve(item, package)
        if issubclass_model(item):
            return False, F(items=model_fields(item))
        return False, F(check=_list_check(_annotated(item, package)[1].check or _anything))
    if origin is dict:
        value = _resolve(args[1], package)
        return False, F(
            check=_map_check(_annotated(value, package)[1].check or _anything)
            if not issubclass_model(value)
            else _map_check(_anything)
        )
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return False, F(check=_enum_check([e.value for e in annotation]))
    if issubclass_model(annotation):
        return False, F(fields=model_fields(annotation))
    if annotation in _PRIMITIVE:
        return False, F(check=_type_check(_PRIMITIVE[annotation]))
    return False, F()  # datetimes, Any: accepted as they come


def _typespec_fields(cls: type) -> dict[str, F]:
    cls.__new__(cls)  # the SDK computes its field table on first instantiation
    package = cls.__module__.rsplit(".", 1)[0]
    annotations: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        annotations.update(getattr(klass, "__annotations__", {}))
    out: dict[str, F] = {}
    for attr, rf in cls._attr_to_rest_field.items():  # type: ignore[attr-defined]
        if rf._visibility == ["read"]:
            out[rf._rest_name] = F(readonly=True)
            continue
        optional, field = _annotated(annotations.get(attr, Any), package)
        out[rf._rest_name] = F(
            required=not optional and attr in annotations,
            fields=field.fields,
            items=field.items,
            check=field.check,
        )
    return out


# -- msrest models (_attribute_map) -----------------------------------------------------------------------

_MSREST = {"str": "string", "int": "integer", "long": "integer", "float": "number", "bool": "boolean"}


def _msrest_field(type_name: str, module: Any) -> F:
    if type_name.startswith("[") and type_name.endswith("]"):
        inner = _msrest_field(type_name[1:-1], module)
        return (
            F(items=inner.fields)
            if inner.fields is not None
            else F(check=_list_check(inner.check or _anything))
        )
    if type_name.startswith("{") and type_name.endswith("}"):
        inner = _msrest_field(type_name[1:-1], module)
        return F(
            check=_map_check(inner.check or _anything) if inner.fields is None else _map_check(_anything)
        )
    if type_name in _MSREST:
        return F(check=_type_check(_MSREST[type_name]))
    found = getattr(module, type_name, None)
    if isinstance(found, type) and hasattr(found, "_attribute_map"):
        return F(fields=model_fields(found))
    return F()  # iso-8601, object: accepted as they come


def _msrest_fields(cls: type) -> dict[str, F]:
    module = sys.modules[cls.__module__]
    validation: dict[str, Any] = getattr(cls, "_validation", {})
    tree: dict[str, Any] = {}
    for attr, info in cls._attribute_map.items():  # type: ignore[attr-defined]
        parts = [p.replace("\\.", ".") for p in re.split(r"(?<!\\)\.", info["key"])]
        rules = validation.get(attr, {})
        leaf = F(readonly=True) if rules.get("readonly") else _msrest_field(info["type"], module)
        if rules.get("required"):
            leaf = F(required=True, fields=leaf.fields, items=leaf.items, check=leaf.check)
        node = tree
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = leaf
    return _flatten(tree)


def _flatten(tree: dict[str, Any]) -> dict[str, F]:
    """Nested dicts of flattened keys ("properties.principalId") as fields; a container is required
    when something in it is."""
    out: dict[str, F] = {}
    for key, node in tree.items():
        if isinstance(node, F):
            out[key] = node
        else:
            inner = _flatten(node)
            out[key] = F(required=any(f.required for f in inner.values()), fields=inner)
    return out


class ModelFields(Mapping[str, F]):
    def __init__(self, cls: type) -> None:
        self.cls = cls
        self._built: dict[str, F] | None = None

    def _build(self) -> dict[str, F]:
        if self._built is None:
            self._built = (
                _msrest_fields(self.cls)
                if hasattr(self.cls, "_attribute_map")
                else _typespec_fields(self.cls)
            )
        return self._built

    def __getitem__(self, key: str) -> F:
        return self._build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())


@cache
def model_fields(cls: type) -> ModelFields:
    return ModelFields(cls)


def model(
    package: str, name: str, *, required: tuple[str, ...] = (), checks: Mapping[str, Any] | None = None
) -> dict[str, F]:
    """The request fields of SDK model `name` (in `package`, e.g. "azure.mgmt.network.models"), with
    what ARM also requires (dotted paths) or checks though the model does not say so."""
    out = require(model_fields(getattr(importlib.import_module(package), name)), *required)
    for key, extra in (checks or {}).items():
        base = out[key]
        out[key] = F(required=base.required, fields=base.fields, items=base.items, check=extra)
    return out


# -- api-versions ---------------------------------------------------------------------------------------

_SDK_NAMESPACES = {
    "network": "Microsoft.Network",
    "compute": "Microsoft.Compute",
    "storage": "Microsoft.Storage",
    "resource": "Microsoft.Resources",
    "msi": "Microsoft.ManagedIdentity",
    "authorization": "Microsoft.Authorization",
}
_VERSION = re.compile(r'"api-version",\s*"(\d{4}-\d{2}-\d{2}(?:-preview)?)"')
_VERSION_DIR = re.compile(r"^v(\d{4})_(\d{2})_(\d{2})(_preview)?$")


@cache
def api_versions() -> dict[str, frozenset[str]]:
    """Resource provider namespace (lowercase) -> the api-versions the installed SDK sends to it."""
    import azure.mgmt

    out: dict[str, frozenset[str]] = {}
    for sdk, namespace in _SDK_NAMESPACES.items():
        root = Path(next(iter(azure.mgmt.__path__))) / sdk
        found = set(_VERSION.findall("".join(p.read_text() for p in root.rglob("_operations.py"))))
        found |= set(_VERSION.findall("".join(p.read_text() for p in root.rglob("*_operations.py"))))
        for child in root.iterdir():
            m = _VERSION_DIR.match(child.name)
            if m and child.is_dir():
                found.add(f"{m.group(1)}-{m.group(2)}-{m.group(3)}{'-preview' if m.group(4) else ''}")
        out[namespace.lower()] = frozenset(found)
    return out
