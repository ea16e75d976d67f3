"""Open one SSH connection with the cluster key, checking the host key against the pinned one."""

from __future__ import annotations

import asyncio

import asyncssh

from ..errors import CannotConnect, HostKeyChanged
from .host_keys import (
    SOURCE_PROVIDER,
    SOURCE_TOFU,
    HostKeyStore,
    PinnedHostKey,
    host_key_changed,
    openssh_line,
    parse_public_key,
)
from .target import SshTarget

# Detect a dead peer on long-lived cached connections (a node that vanished without closing TCP).
KEEPALIVE_SECONDS = 15.0
KEEPALIVE_COUNT_MAX = 3


class _HostKeyCheck(asyncssh.SSHClient):
    """Records the key the server presents. Only asked about keys other than the expected one: those are
    accepted only when nothing is expected yet (trust on first use)."""

    def __init__(self, expected: asyncssh.SSHKey | None) -> None:
        self.expected = expected
        self.presented: asyncssh.SSHKey | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> bool:
        self.presented = key
        return self.expected is None


def describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


async def open_connection(
    target: SshTarget,
    *,
    client_key: asyncssh.SSHKey,
    host_keys: HostKeyStore,
    tunnel: asyncssh.SSHClientConnection | None = None,
    local_addr: str | None = None,
    connect_timeout: float = 10.0,
) -> asyncssh.SSHClientConnection:
    """Connect and authenticate; pin the host key on first contact.

    Raises HostKeyChanged for a key other than the pinned (or provider-vouched) one, NodeUnreachable for
    everything else that stops the connection.
    """
    pinned = host_keys.get(target.node_id)
    expected = pinned
    if expected is None and target.host_key:
        vouched = openssh_line(parse_public_key(target.host_key))
        expected = PinnedHostKey(vouched, target.address, SOURCE_PROVIDER)
    expected_key = parse_public_key(expected.host_key) if expected else None
    check = _HostKeyCheck(expected_key)
    try:
        conn = await asyncssh.connect(
            target.host,
            target.port,
            tunnel=tunnel if tunnel is not None else (),
            local_addr=(local_addr, 0) if local_addr and tunnel is None else (),
            config=None,  # the user's ~/.ssh/config must not redirect cluster connections
            client_factory=lambda: check,
            # The expected key is trusted as is (and selects its algorithm); any other key goes to `check`.
            known_hosts=([expected_key] if expected_key else [], [], []),
            username=target.user,
            client_keys=[client_key],
            agent_path=None,
            preferred_auth="publickey",
            gss_auth=False,
            gss_kex=False,
            connect_timeout=connect_timeout,
            keepalive_interval=KEEPALIVE_SECONDS,
            keepalive_count_max=KEEPALIVE_COUNT_MAX,
        )
    except asyncssh.HostKeyNotVerifiable as exc:
        if expected is not None and check.presented is not None:
            raise host_key_changed(
                target.node_id,
                target.address,
                expected,
                openssh_line(check.presented),
                first_contact=pinned is None,
                store_path=host_keys.path,
            ) from None
        raise CannotConnect(f"node {target.node_id} at {target.address}: {describe(exc)}") from exc
    except (OSError, asyncssh.Error, asyncio.TimeoutError) as exc:
        raise CannotConnect(
            f"cannot connect to node {target.node_id} at {target.address}: {describe(exc)}"
        ) from exc
    if pinned is None:
        presented = check.presented or expected_key
        assert presented is not None  # asyncssh validated some key
        try:
            source = SOURCE_PROVIDER if expected else SOURCE_TOFU
            host_keys.pin(target.node_id, openssh_line(presented), target.address, source)
        except HostKeyChanged:
            conn.close()  # another process pinned a different key for this node meanwhile
            raise
    return conn
