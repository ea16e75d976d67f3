"""Class-data-sharing archives for the Spark daemons: a JVM that maps one starts ~3x faster.

An archive is what a JVM loaded in one run (``-XX:ArchiveClassesAtExit``), reused by later runs
(``-XX:SharedArchiveFile``). Setup makes one per daemon role, once per machine, by starting the daemons on
127.0.0.1 with throwaway ports and stopping them. The name hashes everything the JVM checks (JDK, Spark
jars, flags), so an upgrade simply makes a new one; a missing or stale archive is ignored by the JVM.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import json
import os
import signal
import socket
import subprocess
import tempfile
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

from ...errors import Timeout
from ...waiting import wait_for_sync
from ..secret import ensure_secret
from .archives import CACHE_ENV, archive_path, cache_dir, missing_archives
from .auth import write_properties
from .config import SparkConfig
from .daemons import (
    JvmOptions,
    history_service,
    master_service,
    worker_service,
)
from .install import SparkInstall

__all__ = ["CACHE_ENV", "archive_path", "build_archives", "cache_dir", "jvm_options", "missing_archives"]

TRAIN_TIMEOUT = 180.0
LOCK_TIMEOUT = 300.0  # another process on this machine may be building the same archives


def jvm_options(install: SparkInstall, config: SparkConfig, role: str) -> JvmOptions:
    return JvmOptions(use_archive=archive_path(install, role) if config.class_data_sharing else None)


@contextlib.contextmanager
def _exclusive(lock_file: Path, timeout: float) -> Iterator[None]:
    with open(lock_file, "a") as f:

        def acquired() -> bool:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True

        wait_for_sync(acquired, timeout=timeout, what=f"the lock on {lock_file}")
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _free_port(host: str) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _listening(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _alive_workers(host: str, port: int) -> int:
    url = f"http://{host}:{port}/json/"
    with contextlib.suppress(OSError, ValueError), urllib.request.urlopen(url, timeout=2) as r:
        return int(json.load(r).get("aliveworkers", 0))
    return 0


def build_archives(
    install: SparkInstall,
    roles: Sequence[str],
    directory: Path | None = None,
    *,
    host: str = "127.0.0.1",
    timeout: float = TRAIN_TIMEOUT,
) -> list[Path]:
    """Make the archives of `roles` that are missing; returns the ones made. Safe to run concurrently."""
    directory = directory or cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    if not missing_archives(install, roles, directory):
        return []
    with _exclusive(directory / ".lock", LOCK_TIMEOUT):
        todo = missing_archives(install, roles, directory)
        if not todo:
            return []  # made by whoever held the lock
        with tempfile.TemporaryDirectory(dir=directory, prefix="train-") as tmp:
            return _train(install, todo, directory, Path(tmp), host, timeout)


def _train(
    install: SparkInstall, roles: list[str], directory: Path, tmp: Path, host: str, timeout: float
) -> list[Path]:
    ports = {
        k: _free_port(host) for k in ("master_port", "master_ui_port", "history_ui_port", "worker_ui_port")
    }
    config = SparkConfig.model_validate({**ports, "daemon_memory": 256})

    def jvm(role: str) -> JvmOptions:
        return JvmOptions(dump_archive=tmp / f"{role}.jsa" if role in roles else None)

    # Trained with authentication, as they run (and nobody else can use the short-lived master).
    conf = write_properties(tmp, ensure_secret(tmp / "secret"))
    # A worker needs a master to register with; the master runs whenever the worker is trained.
    specs = []
    if "master" in roles or "worker" in roles:
        specs.append(master_service(install, config, host, jvm("master"), conf=conf))
    if "worker" in roles:
        work = tmp / "work"
        specs.append(worker_service(install, config, host, host, (1, 256), work, jvm("worker"), conf=conf))
    if "history" in roles:
        events = tmp / "events"
        specs.append(
            history_service(install, config, host, (events.as_uri(), events), jvm("history"), conf=conf)
        )

    procs: list[subprocess.Popen[bytes]] = []
    try:
        with open(tmp / "train.log", "wb") as log:
            for spec in specs:
                if spec.requires is not None:  # the worker after its master, as the agent starts them
                    wait_for_sync(
                        functools.partial(_listening, spec.requires.host, spec.requires.port),
                        timeout=timeout,
                        what=f"{spec.name}'s prerequisite {spec.requires.port} (training)",
                    )
                procs.append(
                    subprocess.Popen(
                        spec.argv,
                        env={**os.environ, **spec.env},
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        for spec in specs:
            assert spec.health is not None
            port = spec.health.port
            wait_for_sync(
                functools.partial(_listening, host, port),
                timeout=timeout,
                what=f"{spec.name} to listen (training)",
            )
        if "worker" in roles:
            # Registration loads the classes of the worker's steady state; a late worker retries within 15s.
            with contextlib.suppress(Timeout):
                wait_for_sync(
                    lambda: _alive_workers(host, config.master_ui_port) > 0, timeout=20, what="registration"
                )
        for proc in procs:
            proc.send_signal(signal.SIGTERM)  # the JVM writes its archive as it exits
        for proc in procs:
            proc.wait(timeout=60)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    made = []
    for role in roles:
        dumped = tmp / f"{role}.jsa"
        if dumped.is_file() and dumped.stat().st_size > 0:
            final = archive_path(install, role, directory)
            os.replace(dumped, final)
            made.append(final)
    return made
