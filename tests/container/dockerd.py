"""A private Docker daemon in a directory, for tests and benchmarks (no registry, no system daemon).

    daemon = start_private_dockerd(Path(tmp))   # raises DockerUnavailable with the reason
    env = daemon.env()                          # DOCKER_HOST points at it
    daemon.stop()                               # stops dockerd (and the containerd it started), by PID

Imported only by tests and benchmarks: nothing in the package depends on it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from cloudtik_jupyter.errors import Timeout
from cloudtik_jupyter.waiting import wait_for_sync

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
# overlay2 is fast; vfs (full copies) works on any filesystem.
STORAGE_DRIVERS = ("overlay2", "vfs")


class DockerUnavailable(Exception):
    """No private daemon can run here; the message says why."""


def _ping(sock: Path) -> bool:
    """The daemon answers on its socket (the Engine API's /_ping)."""
    try:
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(2)
            s.connect(str(sock))
            s.sendall(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n")
            return b"\r\n\r\nOK" in s.recv(4096)
    except OSError:
        return False


def _clean_env() -> dict[str, str]:
    """The daemon's environment: none of a test's CLOUDTIK_* variables (they mark a cluster's processes)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDTIK_") and k != "DOCKER_HOST"}
    env["PATH"] = f"{env.get('PATH', os.defpath)}:/usr/sbin:/usr/bin:/sbin:/bin"
    return env


@dataclass
class PrivateDockerd:
    root: Path
    process: subprocess.Popen[bytes]
    storage_driver: str
    children: list[psutil.Process] = field(default_factory=list)  # containerd and anything it spawned

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    def env(self) -> dict[str, str]:
        return {**os.environ, "DOCKER_HOST": self.host}

    def docker(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args], env=self.env(), capture_output=True, text=True, check=check, timeout=timeout
        )

    def containers(self, *filters: str) -> list[str]:
        """Ids of every container (running or not), optionally filtered (``label=k=v``)."""
        args = [a for f in filters for a in ("--filter", f)]
        return self.docker("ps", "-aq", "--no-trunc", *args).stdout.split()

    def processes(self) -> list[psutil.Process]:
        """dockerd and every process started for it (containerd, shims), found by the root in argv."""
        found = []
        for proc in psutil.process_iter(["cmdline"]):
            with contextlib.suppress(psutil.Error):
                if any(str(self.root) in arg for arg in proc.info["cmdline"] or ()):
                    found.append(proc)
        return found

    def stop(self) -> list[str]:
        """Stop the daemon by PID and wait for its processes; returns what had to be killed (a leak)."""
        helpers = [p for p in self.processes() if p.pid != self.process.pid]
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        _, alive = psutil.wait_procs(helpers, timeout=STOP_TIMEOUT)
        leaked = [f"{p.pid} {' '.join(p.cmdline())}" for p in alive if p.is_running()]
        for proc in alive:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        return leaked

    def mounts(self) -> list[str]:
        """Mount points under the root (dockerd leaves its host network namespace's bind mount)."""
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        return [p for p in points if p == str(self.root) or p.startswith(f"{self.root}/")]

    def remove(self) -> None:
        """Unmount what the daemon left mounted under its root and delete its directories (after `stop`)."""
        for point in sorted(self.mounts(), key=len, reverse=True):
            subprocess.run(["umount", point], capture_output=True, check=False, timeout=30)
        shutil.rmtree(self.root, ignore_errors=True)


def _start(root: Path, driver: str, dockerd: str) -> PrivateDockerd:
    for sub in ("data", "exec"):
        shutil.rmtree(root / sub, ignore_errors=True)
    log = open(root / f"dockerd-{driver}.log", "wb")  # noqa: SIM115 - the daemon keeps writing it
    argv = [
        dockerd,
        f"--data-root={root / 'data'}",
        f"--exec-root={root / 'exec'}",
        f"--pidfile={root / 'docker.pid'}",
        f"--host=unix://{root / 'docker.sock'}",
        "--iptables=false",
        "--ip-masq=false",
        "--bridge=none",
        f"--storage-driver={driver}",
    ]
    with log:
        process = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_clean_env(),
            start_new_session=True,
        )
    daemon = PrivateDockerd(root, process, driver)
    try:
        wait_for_sync(
            lambda: process.poll() is not None or _ping(daemon.socket),
            timeout=START_TIMEOUT,
            what=f"dockerd ({driver}) in {root} to answer",
        )
    except Timeout:
        daemon.stop()
        raise DockerUnavailable(f"dockerd did not answer in {START_TIMEOUT:g}s") from None
    if process.poll() is not None:
        daemon.stop()
        tail = (root / f"dockerd-{driver}.log").read_text(errors="replace").strip().splitlines()[-3:]
        raise DockerUnavailable(f"dockerd ({driver}) exited: {' | '.join(tail)}")
    return daemon


def start_private_dockerd(root: Path) -> PrivateDockerd:
    """Start dockerd with everything under `root` (no bridge, no iptables); overlay2, else vfs."""
    dockerd = shutil.which("dockerd") or next(
        (p for p in ("/usr/sbin/dockerd", "/usr/bin/dockerd") if os.access(p, os.X_OK)), None
    )
    if dockerd is None:
        raise DockerUnavailable(
            "dockerd is not installed (Debian: docker.io; see scripts/install-system-deps.sh)"
        )
    if shutil.which("docker") is None:
        raise DockerUnavailable("the docker CLI is not installed")
    if os.geteuid() != 0:
        raise DockerUnavailable("dockerd needs root here (rootless Docker is not set up)")
    root.mkdir(parents=True, exist_ok=True)
    reasons = []
    for driver in STORAGE_DRIVERS:
        try:
            return _start(root, driver, dockerd)
        except DockerUnavailable as exc:
            reasons.append(str(exc))
    raise DockerUnavailable("; ".join(reasons))
