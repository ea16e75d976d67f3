"""Talking to the hypervisor: start it on first use (detached), then one request per connection."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from ... import paths
from ...errors import CloudtikError, ProviderError
from ...records import node_env
from ...waiting import wait_for_sync
from . import state
from .process_tree import is_running
from .protocol import (
    OP_CREATE,
    OP_PING,
    OP_SHUTDOWN,
    OP_TERMINATE,
    CreateRequest,
    HypervisorInfo,
    ProtocolError,
    Request,
    TerminateRequest,
    args_of,
    decode_response,
)

HYPERVISOR_MODULE = "cloudtik_jupyter.providers.virtual.hypervisor"
START_TIMEOUT = 30.0
CALL_TIMEOUT = 120.0
RESPAWN_AFTER = 2.0  # a hypervisor that lost a start race exits; try again after this long
# A node's identity must not leak into a hypervisor started from that node (the head's controller).
_NODE_ENV = (node_env.NODE_ID, node_env.NODE_IP, node_env.CLUSTER, node_env.WORKSPACE)


class HypervisorClient:
    """Synchronous client (provider methods are synchronous); safe to use from several threads."""

    def __init__(
        self, home: Path, *, start_timeout: float = START_TIMEOUT, call_timeout: float = CALL_TIMEOUT
    ):
        self.home = home
        self._start_timeout = start_timeout
        self._call_timeout = call_timeout
        self._last_spawn = 0.0
        self._start_lock = threading.Lock()

    # -- operations -----------------------------------------------------------------------------

    def create(self, request: CreateRequest) -> list[str]:
        result = self._call(OP_CREATE, args_of(request), start=True)
        ids = result.get("ids") if result else None
        if not isinstance(ids, list):
            raise ProviderError("hypervisor returned no node ids")
        return [str(i) for i in ids]

    def terminate(self, ids: list[str]) -> None:
        self._call(OP_TERMINATE, args_of(TerminateRequest(ids)), start=True)

    def ping(self) -> HypervisorInfo | None:
        """The running hypervisor, or None; never starts one."""
        result = self._call(OP_PING, {}, start=False)
        return HypervisorInfo.from_result(result) if result is not None else None

    def start(self) -> HypervisorInfo:
        """The running hypervisor, started if there is none (the first `create` would start it too)."""
        result = self._call(OP_PING, {}, start=True)
        if result is None:
            raise ProviderError(f"the virtual hypervisor did not answer; see {self._log()}")
        return HypervisorInfo.from_result(result)

    def shutdown(self, timeout: float = 10.0) -> HypervisorInfo | None:
        """Stop the hypervisor (nodes keep running) and wait until its process is gone."""
        result = self._call(OP_SHUTDOWN, {}, start=False)
        if result is None:
            return None
        info = HypervisorInfo.from_result(result)

        wait_for_sync(
            lambda: not is_running(info.pid, info.create_time),
            timeout=timeout,
            what=f"hypervisor {info.pid} to exit",
        )
        return info

    def shutdown_if_idle(self) -> bool:
        """Stop a running hypervisor that has no live node (it would exit by itself a minute later);
        True if one was stopped. A create racing this is safe: the client starts a new one."""
        info = self.ping()
        if info is None or info.live_nodes:
            return False
        return self.shutdown() is not None

    # -- transport ------------------------------------------------------------------------------

    def _call(self, op: str, args: dict[str, Any], *, start: bool) -> dict[str, Any] | None:
        for attempt in range(2):
            sock = self._connect(start)
            if sock is None:
                return None
            with sock:
                line = self._exchange(sock, op, args)
            if line:
                try:
                    result, error = decode_response(line)
                except ProtocolError as exc:
                    raise ProviderError(f"virtual hypervisor: {exc}") from None
                if error is not None:
                    raise ProviderError(f"virtual hypervisor refused {op}: {error}")
                return result
            if attempt == 0 and op != OP_SHUTDOWN:
                continue  # it closed without answering (exiting when idle): the next connect restarts it
        if op == OP_SHUTDOWN:
            return None
        raise ProviderError(f"virtual hypervisor closed the connection during {op}; see {self._log()}")

    def _exchange(self, sock: socket.socket, op: str, args: dict[str, Any]) -> bytes:
        try:
            token = state.token_path(self.home).read_text().strip()
        except FileNotFoundError:
            return b""
        sock.settimeout(self._call_timeout)
        try:
            sock.sendall(Request(op=op, token=token, args=args).encode())
            buf = bytearray()
            while b"\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except TimeoutError:
            raise ProviderError(
                f"virtual hypervisor did not answer {op} within {self._call_timeout:g}s"
            ) from None
        except (BrokenPipeError, ConnectionResetError):
            return b""
        return bytes(buf.split(b"\n", 1)[0])

    def _try_connect(self) -> socket.socket | None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(state.socket_path(self.home)))
            return sock
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None

    def _connect(self, start: bool) -> socket.socket | None:
        sock = self._try_connect()
        if sock is not None or not start:
            return sock
        with self._start_lock:  # concurrent launches (threads) start one hypervisor, not one each
            return self._start_and_connect()

    def _start_and_connect(self) -> socket.socket:
        sock = self._try_connect()
        if sock is not None:
            return sock
        self._spawn()

        def connected_or_respawned() -> socket.socket | None:
            sock = self._try_connect()
            if sock is None and time.monotonic() - self._last_spawn > RESPAWN_AFTER:
                self._spawn()
            return sock

        try:
            return wait_for_sync(
                connected_or_respawned, timeout=self._start_timeout, what="the virtual hypervisor to start"
            )
        except CloudtikError:
            raise ProviderError(f"the virtual hypervisor did not start; see {self._log()}") from None

    def _spawn(self) -> None:
        """Start a hypervisor in its own session; it forks again and this intermediate exits at once."""
        self._last_spawn = time.monotonic()
        env = {k: v for k, v in os.environ.items() if k not in _NODE_ENV}
        env["CLOUDTIK_HOME"] = str(self.home)
        vdir = paths.ensure_private_dir(state.virtual_dir(self.home))
        log_fd = os.open(self._log(), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(log_fd, "ab") as early_log:  # import errors land in the log, not nowhere
            proc = subprocess.Popen(
                [sys.executable, "-m", HYPERVISOR_MODULE],
                env=env,
                cwd=vdir,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=early_log,
                start_new_session=True,
            )
        try:
            proc.wait(timeout=self._start_timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise ProviderError(f"the virtual hypervisor did not start; see {self._log()}") from None

    def _log(self) -> Path:
        return state.hypervisor_log_path(self.home)
