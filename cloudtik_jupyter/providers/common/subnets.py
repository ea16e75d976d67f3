"""Carving a workspace's /24 subnets out of its address block, around what already uses it."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ...errors import ProviderError


def overlaps(a: str, b: str) -> bool:
    return ipaddress.ip_network(a).overlaps(ipaddress.ip_network(b))


def free_block(block: str, taken: Iterable[str], prefix: int = 24) -> str:
    """The first /`prefix` of `block` overlapping none of `taken` (matters in a shared network)."""
    used = [ipaddress.ip_network(c) for c in taken]
    for candidate in ipaddress.ip_network(block).subnets(new_prefix=prefix):
        if not any(candidate.overlaps(u) for u in used):
            return str(candidate)
    raise ProviderError(f"no free /{prefix} left in {block} for the workspace's subnets")


def host_addresses(cidr: str) -> Iterable[str]:
    """Usable addresses of a subnet, skipping the ones clouds reserve at the start."""
    net = ipaddress.ip_network(cidr)
    for i, address in enumerate(net.hosts()):
        if i >= 3:
            yield str(address)
