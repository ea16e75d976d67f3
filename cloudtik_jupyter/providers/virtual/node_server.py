"""The process a virtual node *is*: an embedded asyncssh server on the node's own address.

It accepts only the cluster's key (and user). "Public head, private workers": a worker accepts TCP
connections only from the live head of its cluster, so clients reach workers by jumping through the
head, exactly as on a cloud. The head allows direct-tcpip forwarding, dialled from the head's own
address so workers see the head as the peer.

`become_node` runs in a child the hypervisor forked (asyncssh already imported: no interpreter start).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
import traceback
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, cast

import asyncssh
from asyncssh.forward import SSHForwarder

from ...daemon import redirect_stdio
from ...records import node_env
from ..tags import KIND_HEAD
from . import addresses, state
from .process_tree import set_child_subreaper
from .sessions import ChildWatcher, SessionHandler

log = logging.getLogger(__name__)

LOGIN_TIMEOUT = 30.0
_LISTENER_FD = 3


@dataclass(frozen=True)
class NodeLaunch:
    """What a node process needs to know about itself."""

    home: Path
    node_id: str
    cluster: str
    workspace: str
    kind: str
    ip: str
    ssh_user: str  # "" accepts any user name (the key is what authenticates)
    ssh_public_key: str

    @property
    def dir(self) -> Path:
        return state.node_dir(self.home, self.node_id)


def node_environment(launch: NodeLaunch, base: dict[str, str]) -> dict[str, str]:
    """Environment of every command on the node; the client's interpreter comes first on PATH."""
    env = dict(base)
    interpreter_dir = str(Path(sys.executable).parent)
    env.update(
        {
            "HOME": str(launch.dir),
            "SHELL": "/bin/bash",
            "CLOUDTIK_HOME": str(launch.home),
            node_env.NODE_ID: launch.node_id,
            node_env.NODE_IP: launch.ip,
            node_env.CLUSTER: launch.cluster,
            node_env.WORKSPACE: launch.workspace,
            node_env.SCRATCH: str(state.scratch_dir(launch.node_id)),
            "PATH": os.pathsep.join([interpreter_dir, env.get("PATH", os.defpath)]),
        }
    )
    return env


class PeerPolicy:
    """Who may open a TCP connection to this node's SSH server."""

    def __init__(self, launch: NodeLaunch) -> None:
        self._launch = launch
        self._enforced = launch.kind != KIND_HEAD and addresses.per_node_addresses()
        if launch.kind != KIND_HEAD and not self._enforced:
            log.warning(
                "all nodes share %s here: cannot restrict worker SSH to the head", addresses.SHARED_ADDRESS
            )

    def allows(self, peer_ip: str) -> bool:
        if not self._enforced:
            return True
        # Looked up per connection (cheap): a replaced head has a new address.
        return peer_ip in self._head_ips()

    def _head_ips(self) -> set[str]:
        launch = self._launch
        return {
            r.ip
            for r in state.list_records(launch.home)
            if r.cluster == launch.cluster
            and r.workspace == launch.workspace
            and r.kind == KIND_HEAD
            and state.is_alive(r)
        }


class NodeSSHServer(asyncssh.SSHServer):
    def __init__(
        self, launch: NodeLaunch, policy: PeerPolicy, client_keys: Sequence[asyncssh.SSHKey]
    ) -> None:
        self._launch = launch
        self._policy = policy
        self._client_keys = {k.public_data for k in client_keys}

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        peer = conn.get_extra_info("peername")
        peer_ip = str(peer[0]) if peer else ""
        if not self._policy.allows(peer_ip):
            log.warning("rejected connection from %s: a worker accepts only its cluster's head", peer_ip)
            conn.abort()

    def begin_auth(self, username: str) -> bool:
        return True  # always authenticate

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        user_ok = not self._launch.ssh_user or username == self._launch.ssh_user
        key_ok = key.public_data in self._client_keys
        if not (user_ok and key_ok):
            log.warning("refused key %s for user %r", key.get_fingerprint(), username)
        return user_ok and key_ok

    def connection_requested(
        self, dest_host: str, dest_port: int, orig_host: str, orig_port: int
    ) -> Awaitable[asyncssh.SSHTCPSession[bytes]] | bool:
        if self._launch.kind != KIND_HEAD:
            return False  # workers are not jump hosts
        return _dial_from(self._launch.ip, dest_host, dest_port)

    def server_requested(self, listen_host: str, listen_port: int) -> bool:
        return False  # no remote (-R) forwarding


async def _dial_from(local_ip: str, host: str, port: int) -> asyncssh.SSHTCPSession[bytes]:
    """A direct-tcpip connection opened from the head's own address."""
    loop = asyncio.get_running_loop()
    try:
        _, peer = await loop.create_connection(SSHForwarder, host, port, local_addr=(local_ip, 0))
    except OSError as exc:
        raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED, str(exc)) from None
    # asyncssh's own forward_connection hands back a forwarder as the session the same way.
    return cast("asyncssh.SSHTCPSession[bytes]", SSHForwarder(peer))


async def serve(launch: NodeLaunch, listener: socket.socket) -> int:
    """Serve SSH on the pre-bound `listener` until SIGTERM."""
    loop = asyncio.get_running_loop()
    children = ChildWatcher(loop)
    host_key = asyncssh.read_private_key(launch.dir / state.HOST_KEY_FILE)
    # The client's key, and the head's own key for workers its controller sets up.
    client_keys = asyncssh.read_public_key_list(launch.dir / state.AUTHORIZED_KEYS_FILE)
    policy = PeerPolicy(launch)
    sessions = SessionHandler(children, dict(os.environ))
    server = await asyncssh.listen(
        sock=listener,
        server_factory=lambda: NodeSSHServer(launch, policy, client_keys),
        server_host_keys=[host_key],
        process_factory=sessions,
        sftp_factory=True,  # relative paths resolve against the cwd: the node's directory
        allow_scp=True,
        allow_pty=True,
        line_editor=False,  # a real pty does line editing
        encoding=None,
        agent_forwarding=False,
        x11_forwarding=False,
        login_timeout=LOGIN_TIMEOUT,
    )
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    log.info(
        "node %s (%s of %s) serving SSH on %s:%d",
        launch.node_id,
        launch.kind,
        launch.cluster,
        launch.ip,
        listener.getsockname()[1],
    )
    await stop.wait()
    server.close()
    return 0


def _detach_from_hypervisor(
    listener: socket.socket, inherited: Sequence[socket.socket], log_path: Path
) -> socket.socket:
    """Keep only stdio (-> node.log) and the listener (moved to fd 3); close every other inherited fd."""
    for sock in inherited:
        sock.detach()  # their Python objects must never close a reused fd number later
    for handler in logging.root.handlers[:]:
        logging.root.removeHandler(handler)
        handler.close()  # the hypervisor's log file: still the inherited fd here, so safe to close
    redirect_stdio(log_path)
    fd = listener.detach()
    if fd != _LISTENER_FD:
        os.dup2(fd, _LISTENER_FD, inheritable=False)
        os.close(fd)
    os.closerange(_LISTENER_FD + 1, os.sysconf("SC_OPEN_MAX"))
    return socket.socket(fileno=_LISTENER_FD)


def become_node(launch: NodeLaunch, listener: socket.socket, inherited: Sequence[socket.socket]) -> NoReturn:
    """Entry point of the forked child: detach, become a subreaper, serve. Never returns."""
    code = 1
    try:
        gc.freeze()  # never collect (and so never finalize) objects inherited from the hypervisor
        for sig in (signal.SIGCHLD, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, signal.SIG_DFL)
        os.setsid()
        subreaper = set_child_subreaper()
        own = _detach_from_hypervisor(listener, inherited, launch.dir / state.NODE_LOG_FILE)
        os.chdir(launch.dir)
        os.environ.update(node_environment(launch, dict(os.environ)))
        # Everything on this node descends from this process: what "the node's processes" means when
        # its agent judges whether the node is idle (node/activity.py).
        os.environ["CLOUDTIK_NODE_ROOT_PID"] = str(os.getpid())
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", force=True
        )
        logging.getLogger("asyncssh").setLevel(logging.WARNING)
        if not subreaper:
            log.warning("not a child subreaper: daemons started on this node may escape its process tree")
        code = asyncio.run(serve(launch, own))
    except BaseException:
        traceback.print_exc()
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)  # never unwind into the hypervisor's stack
