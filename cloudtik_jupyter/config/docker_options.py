"""`docker run` options from a config, parsed as the docker CLI parses them.

Each entry is split like a shell would, then read flag by flag the way docker's flag parser (pflag) does:
``--flag=value`` / ``--flag value``, and clusters of short flags (``-dit``, ``-it``, ``-p8080:80``,
``-e=X=1``), so ``-dit`` cannot hide a ``-d``. Two kinds of options are judged:

- managed: what container mode sets itself (detached, name, network, entrypoint, ...): always refused;
- privilege-raising: what lets the container take over the node (``--privileged``, capabilities,
  devices, host namespaces, host-path binds, weaker ``--security-opt``): refused unless the config says
  ``docker.allow_privileged_options: true``.
"""

from __future__ import annotations

import posixpath
import shlex
from collections.abc import Iterator
from dataclasses import dataclass

# Long flags of `docker run` that take no value (all others take one).
_BOOLEAN_LONG = {
    "detach",
    "disable-content-trust",
    "help",
    "init",
    "interactive",
    "no-healthcheck",
    "oom-kill-disable",
    "privileged",
    "publish-all",
    "quiet",
    "read-only",
    "rm",
    "sig-proxy",
    "tty",
    "use-api-socket",
}
# Short flags: those without a value, and the long name of every short flag.
_BOOLEAN_SHORT = {"d", "i", "t", "P", "q"}
_SHORT = {
    "a": "attach",
    "c": "cpu-shares",
    "d": "detach",
    "e": "env",
    "h": "hostname",
    "i": "interactive",
    "l": "label",
    "m": "memory",
    "P": "publish-all",
    "p": "publish",
    "q": "quiet",
    "t": "tty",
    "u": "user",
    "v": "volume",
    "w": "workdir",
}

_MANAGED = {
    "network": "containers use the node's network (host networking), so services keep its address",
    "net": "containers use the node's network (host networking), so services keep its address",
    "name": "the container's name is derived from the cluster and node",
    "rm": "containers are always removed when they stop",
    "detach": "the container is attached to a keeper process on the node (it must not be detached)",
    "entrypoint": "the container's main process is managed by cloudtik",
    "help": "not a container option",
}
_HOST_NAMESPACES = ("pid", "ipc", "uts", "userns", "cgroupns")
_ALWAYS_PRIVILEGED = {
    "privileged": "gives the container every capability and device of the node",
    "cap-add": "raises the container's capabilities",
    "device": "gives the container a device of the node",
    "device-cgroup-rule": "gives the container devices of the node",
    "gpus": "gives the container devices of the node",
    "volumes-from": "shares another container's mounts",
}
# Host paths a container must not see, even read-only, without the explicit allowance.
_SENSITIVE_HOST_PATHS = (
    "/",
    "/boot",
    "/dev",
    "/proc",
    "/sys",
    "/var/lib/docker",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/run/containerd",
)


@dataclass(frozen=True)
class RunFlag:
    name: str  # the long name, without dashes
    value: str | None  # None for a boolean flag given without a value
    written: str  # as the user wrote it, for messages


def split_option(option: str) -> list[str]:
    try:
        return shlex.split(option)
    except ValueError as exc:
        raise ValueError(f"cannot split {option!r}: {exc}") from None


def parse_run_flags(words: list[str]) -> Iterator[RunFlag]:
    """The flags in `words` as docker reads them; raises ValueError for anything that is not a flag."""
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("--") and len(word) > 2:
            name, eq, value = word[2:].partition("=")
            if eq or name in _BOOLEAN_LONG:
                yield RunFlag(name, value if eq else None, word)
            elif index < len(words):
                yield RunFlag(name, words[index], f"{word} {words[index]}")
                index += 1
            else:
                raise ValueError(f"{word} needs a value")
        elif word.startswith("-") and len(word) > 1:
            chars = word[1:]
            while chars:
                short, chars = chars[0], chars[1:]
                if short not in _SHORT:
                    raise ValueError(f"unknown short option -{short} in {word!r}")
                name = _SHORT[short]
                within = f" (in {word})" if len(word) > 2 else ""
                if short in _BOOLEAN_SHORT:
                    if chars.startswith("="):  # -d=false
                        yield RunFlag(name, chars[1:], f"-{short}{chars}{within}")
                        chars = ""
                    else:
                        yield RunFlag(name, None, f"-{short}{within}")
                    continue
                if chars:  # -p8080:80, -e=X=1
                    value = chars[1:] if chars.startswith("=") else chars
                    yield RunFlag(name, value, f"-{short}{chars}{within}")
                elif index < len(words):
                    yield RunFlag(name, words[index], f"-{short} {words[index]}{within}")
                    index += 1
                else:
                    raise ValueError(f"-{short} needs a value")
                chars = ""
        else:
            raise ValueError(
                f"{word!r} is not an option (only `docker run` options here; the image is docker.image)"
            )


def _is_true(flag: RunFlag) -> bool:
    return flag.value is None or flag.value.lower() not in ("false", "0")


def check_run_option(option: str) -> str:
    """One entry of a *_run_options list: parses, and holds no managed flag (always refused)."""
    for flag in parse_run_flags(split_option(option)):
        if flag.name in _MANAGED and (flag.name != "detach" or _is_true(flag)):
            raise ValueError(f"{flag.written} is not allowed: {_MANAGED[flag.name]}")
    return option


def _sensitive(host_path: str) -> bool:
    if not host_path.startswith("/"):
        return False  # ~/...: the node's home
    path = "/" + posixpath.normpath(host_path).lstrip("/")
    return any(path == p or (p != "/" and path.startswith(p + "/")) for p in _SENSITIVE_HOST_PATHS)


def _bind_source(flag: RunFlag) -> str | None:
    """The host path a -v/--volume/--mount binds, if it binds one (named volumes and tmpfs don't)."""
    value = flag.value or ""
    if flag.name == "volume":
        source = value.split(":", 1)[0]
        return source if source.startswith(("/", "~", ".")) else None
    if flag.name == "mount":
        fields = dict(part.partition("=")[::2] for part in value.split(","))
        source = fields.get("source") or fields.get("src") or ""
        if fields.get("type", "volume") == "bind" or source.startswith("/"):
            return source or "/"
    return None


def _flag_problem(flag: RunFlag) -> str | None:
    if flag.name in _ALWAYS_PRIVILEGED and (flag.name != "privileged" or _is_true(flag)):
        return f"{flag.written}: {_ALWAYS_PRIVILEGED[flag.name]}"
    if flag.name in _HOST_NAMESPACES and (flag.value or "").startswith(("host", "container:")):
        return f"{flag.written}: shares a namespace of the node or another container"
    if flag.name == "security-opt" and (flag.value or "").replace(":", "=") not in (
        "no-new-privileges",
        "no-new-privileges=true",
    ):
        return f"{flag.written}: weakens the container's confinement"
    if flag.name in ("volume", "mount") and _bind_source(flag) is not None:
        return f"{flag.written}: binds a host path (list bind mounts in docker.mounts instead)"
    return None


def privileged_problem(entry: str, *, mount: bool = False) -> str | None:
    """Why `entry` (a run option, or a docker.mounts spec with `mount`) raises privileges, if it does."""
    if mount:
        host = entry.split(":", 1)[0]
        return f"{entry}: exposes {host} of the node" if _sensitive(host) else None
    for flag in parse_run_flags(split_option(entry)):
        problem = _flag_problem(flag)
        if problem:
            return problem
    return None


def check_mount(spec: str) -> str:
    """``HOST:CONTAINER[:ro|rw]`` with absolute paths (the host path may start with ``~/``)."""
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"expected HOST:CONTAINER or HOST:CONTAINER:ro|rw, got {spec!r}")
    host, container = parts[0], parts[1]
    if not (host.startswith("/") or host.startswith("~/")):
        raise ValueError(f"the host path must be absolute (or start with ~/), got {host!r}")
    if not container.startswith("/"):
        raise ValueError(f"the container path must be absolute, got {container!r}")
    if len(parts) == 3 and parts[2] not in ("ro", "rw"):
        raise ValueError(f"the mode must be ro or rw, got {parts[2]!r}")
    if ".." in host.split("/") or ".." in container.split("/"):
        raise ValueError(f"paths must not contain '..', got {spec!r}")
    return spec
