"""The virtual provider's "Cloud API": one small daemon per state dir that creates and terminates nodes.

Started on first use by `client.HypervisorClient` (own session, double fork: never a child of the caller,
so nodes outlive the client or the head that asked for them). Serves one JSON-line request per Unix-socket
connection, one at a time (requests are short). Nodes are forked from here: asyncssh is already imported,
so a node serves SSH within milliseconds. It is a subreaper too, so orphans of terminated nodes come back
to it and are reaped at once. With no live node for ``$CLOUDTIK_VIRTUAL_IDLE_EXIT`` seconds (default 60)
it exits; killed, the next call starts a new one, which finds the nodes again from their records.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncssh
import psutil

from ... import paths
from ...daemon import redirect_stdio
from ...errors import CloudtikError, ProviderError
from ...records import node_env
from ...waiting import wait_for_sync
from .. import tags as T
from . import addresses, state
from .node_server import NodeLaunch, become_node
from .process_tree import is_gone, kill_trees, reap_children, set_child_subreaper
from .protocol import (
    MAX_LINE,
    OP_CREATE,
    OP_SHUTDOWN,
    OP_TERMINATE,
    CreateRequest,
    ProtocolError,
    Request,
    TerminateRequest,
    encode_response,
)

log = logging.getLogger("cloudtik_jupyter.hypervisor")

ENV_IDLE_EXIT = "CLOUDTIK_VIRTUAL_IDLE_EXIT"
DEFAULT_IDLE_EXIT = 60.0
TERMINATE_TIMEOUT = 10.0
REQUEST_TIMEOUT = 10.0
LOCK_WAIT = 10.0
LISTENING_CACHE_TTL = 2.0
DEAD_NODE_CHECK = 1.0  # at most this long between a node's crash and the end of what it left running


def _read_line(conn: socket.socket) -> bytes:
    buf = bytearray()
    while b"\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            break
        buf += chunk
        if len(buf) > MAX_LINE:
            raise ProtocolError("request too large")
    return bytes(buf.split(b"\n", 1)[0])


def _bash_profile() -> str:
    # /etc/profile resets PATH in login shells (`cloudtik attach`): put the client's interpreter back first.
    interpreter_dir = shlex.quote(str(Path(sys.executable).parent))
    return f'export PATH={interpreter_dir}:"$PATH"\n[ -f ~/.bashrc ] && . ~/.bashrc\n'


class Hypervisor:
    def __init__(self, home: Path, token: str, idle_exit: float) -> None:
        self.home = home
        self._token = token
        self._idle_exit = idle_exit
        self._allocators: dict[str, addresses.AddressAllocator] = {}
        self._idle_since: float | None = None
        self._listening_cache: tuple[float, set[str]] | None = None
        self._running = True

    # -- loop -----------------------------------------------------------------------------------

    def serve(self, server: socket.socket) -> None:
        server.settimeout(min(max(self._idle_exit / 4, 0.05), DEAD_NODE_CHECK))
        while self._running:
            reap_children()
            # A node whose root process died is a machine that crashed: what it left running (re-parented
            # to us) goes with it, as with a real machine, instead of living on until someone asks.
            self.collect_garbage(dead_nodes=True)
            try:
                conn, _ = server.accept()
            except TimeoutError:
                self._check_idle()
                continue
            with conn:
                self._handle(conn, [server, conn])
            self._check_idle()

    def _check_idle(self) -> None:
        if state.live_records(self.home):
            self._idle_since = None
        elif self._idle_since is None:
            self._idle_since = time.monotonic()
        elif time.monotonic() - self._idle_since >= self._idle_exit:
            log.info("no live node for %.0fs: exiting", self._idle_exit)
            self._running = False

    def _handle(self, conn: socket.socket, inherited: Sequence[socket.socket]) -> None:
        conn.settimeout(REQUEST_TIMEOUT)
        try:
            request = Request.decode(_read_line(conn))
            if not hmac.compare_digest(request.token.encode(), self._token.encode()):
                raise ProtocolError("bad token")
            response = encode_response(self._dispatch(request, inherited))
        except (ProtocolError, CloudtikError) as exc:
            response = encode_response(error=str(exc))
        except Exception as exc:  # keep serving: one bad request must not take the nodes' API down
            log.exception("request failed")
            response = encode_response(error=f"hypervisor error: {exc!r}")
        with contextlib.suppress(OSError):
            conn.sendall(response)

    def _dispatch(self, request: Request, inherited: Sequence[socket.socket]) -> dict[str, Any]:
        if request.op == OP_CREATE:
            return {"ids": self.create(CreateRequest.from_args(request.args), inherited)}
        if request.op == OP_TERMINATE:
            self.terminate(TerminateRequest.from_args(request.args).ids)
            return {}
        if request.op == OP_SHUTDOWN:
            log.info("shutdown requested")
            self._running = False
        me = psutil.Process()
        return {
            "pid": me.pid,
            "create_time": me.create_time(),
            "live_nodes": len(state.live_records(self.home)),
        }

    # -- create ---------------------------------------------------------------------------------

    def _allocator(self, block_text: str) -> addresses.AddressAllocator:
        allocator = self._allocators.get(block_text)
        if allocator is None:
            allocator = addresses.AddressAllocator(addresses.parse_address_block(block_text))
            allocator.skip_past([r.ip for r in state.list_records(self.home)])
            self._allocators[block_text] = allocator
        return allocator

    def create(self, req: CreateRequest, inherited: Sequence[socket.socket]) -> list[str]:
        try:
            for line in req.ssh_public_key.splitlines():  # authorized_keys: one key per line
                asyncssh.import_public_key(line)
        except (asyncssh.KeyImportError, ValueError) as exc:
            raise ProviderError(f"ssh_public_key is not an OpenSSH public key: {exc}") from None
        per_node = addresses.per_node_addresses()
        allocator = self._allocator(req.address_block) if per_node else None
        in_use = {r.ip for r in state.live_records(self.home)}
        listening = self._listening() if allocator else set()
        kind = T.KIND_HEAD if req.tags.get(T.NODE_KIND) == T.KIND_HEAD else T.KIND_WORKER
        tags = {**req.tags, T.CLUSTER: req.cluster, T.WORKSPACE: req.workspace}
        ids = []
        for _ in range(req.count):
            ip = allocator.allocate(in_use, listening) if allocator else addresses.SHARED_ADDRESS
            in_use.add(ip)
            launch = NodeLaunch(
                home=self.home,
                node_id=self._new_id(),
                cluster=req.cluster,
                workspace=req.workspace,
                kind=kind,
                ip=ip,
                ssh_user=req.ssh_user,
                ssh_public_key=req.ssh_public_key.strip(),
            )
            self._launch(launch, tags, inherited)
            ids.append(launch.node_id)
        log.info("created %s for %s (%s)", ", ".join(ids), req.cluster, kind)
        return ids

    def _listening(self) -> set[str]:
        # Reading the socket table costs ~10 ms with many sockets; a burst of creates shares one look.
        now = time.monotonic()
        if self._listening_cache is None or now - self._listening_cache[0] > LISTENING_CACHE_TTL:
            self._listening_cache = (now, addresses.listening_addresses())
        return self._listening_cache[1]

    def _new_id(self) -> str:
        while True:
            node_id = f"vn-{secrets.token_hex(5)}"
            if not state.node_dir(self.home, node_id).exists():
                return node_id

    def _launch(self, launch: NodeLaunch, tags: dict[str, str], inherited: Sequence[socket.socket]) -> None:
        directory = paths.ensure_private_dir(launch.dir)
        pid = 0
        try:
            state.make_scratch_dir(launch.node_id)
            host_key = asyncssh.generate_private_key("ssh-ed25519")
            paths.write_private(directory / state.HOST_KEY_FILE, host_key.export_private_key())
            paths.write_private(directory / state.AUTHORIZED_KEYS_FILE, launch.ssh_public_key + "\n")
            (directory / ".bash_profile").write_text(_bash_profile())
            with addresses.bind_listener(launch.ip) as listener:
                pid = os.fork()
                if pid == 0:
                    become_node(launch, listener, inherited)
                port = int(listener.getsockname()[1])
            record = state.NodeRecord(
                node_id=launch.node_id,
                cluster=launch.cluster,
                workspace=launch.workspace,
                kind=launch.kind,
                ip=launch.ip,
                port=port,
                pid=pid,
                create_time=psutil.Process(pid).create_time(),
                launched_at=time.time(),
                host_key=host_key.export_public_key().decode().strip(),
                ssh_user=launch.ssh_user,
                tags=tags,
            )
            state.write_record(self.home, record)
        except BaseException:
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            shutil.rmtree(directory, ignore_errors=True)
            _remove_scratch(launch.node_id)
            raise

    # -- terminate ------------------------------------------------------------------------------

    def terminate(self, ids: list[str]) -> None:
        if not ids:
            return
        wanted = set(ids)
        records = [r for r in (state.read_record(self.home, i) for i in ids) if r is not None]
        roots = []
        for record in records:
            if state.is_alive(record):
                with contextlib.suppress(psutil.NoSuchProcess):
                    roots.append(psutil.Process(record.pid))
        dead = {r.node_id for r in records if not state.is_alive(r)}
        if dead:  # its root was killed alone: what it ran lives on, re-parented; find it by environment
            roots.extend(_orphans_of(self.home, dead))
        # Never kill into another node or ourselves, even if one ended up in this tree.
        exclude = {os.getpid()} | {r.pid for r in state.live_records(self.home) if r.node_id not in wanted}
        procs = kill_trees(roots, exclude)

        def all_gone() -> bool:
            reap_children()
            return all(is_gone(p) for p in procs)

        wait_for_sync(
            all_gone, timeout=TERMINATE_TIMEOUT, what=f"processes of {', '.join(ids)} to exit", interval=0.002
        )
        for node_id in ids:
            with contextlib.suppress(ProviderError), state.node_locked(self.home, node_id) as directory:
                shutil.rmtree(directory)
                _remove_scratch(node_id)
        if records:
            log.info("terminated %s (%d processes)", ", ".join(r.node_id for r in records), len(procs))

    # -- housekeeping ---------------------------------------------------------------------------

    def collect_garbage(self, *, dead_nodes: bool) -> None:
        """Remove half-created node dirs (no record) and, when asked, dead nodes and their leftovers."""
        live = {r.node_id for r in state.live_records(self.home)}
        try:
            names = [n for n in os.listdir(state.nodes_dir(self.home)) if state.NODE_ID_PATTERN.match(n)]
        except FileNotFoundError:
            return
        half_created = [n for n in names if not (state.node_dir(self.home, n) / state.RECORD_FILE).exists()]
        for name in half_created:
            shutil.rmtree(state.node_dir(self.home, name), ignore_errors=True)
            _remove_scratch(name)
        if dead_nodes:
            with contextlib.suppress(CloudtikError):
                self.terminate([n for n in names if n not in live and n not in half_created])


def _remove_scratch(node_id: str) -> None:
    """The node's scratch dir, if it is the one we made (never follow a link someone put there)."""
    path = state.scratch_dir(node_id)
    with contextlib.suppress(OSError):
        if path.is_symlink() or path.lstat().st_uid != os.getuid():
            return
        shutil.rmtree(path, ignore_errors=True)


def _orphans_of(home: Path, node_ids: set[str]) -> list[psutil.Process]:
    """Processes still running for nodes whose root process is gone (they inherit the node's env)."""
    found = []
    for proc in psutil.process_iter(["environ"]):
        env = proc.info["environ"] or {}
        if env.get(node_env.NODE_ID) in node_ids and env.get("CLOUDTIK_HOME") == str(home):
            found.append(proc)
    return found


def _acquire_lock(home: Path) -> int | None:
    """Hold the state dir's hypervisor lock for our lifetime; None if another hypervisor serves."""
    fd = os.open(state.lock_path(home), os.O_RDWR | os.O_CREAT, 0o600)

    def locked() -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False

    def settled() -> str | None:
        if locked():
            return "locked"
        with socket.socket(socket.AF_UNIX) as probe:
            try:
                probe.connect(str(state.socket_path(home)))
                return "taken"  # a live hypervisor accepts: let it serve
            except OSError:
                return None  # one is shutting down: wait for its lock

    try:
        outcome = wait_for_sync(settled, timeout=LOCK_WAIT, what="the hypervisor lock")
    except CloudtikError:
        outcome = "taken"
    if outcome == "locked":
        return fd
    os.close(fd)
    return None


def _listen(path: Path) -> socket.socket:
    path.unlink(missing_ok=True)  # stale: we hold the lock
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # the socket file is created 0600
    try:
        server.bind(str(path))
    finally:
        os.umask(old_umask)
    server.listen(64)
    return server


def main(argv: Sequence[str] | None = None) -> None:
    args = list(sys.argv[1:] if argv is None else argv)
    home = paths.home().absolute()
    if "--foreground" not in args and os.fork() > 0:
        os._exit(0)  # second fork of the double fork: the daemon is re-parented away from the caller
    vdir = paths.ensure_private_dir(state.virtual_dir(home))
    paths.ensure_private_dir(state.nodes_dir(home))
    os.chdir(vdir)
    redirect_stdio(state.hypervisor_log_path(home))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s hypervisor[%(process)d] %(message)s")
    lock_fd = _acquire_lock(home)
    if lock_fd is None:
        return
    if not set_child_subreaper():
        log.warning("not a child subreaper: orphans of terminated nodes go to init")
    signal.signal(signal.SIGCHLD, lambda *_: reap_children())
    idle_exit = float(os.environ.get(ENV_IDLE_EXIT) or DEFAULT_IDLE_EXIT)
    token = secrets.token_urlsafe(32)
    paths.write_private(state.token_path(home), token)  # before listening: a connect implies a valid token
    sock_path = state.socket_path(home)
    hypervisor = Hypervisor(home, token, idle_exit)
    hypervisor.collect_garbage(dead_nodes=False)
    server = _listen(sock_path)
    log.info("serving %s (idle exit after %.0fs)", home, idle_exit)
    try:
        hypervisor.serve(server)
    finally:
        server.close()
        sock_path.unlink(missing_ok=True)
        state.token_path(home).unlink(missing_ok=True)
        hypervisor.collect_garbage(dead_nodes=not state.live_records(home))
        reap_children()
        os.close(lock_fd)


if __name__ == "__main__":
    main()
    # Everything is closed and released above; skipping the interpreter's teardown makes a `down` that
    # waits for the hypervisor to go (the last cluster's) return 0.1-0.2 s sooner.
    logging.shutdown()
    os._exit(0)
