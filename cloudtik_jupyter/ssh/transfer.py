"""Copy files and directory trees over SFTP, like ``rsync -a`` without deletion.

A directory is copied *as* the destination (``upload(dir, "~/x")`` makes ``~/x`` hold dir's children, on the
first and every later run), symlinks are copied as symlinks, modes and times are kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import posixpath
import stat
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncssh

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
    slots = asyncio.Semaphore(PARALLEL_FILES)

    async def one(job: Callable[[], Awaitable[None]]) -> None:
        async with slots:
            await job()

    await asyncio.gather(*(one(job) for job in jobs))


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


async def download(sftp: asyncssh.SFTPClient, remote: str, local: Path) -> None:
    remote = remote_path(remote)
    attrs = await sftp.lstat(remote)
    local.parent.mkdir(parents=True, exist_ok=True)
    mode = attrs.permissions or 0
    if stat.S_ISLNK(mode):
        _local_symlink(await sftp.readlink(remote), local)
    elif stat.S_ISDIR(mode):
        jobs: list[Callable[[], Awaitable[None]]] = []
        await _walk_remote(sftp, remote, local, jobs)
        await _bounded(jobs)
    else:
        await sftp.get(remote, str(local), preserve=True)


async def _walk_remote(
    sftp: asyncssh.SFTPClient, remote: str, local: Path, jobs: list[Callable[[], Awaitable[None]]]
) -> None:
    local.mkdir(exist_ok=True)
    for entry in await sftp.readdir(remote):
        name = str(entry.filename)
        if name in (".", ".."):
            continue
        src, dst = posixpath.join(remote, name), local / name
        mode = entry.attrs.permissions or 0
        if stat.S_ISLNK(mode):
            _local_symlink(await sftp.readlink(src), dst)
        elif stat.S_ISDIR(mode):
            await _walk_remote(sftp, src, dst, jobs)
        else:
            jobs.append(functools.partial(sftp.get, src, str(dst), preserve=True))


def _local_symlink(target: str, path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    path.symlink_to(target)
