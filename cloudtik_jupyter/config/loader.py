"""Load a cluster config: read YAML, resolve ``from:`` templates, validate, and check local files.

Nothing here has a side effect: a bad config raises `ConfigError` (naming the key path) before anything
is created anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..errors import ConfigError
from .issues import ConfigIssue, ConfigValidationError, did_you_mean, format_path, translate
from .limits import MAX_CONFIG_VALUES, MAX_FROM_CHAIN, MAX_NESTING, MAX_STRING
from .schema import ClusterConfig
from .yaml_io import dump_yaml, parse_yaml, read_config_text

TEMPLATES_DIR = Path(__file__).parent / "templates"
YAML_SUFFIXES = (".yaml", ".yml")


def shipped_templates() -> list[str]:
    """Names usable as ``from: NAME``."""
    return sorted(p.stem for p in TEMPLATES_DIR.glob("*.yaml"))


# -- reading ------------------------------------------------------------------------------------------


class _Budget:
    """How many more values a config may hold (a mapping from Python may share or even contain itself)."""

    def __init__(self) -> None:
        self.left = MAX_CONFIG_VALUES

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise ConfigError("", f"config holds more than {MAX_CONFIG_VALUES} values; refused")


def _plain(value: Any, path: tuple[str | int, ...] = (), budget: _Budget | None = None) -> Any:
    """A deep copy made of dicts and lists only (the caller's mapping is never modified), bounded in
    size, nesting depth and string length, so no input can exhaust memory or the stack later."""
    budget = budget or _Budget()
    budget.spend()
    if len(path) > MAX_NESTING:
        raise ConfigError(format_path(path[:MAX_NESTING]), f"nested more than {MAX_NESTING} levels deep")
    if isinstance(value, Mapping):
        return {k: _plain(v, (*path, str(k)), budget) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v, (*path, i), budget) for i, v in enumerate(value)]
    if isinstance(value, (str, bytes)) and len(value) > MAX_STRING:
        raise ConfigError(format_path(path), f"longer than {MAX_STRING} characters ({len(value)}); refused")
    return value


def _as_mapping(data: Any, origin: str) -> dict[Any, Any]:
    where = f" ({origin})" if origin else ""
    if data is None:
        raise ConfigError("", f"config is empty{where}")
    if not isinstance(data, Mapping):
        raise ConfigError("", f"config must be a mapping of keys to values, got {_kind(data)}{where}")
    result: dict[Any, Any] = _plain(data)
    return result


def _kind(value: Any) -> str:
    return "a list" if isinstance(value, list) else f"a {type(value).__name__} ({value!r:.40})"


def _read_config_file(path: Path) -> dict[Any, Any]:
    if path.suffix not in YAML_SUFFIXES and path.is_file():
        raise ConfigError("", f"not a YAML config (expected a .yaml or .yml file): {path}")
    return _as_mapping(parse_yaml(read_config_text(path), str(path)), str(path))


# -- paths: relative to the file that wrote them ---------------------------------------------------------


def _local_path(value: Any, base_dir: Path) -> Any:
    if not isinstance(value, str) or not value:
        return value  # wrong types are the schema's to report
    path = Path(value).expanduser()
    return os.path.normpath(path if path.is_absolute() else base_dir / path)


def _absolutize(data: dict[Any, Any], base_dir: Path) -> dict[Any, Any]:
    """Local paths made absolute against `base_dir`, so they survive merging with files elsewhere and
    the resolved config works from any directory (the updater and the saved record use them as is)."""
    mounts = data.get("file_mounts")
    if isinstance(mounts, dict):
        data["file_mounts"] = {remote: _local_path(local, base_dir) for remote, local in mounts.items()}
    auth = data.get("auth")
    if isinstance(auth, dict) and "ssh_private_key" in auth:
        auth["ssh_private_key"] = _local_path(auth["ssh_private_key"], base_dir)
    return data


# -- `from:` inheritance ---------------------------------------------------------------------------------


def deep_merge(base: Mapping[Any, Any], override: Mapping[Any, Any]) -> dict[Any, Any]:
    """Mappings merge key by key; lists and scalars in `override` replace. A mapping whose ``type``
    changes (provider: virtual -> aws) is replaced whole: the old type's keys mean nothing to the new."""
    merged = dict(base)
    for key, value in override.items():
        old = merged.get(key)
        if (
            isinstance(old, Mapping)
            and isinstance(value, Mapping)
            and old.get("type") == value.get("type", old.get("type"))
        ):
            merged[key] = deep_merge(old, value)
        else:
            merged[key] = value
    return merged


@dataclass(frozen=True)
class _Source:
    """Where a layer of config came from: its label in messages, its identity for cycle detection and
    the directory its relative paths (and relative ``from:``) are resolved against."""

    label: str
    identity: str
    base_dir: Path


def _parent_source(ref: Any, child: _Source) -> tuple[_Source, dict[Any, Any]]:
    if not isinstance(ref, str) or not ref.strip():
        raise ConfigError("from", f"expected a template name or a relative .yaml path, got {ref!r}")
    if "/" in ref or ref.endswith(YAML_SUFFIXES):
        path = Path(ref).expanduser()
        path = Path(os.path.normpath(path if path.is_absolute() else child.base_dir / path))
        if not path.is_file():
            hint = ""
            if Path(ref).stem in shipped_templates() and "/" not in ref:
                hint = f" (shipped templates are named without .yaml: from: {Path(ref).stem})"
            raise ConfigError("from", f"template file not found: {path}{hint}")
        return _Source(str(path), f"file:{path}", path.parent), _read_config_file(path)
    shipped = shipped_templates()
    if ref not in shipped:
        raise ConfigError(
            "from", f"unknown template {ref!r}; {did_you_mean(ref, shipped, 'shipped templates')}"
        )
    path = TEMPLATES_DIR / f"{ref}.yaml"
    text = path.read_text(encoding="utf-8")
    data = _as_mapping(parse_yaml(text, f"template {ref}"), f"template {ref}")
    return _Source(f"template {ref}", f"template:{ref}", TEMPLATES_DIR), data


def _resolve(data: dict[Any, Any], source: _Source, chain: tuple[_Source, ...] = ()) -> dict[Any, Any]:
    """`data` with its ``from:`` chain merged underneath, local paths absolute."""
    chain = (*chain, source)
    if len(chain) > MAX_FROM_CHAIN:
        raise ConfigError("from", f"more than {MAX_FROM_CHAIN} templates on top of each other")
    ref = data.pop("from", None)
    data = _absolutize(data, source.base_dir)
    if ref is None:
        return data
    parent_source, parent = _parent_source(ref, source)
    if any(s.identity == parent_source.identity for s in chain):
        cycle = " -> ".join(s.label for s in (*chain, parent_source))
        raise ConfigError("from", f"templates form a cycle: {cycle}")
    return deep_merge(_resolve(parent, parent_source, chain), data)


# -- checks the schema cannot make -----------------------------------------------------------------------


def _check_provider_type(data: Mapping[Any, Any]) -> None:
    provider = data.get("provider")
    if not isinstance(provider, Mapping):
        return  # absent (the default, virtual) or mistyped: the schema says so
    kind = provider.get("type")
    from ..providers import provider_types  # lazily: keep the config package standalone

    known = ", ".join(provider_types())
    if kind is None:
        raise ConfigError("provider.type", f"required key is missing (known: {known})")
    if isinstance(kind, str) and kind not in provider_types():
        raise ConfigError("provider.type", f"unknown provider {kind!r} (known: {known})")


def _fill_empty_node_types(data: dict[Any, Any]) -> None:
    # `head:` with nothing after it reads as null in YAML; it means "all defaults".
    types = data.get("available_node_types")
    if isinstance(types, dict):
        for name, value in types.items():
            if value is None:
                types[name] = {}


def _check_local_files(config: ClusterConfig) -> None:
    issues = [
        ConfigIssue(format_path(["file_mounts", remote]), f"local source not found: {local}")
        for remote, local in config.file_mounts.items()
        if not os.path.exists(local)
    ]
    key = config.auth.ssh_private_key
    problem = _private_key_problem(Path(key).expanduser()) if key is not None else None
    if problem:
        issues.append(ConfigIssue("auth.ssh_private_key", problem))
    if issues:
        raise ConfigValidationError(issues)


MAX_KEY_FILE = 64 * 1024


def _private_key_problem(path: Path) -> str | None:
    """Why `path` cannot be the cluster's SSH key, if it cannot: checked before anything is recorded."""
    if not path.is_file():
        return f"file not found: {path}"
    try:
        info = path.stat()
        if not 0 < info.st_size <= MAX_KEY_FILE:  # /proc files say 0, and some block when read
            return f"{path} is not an SSH private key (expected a PEM or OpenSSH key file)"
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if not head.lstrip().startswith(b"-----BEGIN "):
        return f"{path} is not an SSH private key (expected a PEM or OpenSSH key file)"
    if info.st_mode & 0o077:
        return f"{path} is readable by other users; make it private first: chmod 600 {path}"
    return None


def _build(data: dict[Any, Any], source: _Source, check_files: bool) -> ClusterConfig:
    if "cluster_name" not in data:
        # Required in the user's own config: a template naming clusters would make two configs one cluster.
        raise ConfigError("cluster_name", "required key is missing (name this cluster in your config)")
    merged = _resolve(data, source)
    _check_provider_type(merged)
    _fill_empty_node_types(merged)
    try:
        config = ClusterConfig.model_validate(merged)
    except ValidationError as exc:
        raise translate(exc) from None
    if check_files:
        _check_local_files(config)
    if config.runtime.types:
        from ..runtimes import enabled_runtimes

        enabled_runtimes(config)  # each runtime validates its own section (errors name runtime.<name>.key)
    return config


# -- public API -----------------------------------------------------------------------------------------


def load_config(
    source: str | Path | Mapping[str, Any], *, base_dir: Path | None = None, check_files: bool = True
) -> ClusterConfig:
    """A validated config from a YAML file path or a mapping (as if read from YAML).

    Relative paths (``file_mounts`` sources, ``from: ./x.yaml``) resolve against `base_dir`: by default
    the file's directory, or the current directory for a mapping. `check_files=False` skips checking
    that local files exist (to act on an existing cluster whose local files have since moved).
    """
    if isinstance(source, Mapping):
        origin = _Source("config", "mapping", Path(base_dir or Path.cwd()).absolute())
        return _build(_as_mapping(source, ""), origin, check_files)
    path = Path(source).expanduser().absolute()
    data = _read_config_file(path)
    origin = _Source(str(path), f"file:{path}", Path(base_dir or path.parent).absolute())
    return _build(data, origin, check_files)


def load_config_text(
    yaml_text: str, *, base_dir: Path | None = None, check_files: bool = True
) -> ClusterConfig:
    """A validated config from YAML text (a ``%%cloudtik up`` cell body); paths relative to `base_dir`
    (default: the current directory)."""
    data = _as_mapping(parse_yaml(yaml_text), "")
    origin = _Source("config", "text", Path(base_dir or Path.cwd()).absolute())
    return _build(data, origin, check_files)


def dump_config(config: ClusterConfig) -> str:
    """The resolved config as YAML (templates merged, paths absolute); `load_config` reads it back equal."""
    header = f"# Resolved config of cluster {config.cluster_name!r} (written by cloudtik; templates merged)\n"
    return header + dump_yaml(config.model_dump(mode="json"))
