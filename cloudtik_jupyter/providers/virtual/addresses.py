"""Node addresses: one 127.x.y.z per node inside the workspace's block, with a pre-bound listening socket.

Linux routes all of 127.0.0.0/8 to loopback, so any address there binds without setup. Elsewhere every
node shares 127.0.0.1 and only the port differs; callers always get (ip, port) and never assume 22.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import struct
import sys
from collections.abc import Collection
from dataclasses import dataclass
from ipaddress import IPv4Network
from pathlib import Path

import psutil

from ...errors import ConfigError, ProviderError

SHARED_ADDRESS = "127.0.0.1"
LISTEN_BACKLOG = 128
_TCP_LISTEN = "0A"  # st column of /proc/net/tcp


def per_node_addresses() -> bool:
    """Whether each node can have its own loopback address (Linux)."""
    return sys.platform.startswith("linux")


def default_address_block(home: Path) -> IPv4Network:
    """127.N.0.0/16 with N from a hash of the state dir, so two state dirs on one machine rarely meet.

    N avoids 0 and 1 (127.0.0.1, Debian's 127.0.1.1 hostname entry).
    """
    digest = hashlib.sha256(str(home.expanduser().absolute()).encode()).digest()
    n = 2 + int.from_bytes(digest[:4], "big") % 253
    return IPv4Network(f"127.{n}.0.0/16")


def parse_address_block(text: str) -> IPv4Network:
    from ...config.schema import check_address_block  # the config's own rule, for unvalidated input

    try:
        return IPv4Network(check_address_block(text))
    except ValueError as exc:
        raise ConfigError("provider.address_block", str(exc)) from None


def listening_addresses() -> set[str]:
    """IPv4 addresses some process on this machine listens on (those are not free for a new node)."""
    try:
        return _listening_from_proc(Path("/proc/net/tcp").read_text())
    except OSError:  # not Linux: ask psutil (slower, it maps every socket to its process)
        try:
            conns = psutil.net_connections(kind="tcp4")
        except psutil.AccessDenied:
            return set()
        return {c.laddr.ip for c in conns if c.status == psutil.CONN_LISTEN and c.laddr}


def _listening_from_proc(table: str) -> set[str]:
    found = set()
    for line in table.splitlines()[1:]:
        fields = line.split()
        if len(fields) > 3 and fields[3] == _TCP_LISTEN:
            ip_hex = fields[1].split(":")[0]
            found.add(socket.inet_ntoa(struct.pack("=I", int(ip_hex, 16))))  # kernel prints it in host order
    return found


@dataclass
class AddressAllocator:
    """Hands out host addresses of `block` round-robin, so a just-freed address is not reused at once."""

    block: IPv4Network
    cursor: int = 0

    def allocate(self, in_use: Collection[str], listening: Collection[str] | None = None) -> str:
        """The next address that is neither `in_use` by a node nor `listening` (default: looked up)."""
        first = int(self.block.network_address) + 1
        hosts = self.block.num_addresses - 2  # no network or broadcast address
        busy = set(in_use) | set(listening_addresses() if listening is None else listening)
        for step in range(hosts):
            index = (self.cursor + step) % hosts
            ip = str(ipaddress.IPv4Address(first + index))
            if ip not in busy:
                self.cursor = index + 1
                return ip
        raise ProviderError(f"no free address left in {self.block}")

    def skip_past(self, ips: Collection[str]) -> None:
        """Continue after the highest address already used (a restarted hypervisor keeps rotating)."""
        first = int(self.block.network_address) + 1
        indexes = [
            int(ipaddress.IPv4Address(ip)) - first for ip in ips if ipaddress.IPv4Address(ip) in self.block
        ]
        if indexes:
            self.cursor = max(self.cursor, max(indexes) + 1)


def bind_listener(ip: str) -> socket.socket:
    """A listening TCP socket on (ip, any port). Bound before the node starts, so the port is known at
    create time and early connections wait in the backlog instead of being refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((ip, 0))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    return sock
