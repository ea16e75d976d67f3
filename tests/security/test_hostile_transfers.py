"""Downloads from a node that lies: symlinks planted between two downloads, names with ``/`` and ``..``,
endless nesting, set-id modes. A real asyncssh server serves them (its SFTP listing forged where a real
file system could not hold the name); nothing may be written outside the destination."""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import asyncssh
import pytest

from cloudtik_jupyter.errors import CloudtikError
from cloudtik_jupyter.ssh.host_keys import HostKeyStore
from cloudtik_jupyter.ssh.keys import ensure_keypair, public_key
from cloudtik_jupyter.ssh.runner import SshRunner, SshTarget
from tests.unit.sshserver import SshTestServer, _HomeSftp

HOST = "127.0.0.2"


def forged(names: dict[bytes, list[tuple[bytes, int]]]) -> type[_HomeSftp]:
    """An SFTP server whose listing of a directory (by its last path part) is `names`: (name, mode)."""

    class Forged(_HomeSftp):
        async def scandir(self, path: bytes) -> AsyncIterator[asyncssh.SFTPName]:
            listing = names.get(os.path.basename(path.rstrip(b"/")))
            if listing is None:
                async for entry in super().scandir(path):
                    yield entry
                return
            for name, mode in listing:
                yield asyncssh.SFTPName(name, attrs=asyncssh.SFTPAttrs(permissions=mode, size=1))

        def lstat(self, path: bytes) -> object:
            if os.path.basename(path.rstrip(b"/")) in names or b"/deep" in path:
                return asyncssh.SFTPAttrs(permissions=stat.S_IFDIR | 0o755)
            return super().lstat(path)

    return Forged


Node = tuple[SshTestServer, SshRunner, SshTarget]
StartNode = Callable[..., Awaitable[Node]]


@pytest.fixture
async def start_node(tmp_path: Path) -> AsyncIterator[StartNode]:
    """Start the node's SSH server (optionally with a forged SFTP listing) and a runner to it."""
    key = tmp_path / "key" / "id_ed25519"
    ensure_keypair(key)
    home = tmp_path / "node-home"
    home.mkdir()
    servers: list[SshTestServer] = []

    async def start(sftp: type[_HomeSftp] | None = None) -> Node:
        server = await SshTestServer(HOST, home, public_key(key), sftp_base=sftp).start()
        servers.append(server)
        runner = SshRunner(key, HostKeyStore(tmp_path / "key" / "host_keys.json"), connect_timeout=5.0)
        return server, runner, SshTarget("node", HOST, server.port, "cloudtik")

    yield start
    for server in servers:
        await server.close()


def outside_listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


async def test_a_symlink_planted_between_two_downloads_is_not_followed(
    start_node: StartNode, tmp_path: Path
) -> None:
    server, runner, target = await start_node()
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("precious")
    loot = server.home / "loot"
    loot.mkdir()
    (loot / "planted").symlink_to(victim)  # the node serves a link to a file of the user's
    (loot / "dir").symlink_to(outside)  # ... and to a directory of the user's
    dest = tmp_path / "dest"
    async with runner:
        await runner.download(target, "~/loot", dest)
        assert os.readlink(dest / "planted") == str(victim)  # kept as a link, as the node has it
        # The node swaps the links for a file and a directory with content of its choosing ...
        (loot / "planted").unlink()
        (loot / "planted").write_text("pwned")
        (loot / "dir").unlink()
        (loot / "dir").mkdir()
        (loot / "dir" / "dropped.sh").write_text("pwned")
        await runner.download(target, "~/loot", dest)
    # ... and the second download replaces the local links instead of writing through them.
    assert victim.read_text() == "precious"
    assert outside_listing(outside) == {"victim.txt": b"precious"}
    assert not (dest / "planted").is_symlink() and (dest / "planted").read_text() == "pwned"
    assert not (dest / "dir").is_symlink() and (dest / "dir" / "dropped.sh").read_text() == "pwned"


async def test_a_single_file_download_over_a_planted_link_replaces_the_link(
    start_node: StartNode, tmp_path: Path
) -> None:
    server, runner, target = await start_node()
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (server.home / "f").symlink_to(victim)
    dest = tmp_path / "dest" / "f"
    async with runner:
        await runner.download(target, "~/f", dest)
        assert dest.is_symlink()
        (server.home / "f").unlink()
        (server.home / "f").write_text("pwned")
        await runner.download(target, "~/f", dest)
    assert victim.read_text() == "precious" and dest.read_text() == "pwned" and not dest.is_symlink()


@pytest.mark.parametrize("name", [b"../escape", b"a/b", b"/etc/cron.d/x", b"", b"nul\x00byte"])
async def test_names_that_are_paths_are_refused(start_node: StartNode, tmp_path: Path, name: bytes) -> None:
    sftp = forged({b"loot": [(b"fine.txt", stat.S_IFREG | 0o644), (name, stat.S_IFREG | 0o644)]})
    server, runner, target = await start_node(sftp)
    (server.home / "loot").mkdir()
    dest = tmp_path / "box" / "dest"
    async with runner:
        with pytest.raises(CloudtikError, match=r"download refused: .* lists an unsafe name"):
            await runner.download(target, "~/loot", dest)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if "node-home" not in p.parts)
    assert [w for w in written if not w.startswith(("key", "box"))] == []
    assert not (tmp_path / "escape").exists() and not (tmp_path / "box" / "escape").exists()


async def test_endless_nesting_is_refused(start_node: StartNode, tmp_path: Path) -> None:
    sftp = forged({b"deep": [(b"deep", stat.S_IFDIR | 0o755)]})  # every level lists one more
    _, runner, target = await start_node(sftp)
    async with runner:
        with pytest.raises(CloudtikError, match="nests more than 64 directories"):
            await runner.download(target, "/deep", tmp_path / "dest")


async def test_set_id_bits_and_loose_modes_are_not_copied(start_node: StartNode, tmp_path: Path) -> None:
    server, runner, target = await start_node()
    tool = server.home / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o6777)
    dest = tmp_path / "tool"
    old = os.umask(0o022)
    try:
        async with runner:
            await runner.download(target, "~/tool", dest)
    finally:
        os.umask(old)
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755  # no set-uid/gid, not writable by others
