"""One supervised service: spawn, health check, restart on exit (bounded), stop by PID.

Each service runs as the leader of its own session, so stopping it signals exactly its process
group (pgid == its pid) and the descendants it forked, nothing else on the machine. Services must
stay in the foreground (a service that daemonizes itself escapes supervision).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from ..state.records import ProcessRecord, ProcessStatus
from .config import HealthCheck, ServiceSpec
from .processes import OwnedProcess, tree_of

log = logging.getLogger(__name__)

MAX_RESTART_DELAY = 10.0


@dataclass(frozen=True)
class ServiceNotice:
    """Something worth an event in the cluster's log (the agent forwards it to the store)."""

    service: str
    kind: str  # service-waiting | -started | -healthy | -exited | -gave-up | -stopped
    message: str


async def _port_open(check: HealthCheck) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(check.host, check.port), timeout=1.0)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class Service:
    """Supervises one `ServiceSpec`. `on_notice` is called on every state change."""

    def __init__(self, spec: ServiceSpec, logs_dir: Path, on_notice: Callable[[ServiceNotice], None]) -> None:
        self.spec = spec
        self._logs_dir = logs_dir
        self._on_notice = on_notice
        self.status = ProcessStatus.STOPPED
        self.pid: int | None = None
        self.restarts = 0  # lifetime restarts after an exit
        self.exit_code: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._owned: OwnedProcess | None = None
        self._task: asyncio.Task[None] | None = None
        self._wanted = False
        self._wake = asyncio.Event()  # interrupts a restart delay or a health wait
        self._healthy = asyncio.Event()
        self._settled = asyncio.Event()  # healthy, or failed to become so

    @property
    def name(self) -> str:
        return self.spec.name

    def record(self, cpu_percent: float = 0.0, memory_rss: int = 0) -> ProcessRecord:
        return ProcessRecord(
            self.name, self.pid, self.status, self.restarts, self.exit_code, cpu_percent, memory_rss
        )

    def owned(self) -> OwnedProcess | None:
        """The live process (PID + start time) to record, so a successor agent can stop it."""
        if self._proc is None or self._proc.returncode is not None:
            return None
        return self._owned

    def _notice(self, kind: str, message: str) -> None:
        log.info("%s: %s", self.name, message)
        self._on_notice(ServiceNotice(self.name, kind, message))

    def start(self) -> None:
        """Start supervising (no-op when already supervised)."""
        if self._task is not None and not self._task.done():
            return
        self._wanted = True
        self._wake.clear()
        self._healthy.clear()
        self._settled.clear()
        self._task = asyncio.create_task(self._supervise(), name=f"service:{self.name}")

    async def wait_settled(self) -> bool:
        """Wait until the first start is healthy (True) or has failed (False)."""
        await self._settled.wait()
        return self._healthy.is_set()

    async def stop(self) -> None:
        """Stop it and its process group; SIGKILL after `stop_timeout`. Idempotent."""
        self._wanted = False
        self._wake.set()
        self._settled.set()
        await self._terminate()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self.status != ProcessStatus.STOPPED:
            self.status = ProcessStatus.STOPPED
            self._notice("service-stopped", f"stopped (pid {self.pid})")

    async def restart(self) -> None:
        await self.stop()
        self.start()

    async def _spawn(self) -> asyncio.subprocess.Process:
        self._logs_dir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.spec.env}
        with open(self._logs_dir / f"{self.name}.log", "ab") as out:
            return await asyncio.create_subprocess_exec(
                *self.spec.argv,
                cwd=self.spec.cwd,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,
            )

    async def _wait_healthy(self, proc: asyncio.subprocess.Process, check: HealthCheck) -> bool:
        deadline = time.monotonic() + check.timeout
        delay = 0.02
        while proc.returncode is None and self._wanted:
            if await _port_open(check):
                return True
            if time.monotonic() >= deadline:
                return False
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            delay = min(delay * 1.5, 0.1)  # a late check delays the whole node coming up
        return False

    async def _wait_required(self, check: HealthCheck) -> bool:
        """Wait until `check`'s address accepts connections (False: stopped meanwhile)."""
        delay, told = 0.02, False
        while self._wanted:
            if await _port_open(check):
                return True
            if not told:
                self._notice("service-waiting", f"waiting for {check.host}:{check.port} before starting")
                told = True
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            delay = min(delay * 1.5, 0.05)  # a connect attempt is cheap; each ms here delays the node
        return False

    async def _run_once(self) -> float:
        """Spawn, wait for health, wait for exit. Returns how long it ran."""
        if self.spec.requires is not None:
            self.status = ProcessStatus.STARTING
            if not await self._wait_required(self.spec.requires):
                return 0.0
        started = time.monotonic()
        try:
            proc = await self._spawn()
        except OSError as e:
            self.pid, self.exit_code, self.status = None, None, ProcessStatus.FAILED
            self._settled.set()
            self._notice("service-exited", f"could not start {self.spec.argv[0]!r}: {e}")
            return 0.0
        self._proc, self.pid = proc, proc.pid
        # Taken while the child can't be reaped yet, so the PID can't have been reused.
        with contextlib.suppress(psutil.Error):
            self._owned = OwnedProcess.of(self.name, proc.pid)
        self.status = ProcessStatus.STARTING if self.spec.health else ProcessStatus.RUNNING
        self._notice("service-started", f"started (pid {proc.pid})")
        if self.spec.health is None:
            self._healthy.set()
        elif await self._wait_healthy(proc, self.spec.health):
            self.status = ProcessStatus.RUNNING
            self._healthy.set()
            self._notice("service-healthy", f"healthy on {self.spec.health.host}:{self.spec.health.port}")
        elif proc.returncode is None and self._wanted:
            self._notice("service-exited", f"not healthy within {self.spec.health.timeout:g}s; stopping it")
            await self._terminate()
        self._settled.set()
        code = await proc.wait()
        if self._wanted:
            self.exit_code, self.status = code, ProcessStatus.FAILED
            self._notice("service-exited", f"pid {proc.pid} exited with {code}")
            # The leader is gone; helpers it left in its group go with it.
            _signal_group(proc.pid, signal.SIGKILL)
        return time.monotonic() - started

    async def _supervise(self) -> None:
        failures = 0  # consecutive
        while self._wanted:
            ran_for = await self._run_once()
            if not self._wanted:
                break
            failures = 1 if ran_for >= self.spec.stable_after else failures + 1
            if not self.spec.restart or failures > self.spec.max_restarts:
                self._notice("service-gave-up", f"not restarted after {failures} consecutive failures")
                return
            delay = min(self.spec.restart_delay * 2 ** (failures - 1), MAX_RESTART_DELAY)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            if self._wanted:
                self.restarts += 1

    async def _terminate(self) -> None:
        proc = self._proc
        if proc is None or proc.returncode is not None:
            return
        # Descendants that left the group (setsid) still die with the service.
        strays = [p for p in tree_of(proc.pid)[1:] if _pgid(p) != proc.pid]
        _signal_group(proc.pid, signal.SIGTERM)
        for p in strays:
            with contextlib.suppress(psutil.Error):
                p.terminate()
        try:
            await asyncio.wait_for(proc.wait(), timeout=self.spec.stop_timeout)
        except asyncio.TimeoutError:
            _signal_group(proc.pid, signal.SIGKILL)
            await proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)
        for p in strays:
            with contextlib.suppress(psutil.Error):
                p.kill()


def _pgid(proc: psutil.Process) -> int | None:
    try:
        return os.getpgid(proc.pid)
    except OSError:
        return None
