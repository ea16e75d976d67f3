"""What the `ClusterForm` holds, as plain values, and how it becomes a validated `ClusterConfig`.

Validation is the config layer's own (`load_config`): the form only turns its fields into the mapping a
YAML file would hold, and sorts the resulting issues by key path so each field can show its own.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError

if TYPE_CHECKING:
    from ..config.schema import ClusterConfig

# Per provider: which config keys the form's "region" and "account" fields fill.
PROVIDER_KEYS: dict[str, tuple[str | None, str | None]] = {
    "virtual": (None, None),
    "aws": ("region", None),
    "gcp": ("region", "project_id"),
    "azure": ("location", "subscription_id"),
}


@dataclass(frozen=True)
class WorkerType:
    name: str
    min_workers: int
    max_workers: int


@dataclass(frozen=True)
class FormValues:
    cluster_name: str = ""
    provider: str = "virtual"
    region: str = ""
    account: str = ""
    head_type: str = "head"
    workers: tuple[WorkerType, ...] = (WorkerType("worker", 2, 4),)
    runtimes: tuple[str, ...] = ()

    def provider_section(self) -> dict[str, Any]:
        section: dict[str, Any] = {"type": self.provider}
        region_key, account_key = PROVIDER_KEYS.get(self.provider, (None, None))
        if region_key and self.region.strip():
            section[region_key] = self.region.strip()
        if account_key and self.account.strip():
            section[account_key] = self.account.strip()
        return section

    def to_mapping(self) -> dict[str, Any]:
        """The config as a YAML file would hold it."""
        node_types: dict[str, Any] = {self.head_type: {}}
        for w in self.workers:
            node_types[w.name] = {"min_workers": w.min_workers, "max_workers": w.max_workers}
        mapping: dict[str, Any] = {
            "cluster_name": self.cluster_name,
            "provider": self.provider_section(),
            "head_node_type": self.head_type,
            "available_node_types": node_types,
        }
        if self.runtimes:
            mapping["runtime"] = {"types": list(self.runtimes)}
        return mapping


@dataclass(frozen=True)
class Validation:
    config: ClusterConfig | None
    errors: dict[str, str]  # dotted key path -> message ("" for the config as a whole)


def _form_errors(values: FormValues) -> dict[str, str]:
    """What the mapping cannot show: worker rows that collide (a mapping keeps only one)."""
    errors: dict[str, str] = {}
    seen = {values.head_type}
    for w in values.workers:
        key = f"available_node_types.{w.name}"
        if not w.name.strip():
            errors["available_node_types"] = "every node type needs a name"
        elif w.name in seen:
            other = "the head's type" if w.name == values.head_type else "another worker type"
            errors[key] = f"name {w.name!r} is already used by {other}"
        seen.add(w.name)
    return errors


def validate(values: FormValues) -> Validation:
    """The config, or every problem by key path (rows that collide are left out of the schema check)."""
    from ..config import load_config

    errors = _form_errors(values)
    usable = tuple(
        w for w in values.workers if w.name.strip() and f"available_node_types.{w.name}" not in errors
    )
    try:
        config = load_config(replace(values, workers=usable).to_mapping())
    except ConfigError as exc:
        issues = getattr(exc, "issues", None) or [exc]
        return Validation(None, {issue.path: issue.message for issue in issues} | errors)
    return Validation(None if errors else config, errors)


def from_config(config: ClusterConfig, cluster_name: str) -> FormValues:
    """Field values showing `config` (a template's), under `cluster_name`."""
    provider = config.provider.model_dump()
    region_key, account_key = PROVIDER_KEYS.get(config.provider.type, (None, None))
    workers = tuple(
        WorkerType(name, nt.min_workers, nt.effective_max) for name, nt in config.worker_types().items()
    )
    return FormValues(
        cluster_name=cluster_name,
        provider=config.provider.type,
        region=str(provider.get(region_key) or "") if region_key else "",
        account=str(provider.get(account_key) or "") if account_key else "",
        head_type=config.head_node_type,
        workers=workers,
        runtimes=tuple(config.runtime.types),
    )


def template_values(template: str, cluster_name: str) -> FormValues:
    """Field values prefilled from a shipped template (`from: NAME`)."""
    from ..config import load_config

    config = load_config({"from": template, "cluster_name": cluster_name or "preview"})
    return from_config(config, cluster_name)
