"""Copy files and directory trees over SFTP, like ``rsync -a`` without deletion.

A directory is copied *as* the destination (``upload(dir, "~/x")`` makes ``~/x`` hold dir's children, on the
first and every later run), symlinks are copied as symlinks, modes and times are kept (on download, minus
set-id bits and what the local umask removes).

A download never writes outside its destination, whatever the node serves: see `download`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import secrets
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import cast

import asyncssh

from ..concurrency import gather_bounded
from ..errors import CloudtikError

PARALLEL_FILES = 8  # SFTP requests pipelined on one session


def remote_path(remote: str) -> str:
    """SFTP resolves relative paths against the login dir, so ``~/x`` is sent as ``x``."""
    if remote in ("~", "~/"):
        return "."
    if remote.startswith("~/"):
        return remote[2:]
    return remote


async def _mkdir(sftp: asyncssh.SFTPClient, path: str) -> None:
    try:
        await sftp.mkdir(path)
    except asyncssh.SFTPError:
        if not await sftp.isdir(path):  # already there is fine; anything else is not
            raise


async def _symlink(sftp: asyncssh.SFTPClient, target: str, path: str) -> None:
    with contextlib.suppress(asyncssh.SFTPNoSuchFile):
        await sftp.remove(path)
    await sftp.symlink(target, path)


async def _bounded(jobs: list[Callable[[], Awaitable[None]]]) -> None:
    await gather_bounded(lambda job: job(), jobs, PARALLEL_FILES)


async def upload(sftp: asyncssh.SFTPClient, local: Path, remote: str) -> None:
    remote = remote_path(remote)
    parent = posixpath.dirname(remote.rstrip("/"))
    if parent and parent not in (".", "/"):
        await sftp.makedirs(parent, exist_ok=True)
    if local.is_symlink():
        await _symlink(sftp, os.readlink(local), remote)
    elif local.is_dir():
        await _upload_tree(sftp, local, remote)
    else:
        await sftp.put(str(local), remote, preserve=True)


async def _upload_tree(sftp: asyncssh.SFTPClient, local: Path, remote: str) -> None:
    jobs: list[Callable[[], Awaitable[None]]] = []
    for dirpath, dirnames, filenames in os.walk(local):  # top-down: parents are made before children
        rel = Path(dirpath).relative_to(local)
        rdir = posixpath.join(remote, *rel.parts) if rel.parts else remote
        await _mkdir(sftp, rdir)
        for name in [*dirnames, *filenames]:
            src, dst = os.path.join(dirpath, name), posixpath.join(rdir, name)
            if os.path.islink(src):
                jobs.append(functools.partial(_symlink, sftp, os.readlink(src), dst))
            elif name in filenames:
                jobs.append(functools.partial(sftp.put, src, dst, preserve=True))
    await _bounded(jobs)


# -- download: the node is less trusted than this machine ----------------------------------------------
#
# Everything written here is written by name inside the destination, never through a symlink: a directory
# that is a symlink (say, one a previous download made because the node served one) is replaced by a real
# directory, and a file is written to a fresh temporary name and renamed into place (a rename replaces a
# symlink instead of following it). Names the node lists are checked before they become local paths.

MAX_DEPTH = 64
CHUNK = 1 << 20


def _safe_name(name: str, where: str) -> str:
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise CloudtikError(f"download refused: {where} lists an unsafe name {name!r}")
    return name


def _inside(path: Path, root: str) -> None:
    resolved = os.path.realpath(path)
    if resolved != root and not resolved.startswith(root.rstrip("/") + "/"):
        raise CloudtikError(f"download refused: {path} resolves outside the destination ({resolved})")


def _real_dir(path: Path, root: str) -> None:
    """Make `path` a real directory of ours: a symlink or file in its place is removed, never followed."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        os.mkdir(path, 0o700)
    else:
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(path)
            os.mkdir(path, 0o700)
    _inside(path, root)


def _local_mode(remote_mode: int) -> int:
    """The node's permission bits, minus set-id bits and whatever this user's umask takes away."""
    umask = os.umask(0)
    os.umask(umask)
    return stat.S_IMODE(remote_mode) & 0o777 & ~umask


async def _get_file(sftp: asyncssh.SFTPClient, src: str, dst: Path, attrs: asyncssh.SFTPAttrs) -> None:
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            async with sftp.open(src, "rb") as remote_file:
                while chunk := await remote_file.read(CHUNK):
                    out.write(cast(bytes, chunk))
            os.fchmod(out.fileno(), _local_mode(attrs.permissions or 0o644))
        if attrs.atime is not None and attrs.mtime is not None:
            os.utime(tmp, (attrs.atime, attrs.mtime), follow_symlinks=False)
        os.replace(tmp, dst)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _local_symlink(target: str, path: Path) -> None:
    """A symlink as the node has it (never followed by anything here later)."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a directory in the way raises: not ours to delete silently
    path.symlink_to(target)


async def download(sftp: asyncssh.SFTPClient, remote: str, local: Path) -> None:
    """Copy a remote file or tree to `local`; nothing is ever written outside `local`."""
    remote = remote_path(remote)
    attrs = await sftp.lstat(remote)
    local = Path(os.path.abspath(local))
    local.parent.mkdir(parents=True, exist_ok=True)  # the user's own choice of place
    root = os.path.join(os.path.realpath(local.parent), local.name)
    jobs: list[Callable[[], Awaitable[None]]] = []
    await _download_entry(sftp, remote, attrs, local, root, jobs, 0)
    await _bounded(jobs)


async def _download_entry(
    sftp: asyncssh.SFTPClient,
    src: str,
    attrs: asyncssh.SFTPAttrs,
    dst: Path,
    root: str,
    jobs: list[Callable[[], Awaitable[None]]],
    depth: int,
) -> None:
    mode = attrs.permissions or 0
    if stat.S_ISLNK(mode):
        _local_symlink(await sftp.readlink(src), dst)
    elif stat.S_ISDIR(mode):
        if depth >= MAX_DEPTH:
            raise CloudtikError(f"download refused: {src} nests more than {MAX_DEPTH} directories deep")
        _real_dir(dst, root)
        for entry in await sftp.readdir(src):
            name = str(entry.filename)
            if name in (".", ".."):
                continue
            _safe_name(name, src)
            await _download_entry(
                sftp, posixpath.join(src, name), entry.attrs, dst / name, root, jobs, depth + 1
            )
    elif stat.S_ISREG(mode) or not mode:
        _inside(dst.parent, root if depth else os.path.dirname(root))
        jobs.append(functools.partial(_get_file, sftp, src, dst, attrs))
    # sockets, fifos, devices: nothing a copy can hold
