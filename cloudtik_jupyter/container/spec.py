"""What a node's container is: name, image, mounts, limits and `docker run` options, from the config.

Pure functions over small dataclasses; the shell that acts on them is in `container/scripts.py`. Paths
may be relative to the node's home (``~``, ``~/x``): they are resolved on the node, by its shell.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import sys
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

from ..config.schema import ClusterConfig
from ..providers import tags as T
from ..records import node_env

LABEL_CLUSTER = "cloudtik.cluster"
LABEL_NODE = "cloudtik.node"
LABEL_SPEC = "cloudtik.spec"  # digest of the spec: a changed spec recreates the container
# The container's main process: it reads stdin, which the keeper on the node holds open (see scripts.py).
MAIN_PROCESS = "cat"
# Variables every container gets from the node (by name, so values never reach `docker run`'s argv).
NODE_VARIABLES = (
    "HOME",
    "CLOUDTIK_HOME",
    node_env.CLUSTER,
    node_env.WORKSPACE,
    node_env.NODE_ID,
    node_env.NODE_IP,
)
_NAME_UNSAFE = re.compile(r"[^a-zA-Z0-9_.-]")


@dataclass(frozen=True)
class Mount:
    """A bind mount; ``~`` / ``~/x`` name the node's home."""

    source: str
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    name: str
    image: str
    pull: bool
    mounts: tuple[Mount, ...]
    env_names: tuple[str, ...]  # passed from the node's environment
    options: tuple[str, ...]  # further `docker run` words (limits, provider needs, the user's options)
    labels: tuple[tuple[str, str], ...]

    @property
    def digest(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def container_name(cluster: str, node_id: str) -> str:
    """One container per node; named by cluster and node, as nodes of a virtual cluster share a daemon."""
    return _NAME_UNSAFE.sub("-", f"cloudtik-{cluster}-{node_id}")


def resource_limits(resources: Mapping[str, float]) -> list[str]:
    """The node type's resources as limits: ``CPU`` (cores) and ``memory`` (bytes)."""
    limits = []
    if resources.get("CPU"):
        limits.append(f"--cpus={resources['CPU']:g}")
    if resources.get("memory"):
        limits.append(f"--memory={int(resources['memory'])}b")
    return limits


def _covered(path: str, roots: Iterable[str]) -> bool:
    return any(path == r or path.startswith(r.rstrip("/") + "/") for r in roots)


def host_environment_mounts() -> list[Mount]:
    """/usr, /etc and the Python environment (interpreter, packages, this package's source), read-only,
    each at the same path: a skeleton image then runs exactly what the node runs."""
    import cloudtik_jupyter

    wanted = ["/usr", "/etc", sys.base_prefix, sys.prefix, str(Path(cloudtik_jupyter.__file__).parents[1])]
    mounts: list[str] = []
    for path in sorted(set(wanted), key=len):  # parents first, then skip what they already hold
        if not _covered(path, mounts):
            mounts.append(path)
    return [Mount(p, p, read_only=True) for p in mounts]


def provider_needs(config: ClusterConfig, kind: str) -> tuple[list[Mount], list[str], list[str]]:
    """Mounts, `docker run` options and variables the provider needs inside the container.

    A cloud's API is reached over the network (host networking gives that). The virtual provider's is
    its state dir (node records, the hypervisor's socket) on this machine, and it tells live nodes by
    host PIDs. Its head's controller also reads file mounts from the client's paths, as in host mode,
    and removes the containers of workers it terminates (shared_daemon.py) through this machine's daemon.
    """
    if config.provider.type != "virtual":
        return [], [], []
    from .. import paths
    from ..providers.virtual import state

    home = paths.home().expanduser().absolute()
    virtual = str(state.virtual_dir(home))
    mounts = [Mount(virtual, virtual)]
    socket = str(state.socket_path(home))
    if not _covered(socket, [virtual]):  # a deep state dir moves the socket to the temp dir
        mounts.append(Mount(socket, socket))
    if kind != T.KIND_HEAD:
        return mounts, ["--pid=host"], []
    mounts += [Mount(local, local, read_only=True) for local in sorted(set(config.file_mounts.values()))]
    daemon = docker_socket()
    if daemon:
        mounts.append(Mount(daemon, daemon))
    return mounts, ["--pid=host"], ["DOCKER_HOST"]


def docker_socket() -> str | None:
    """The local daemon's Unix socket (``$DOCKER_HOST`` or the default), if there is one."""
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    path = host.removeprefix("unix://") if host.startswith("unix://") else None
    return path if path and os.path.exists(path) else None


def user_mounts(specs: Iterable[str]) -> list[Mount]:
    mounts = []
    for spec in specs:
        source, target, *mode = spec.split(":")
        mounts.append(Mount(source, target, read_only=mode == ["ro"]))
    return mounts


def container_spec(
    config: ClusterConfig, node_id: str, kind: str, node_type: str, env_names: Iterable[str] = ()
) -> ContainerSpec:
    docker = config.docker
    if not docker.image:
        raise ValueError("docker.image is not set")
    mounts = [Mount("~", "~")]  # the node's home: cluster state, uploads under ~ and logs are shared
    options = []
    if docker.host_environment:
        mounts += host_environment_mounts()
    provider_mounts, provider_options, provider_variables = provider_needs(config, kind)
    mounts += provider_mounts
    mounts += user_mounts(docker.mounts)
    node = config.available_node_types.get(node_type)
    options += resource_limits(node.resources if node else {})
    options += provider_options
    kind_options = docker.head_run_options if kind == T.KIND_HEAD else docker.worker_run_options
    for option in [*docker.run_options, *kind_options]:
        options += shlex.split(option)
    names = [*NODE_VARIABLES, *provider_variables, *env_names]
    if docker.host_environment:
        names.append("PATH")  # the node's interpreter first, as on the node itself
    return ContainerSpec(
        name=container_name(config.cluster_name, node_id),
        image=docker.image,
        pull=docker.pull_before_run,
        mounts=tuple(mounts),
        env_names=tuple(dict.fromkeys(names)),
        options=tuple(options),
        labels=((LABEL_CLUSTER, config.cluster_name), (LABEL_NODE, node_id)),
    )


def launch_key(config: ClusterConfig) -> str:
    """What of the docker section changes what setup runs in (empty in host mode): mixed into the
    launch hash, so switching modes or images re-runs setup."""
    if not config.docker.enabled:
        return ""
    return json.dumps(config.docker.model_dump(mode="json"), sort_keys=True)
