"""Which services of a cluster the Jupyter server's proxy may reach, and their URLs through it.

Pure functions over the config and status records (no jupyter_server, no tornado): the server extension,
the notebook's views and `%cloudtik info` all build proxy links here.

Reachable are only the web UIs the runtimes declare as service links (on the head, and on workers), plus
the head ports the user lists in ``proxy.allowed_ports``. Nothing else on a head or worker is proxied.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from ..config.schema import ClusterConfig
    from ..records.cluster import ServiceLink

HEAD = "head"  # the node part of a proxy URL for the head; workers go by their sequence id
_PLACEHOLDER_IP = "node.invalid"  # only parsed, never dialled


@dataclass(frozen=True)
class DeclaredPorts:
    head: frozenset[int]
    worker: frozenset[int]

    def allows(self, node: str, port: int) -> bool:
        return port in (self.head if node == HEAD else self.worker)


def web_port(url: str) -> int | None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        return None
    try:
        return parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None


def declared_ports(config: ClusterConfig) -> DeclaredPorts:
    """The ports the proxy may reach on the head and on workers of a cluster with this config."""
    from ..runtimes import enabled_runtimes

    head = set(config.proxy.allowed_ports)
    worker: set[int] = set()
    for runtime, section in enabled_runtimes(config):
        head |= {p for link in runtime.links(section, _PLACEHOLDER_IP) if (p := _web(link)) is not None}
        worker |= {
            p for link in runtime.worker_links(section, _PLACEHOLDER_IP) if (p := _web(link)) is not None
        }
    return DeclaredPorts(frozenset(head), frozenset(worker))


def _web(link: ServiceLink) -> int | None:
    return web_port(link.url) if link.kind == "web" else None


def proxy_path(cluster: str, port: int, node: str = HEAD) -> str:
    """Path (under the server's base URL) of the proxy to `port` on a node (default the head)."""
    if node == HEAD:
        return f"cloudtik/proxy/{cluster}/{port}/"
    return f"cloudtik/proxy/{cluster}/nodes/{node}/{port}/"


def proxy_url(
    link: ServiceLink, cluster: str, node_ip: str | None, base_url: str, node: str = HEAD
) -> str | None:
    """The same web UI through the Jupyter server at `base_url`, if `link` points at `node_ip`."""
    if link.kind != "web" or not node_ip:
        return None
    parts = urlsplit(link.url)
    port = web_port(link.url)
    if port is None or parts.hostname != node_ip:
        return None
    rest = parts.path.lstrip("/") + (f"?{parts.query}" if parts.query else "")
    return base_url + proxy_path(cluster, port, node) + rest
