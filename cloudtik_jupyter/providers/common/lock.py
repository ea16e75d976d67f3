"""One change at a time per workspace: a local lock (a file, for this machine) and a lock object in the
cloud (for other machines), both refusing at once with a message that says who holds them.

A holder that died leaves its lock behind; it is taken over when it is stale: its lease ran out, or it
was taken on this machine by a process that no longer runs.
"""

from __future__ import annotations

import contextlib
import os
import re
import socket
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Protocol

from ...errors import Busy
from . import cancel

LEASE_SECONDS = 2 * 3600  # longer than any create or delete (a NAT gateway takes minutes)
_UNSAFE = re.compile(r"[^a-z0-9_-]+")
_held: set[str] = set()  # owners of the locks this process holds now


def host_id() -> str:
    """This machine's name as every cloud accepts it in a tag or label value."""
    return _UNSAFE.sub("-", socket.gethostname().lower())[:63] or "unknown"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@dataclass(frozen=True)
class LockRecord:
    """Who holds a workspace's lock, for what, until when."""

    owner: str  # unique per acquisition
    operation: str  # "create" | "delete"
    host: str
    pid: int
    expires: int  # epoch seconds

    @classmethod
    def new(cls, operation: str, lease: float = LEASE_SECONDS) -> LockRecord:
        return cls(uuid.uuid4().hex[:16], operation, host_id(), os.getpid(), int(time.time() + lease))

    def stale(self, now: float | None = None) -> bool:
        if self.expires < (now if now is not None else time.time()):
            return True
        if self.host != host_id():
            return False
        if self.pid == os.getpid():  # ours: stale unless still held (a release whose answer was lost)
            return self.owner not in _held
        return not _alive(self.pid)

    def describe(self) -> str:
        until = time.strftime("%H:%M:%S", time.localtime(self.expires))
        return f"a {self.operation} by process {self.pid} on {self.host} (lease until {until})"

    def tags(self) -> dict[str, str]:
        """As tag or label values (lowercase letters, digits, - and _: valid on every cloud)."""
        return {
            "owner": self.owner,
            "operation": self.operation,
            "host": self.host,
            "pid": str(self.pid),
            "expires": str(self.expires),
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> LockRecord | None:
        try:
            return cls(tags["owner"], tags["operation"], tags["host"], int(tags["pid"]), int(tags["expires"]))
        except (KeyError, ValueError):
            return None


class CloudLock(Protocol):
    """A lock object in the cloud with an atomic create (the cloud refuses a second one)."""

    def create(self, record: LockRecord) -> bool: ...  # False: one exists already

    def read(self) -> LockRecord | None: ...

    def delete(self, record: LockRecord) -> None: ...  # only the lock `record` describes


def _busy(workspace: str, holder: LockRecord | None, where: str) -> Busy:
    who = holder.describe() if holder else "another operation"
    return Busy(
        f"workspace {workspace!r} is being changed by {who} ({where}); "
        f"wait for it to finish, then run this again"
    )


@contextlib.contextmanager
def hold_cloud_lock(lock: CloudLock, workspace: str, record: LockRecord) -> Iterator[LockRecord]:
    """Take the cloud lock (taking over a stale one), run the body, release it (also when cancelled)."""
    for _ in range(3):
        if lock.create(record):
            break
        holder = lock.read()
        if holder is None:
            continue  # released in the meantime
        if holder.owner == record.owner:
            break  # our create went through, its answer was lost
        if not holder.stale():
            raise _busy(workspace, holder, "lock in the cloud")
        lock.delete(holder)
    else:
        raise _busy(workspace, lock.read(), "lock in the cloud")
    _held.add(record.owner)
    try:
        yield record
    finally:
        _held.discard(record.owner)
        # Releasing must not be cancelled itself; a lost release is taken over as stale later.
        with cancel.scope(cancel.CancelToken()), contextlib.suppress(Exception):
            lock.delete(record)


class LocalLock:
    """An exclusive, non-blocking file lock; the file names the holder for the refusal message."""

    def __init__(self, path: Path, workspace: str) -> None:
        self.path = path
        self.workspace = workspace
        self._file: IO[str] | None = None

    def acquire(self, record: LockRecord) -> None:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        f = open(self.path, "a+")  # noqa: SIM115 (held open while locked)
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            f.seek(0)
            holder = _parse(f.read())
            f.close()
            raise _busy(self.workspace, holder, "on this machine") from None
        f.seek(0)
        f.truncate()
        f.write(" ".join(f"{k}={v}" for k, v in record.tags().items()))
        f.flush()
        self._file = f

    def release(self) -> None:
        if self._file is not None:
            import fcntl

            self._file.truncate(0)
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


def _parse(text: str) -> LockRecord | None:
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    return LockRecord.from_tags(fields)


@contextlib.contextmanager
def hold_local_lock(path: Path, workspace: str, record: LockRecord) -> Iterator[None]:
    lock = LocalLock(path, workspace)
    lock.acquire(record)
    try:
        yield
    finally:
        lock.release()


def with_lease(record: LockRecord, seconds: float) -> LockRecord:
    """`record` with another lease (tests make stale locks with it)."""
    return replace(record, expires=int(time.time() + seconds))
