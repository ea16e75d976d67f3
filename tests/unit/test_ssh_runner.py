"""The SSH runner against real asyncssh servers on 127.0.0.x: exec, jump, host key pinning, SFTP, forwards,
attach. Servers and the processes they run are started by fixtures and killed at teardown."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import stat
import termios
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sshserver import SshTestServer, set_winsize

from cloudtik_jupyter.errors import CommandFailed, HostKeyChanged, NodeUnreachable, Timeout
from cloudtik_jupyter.ssh.host_keys import SOURCE_PROVIDER, SOURCE_TOFU, HostKeyStore, fingerprint
from cloudtik_jupyter.ssh.keys import ensure_keypair, public_key
from cloudtik_jupyter.ssh.runner import SshRunner, SshTarget
from cloudtik_jupyter.waiting import wait_for

HEAD_IP = "127.0.0.2"  # "A": the public head, the jump host
WORKER_IP = "127.0.0.3"  # "B": a private worker, accepts connections from the head's address only
USER = "cloudtik"

StartServer = Callable[..., Awaitable[SshTestServer]]


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    path = tmp_path / "cluster" / "id_ed25519"
    ensure_keypair(path)
    return path


@pytest.fixture
def store(tmp_path: Path) -> HostKeyStore:
    return HostKeyStore(tmp_path / "cluster" / "host_keys.json")


@pytest.fixture
async def start_server(tmp_path: Path, key_path: Path) -> AsyncIterator[StartServer]:
    started: list[SshTestServer] = []

    async def start(host: str = HEAD_IP, *, port: int = 0, **options: Any) -> SshTestServer:
        home = tmp_path / f"home-{len(started)}"
        home.mkdir()
        server = SshTestServer(host, home, public_key(key_path), **options)
        started.append(server)
        return await server.start(port)

    yield start
    for server in started:
        await server.close()


@pytest.fixture
async def runner(key_path: Path, store: HostKeyStore) -> AsyncIterator[SshRunner]:
    async with SshRunner(key_path, store, connect_timeout=5.0) as r:
        yield r


def target_of(server: SshTestServer, node_id: str = "head", **kw: Any) -> SshTarget:
    return SshTarget(node_id, server.host, server.port, kw.pop("user", USER), **kw)


@pytest.fixture
def unused_port() -> Iterator[int]:
    """A port on HEAD_IP that refuses connections: bound (so nobody else takes it) but not listening."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((HEAD_IP, 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


# -- keys -------------------------------------------------------------------------------------------


def test_keypair_is_private_and_stable(tmp_path: Path) -> None:
    path = tmp_path / "state" / "keys" / "id_ed25519"
    pub = ensure_keypair(path)
    assert pub.startswith("ssh-ed25519 ")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert ensure_keypair(path) == pub == public_key(path)
    assert [p.name for p in path.parent.iterdir()] == ["id_ed25519"]  # no temp file left behind


# -- exec -------------------------------------------------------------------------------------------


async def test_run_reports_exit_status_and_exact_output(start_server: StartServer, runner: SshRunner) -> None:
    server = await start_server()
    result = await runner.run(target_of(server), "echo out; printf 'err\\n' >&2; exit 3", check=False)
    assert (result.node_id, result.exit_status, result.stdout, result.stderr) == ("head", 3, "out\n", "err\n")
    ok = await runner.run(
        target_of(server), 'cat; echo "$GREETING"', env={"GREETING": "hi 'there'"}, input="in\n"
    )
    assert (ok.exit_status, ok.stdout, ok.stderr) == (0, "in\nhi 'there'\n", "")
    assert (await runner.run(target_of(server), "pwd")).stdout == f"{server.home}\n"


async def test_check_raises_command_failed_with_the_tail(
    start_server: StartServer, runner: SshRunner
) -> None:
    server = await start_server()
    command = "for i in $(seq 1 50); do echo line$i; done; echo boom >&2; exit 7"
    with pytest.raises(CommandFailed) as info:
        await runner.run(target_of(server), command)
    err = info.value
    assert (err.node, err.command, err.exit_status) == ("head", command, 7)
    tail = err.output_tail.splitlines()
    assert tail[-2:] == ["line50", "boom"] and "line1" not in tail and len(tail) <= 20
    assert "exited with 7" in str(err) and "boom" in str(err)


async def test_output_streams_line_by_line_as_it_arrives(
    start_server: StartServer, runner: SshRunner
) -> None:
    server = await start_server()
    seen: list[tuple[str, str, str]] = []

    def on_output(node: str, stream: str, line: str) -> None:
        seen.append((node, stream, line))
        if line == "first":  # the command waits for this: it only ends if "first" arrived before the end
            (server.home / "release").touch()

    command = (
        "echo first; while [ ! -e release ]; do sleep 0.01; done; echo second; echo third >&2; printf tail"
    )
    result = await runner.run(target_of(server), command, on_output=on_output, timeout=20)
    assert seen == [
        ("head", "stdout", "first"),
        ("head", "stdout", "second"),
        ("head", "stderr", "third"),
        ("head", "stdout", "tail"),
    ]
    assert result.stdout == "first\nsecond\ntail"

    lines: list[str] = []
    await runner.run(target_of(server), "seq 1 5000", on_output=lambda _n, _s, line: lines.append(line))
    assert lines == [str(i) for i in range(1, 5001)]


async def test_timeout_closes_the_command(start_server: StartServer, runner: SshRunner) -> None:
    server = await start_server()
    started = time.monotonic()
    with pytest.raises(Timeout, match="sleep 30"):
        await runner.run(target_of(server), "sleep 30", timeout=0.3)
    assert time.monotonic() - started < 5
    assert (await runner.run(target_of(server), "echo still-usable")).stdout == "still-usable\n"


async def test_run_many_keeps_order_and_bounds_concurrency(
    start_server: StartServer, runner: SshRunner
) -> None:
    server = await start_server()
    targets = [target_of(server, f"node-{i}", user=f"u{i}") for i in range(8)]
    gate = "while [ ! -e go ]; do sleep 0.01; done; echo $USER"
    task = asyncio.create_task(runner.run_many(targets, gate, concurrency=3))
    await wait_for(lambda: server.running == 3, timeout=20, what="3 commands running")
    assert server.running == 3 and not task.done()
    (server.home / "go").touch()
    results = await asyncio.wait_for(task, 20)
    assert server.max_running == 3
    assert [(r.node_id, r.stdout) for r in results] == [(f"node-{i}", f"u{i}\n") for i in range(8)]


async def test_connection_is_cached_and_reopened_when_closed(
    start_server: StartServer, runner: SshRunner
) -> None:
    server = await start_server()
    target = target_of(server)
    conn = await runner.connection(target)
    assert await runner.connection(target) is conn
    conn.close()
    await conn.wait_closed()
    assert (await runner.run(target, "echo again")).stdout == "again\n"
    assert (await runner.connection(target)) is not conn
    assert len(server.peers) == 2  # exactly one reconnect


async def test_a_connection_dropped_by_the_node_is_replaced(
    start_server: StartServer, runner: SshRunner
) -> None:
    server = await start_server()
    target = target_of(server)
    await runner.run(target, "true")
    await server.drop_connections()  # the client may not have noticed yet: the run must still work
    assert (await runner.run(target, "echo back")).stdout == "back\n"
    await server.close()
    with pytest.raises(NodeUnreachable, match="head"):
        await runner.run(target, "true")


# -- jump -------------------------------------------------------------------------------------------


async def test_worker_is_reached_only_through_the_head(
    start_server: StartServer, runner: SshRunner, key_path: Path, store: HostKeyStore
) -> None:
    head = await start_server(HEAD_IP, forward_from=HEAD_IP)
    worker = await start_server(WORKER_IP, allow_from=HEAD_IP)
    direct = target_of(worker, "worker-1")
    with pytest.raises(NodeUnreachable, match="worker-1"):
        await runner.run(direct, "true")
    assert worker.peers == []

    via_head = target_of(worker, "worker-1", jump=target_of(head))
    result = await runner.run(via_head, "echo $SSH_PEER")
    assert result.stdout == f"{HEAD_IP}\n"
    assert store.get("worker-1") is not None and store.get("head") is not None

    # On the head itself, the controller connects directly from the head's own address.
    async with SshRunner(key_path, store, local_addr=HEAD_IP) as on_head:
        assert (await on_head.run(direct, "echo $SSH_PEER")).stdout == f"{HEAD_IP}\n"


# -- host keys --------------------------------------------------------------------------------------


async def test_first_contact_pins_and_a_changed_key_is_refused(
    start_server: StartServer, runner: SshRunner, key_path: Path, store: HostKeyStore
) -> None:
    original = await start_server()
    impostor = await start_server()
    await runner.run(target_of(original, "n1"), "true")
    pinned = store.get("n1")
    assert pinned is not None and pinned.source == SOURCE_TOFU
    assert pinned.host_key == original.host_key_line
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600

    async with SshRunner(key_path, store) as other:
        with pytest.raises(HostKeyChanged) as info:
            await other.run(target_of(impostor, "n1"), "true")
        message = str(info.value)
        for part in ("n1", f"{impostor.host}:{impostor.port}", "CHANGED", "forget"):
            assert part in message
        assert fingerprint(original.host_key_line) in message
        assert fingerprint(impostor.host_key_line) in message
        assert store.get("n1") == pinned  # the pin is not touched
        assert len(impostor.peers) == 1 and impostor.running == 0  # refused before any command

        # wait_for_ssh does not retry a changed key into a timeout: it fails at once.
        with pytest.raises(HostKeyChanged):
            await other.wait_for_ssh(target_of(impostor, "n1"), timeout=30)

        assert store.forget("n1")
        await other.run(target_of(impostor, "n1"), "true")
        assert store.get("n1").host_key == impostor.host_key_line  # type: ignore[union-attr]


async def test_provider_vouched_key_is_required_on_first_contact(
    start_server: StartServer, runner: SshRunner, store: HostKeyStore
) -> None:
    server = await start_server()
    other = await start_server()
    with pytest.raises(HostKeyChanged, match="provider") as info:
        await runner.run(target_of(server, "n2", host_key=other.host_key_line), "true")
    assert fingerprint(other.host_key_line) in str(info.value)
    assert fingerprint(server.host_key_line) in str(info.value)
    assert store.get("n2") is None

    await runner.run(target_of(server, "n2", host_key=server.host_key_line), "true")
    pinned = store.get("n2")
    assert pinned is not None and pinned.source == SOURCE_PROVIDER and pinned.host_key == server.host_key_line


# -- waiting for SSH --------------------------------------------------------------------------------


async def test_wait_for_ssh_gives_up_with_the_last_error(runner: SshRunner, unused_port: int) -> None:
    target = SshTarget("n3", HEAD_IP, unused_port, USER)
    started = time.monotonic()
    with pytest.raises(NodeUnreachable) as info:
        await runner.wait_for_ssh(target, timeout=0.5)
    waited = time.monotonic() - started
    assert 0.5 <= waited < 3
    message = str(info.value)
    assert f"n3 at {HEAD_IP}:{unused_port}" in message and "after 0." in message
    assert "refused" in message.lower()


async def test_wait_for_ssh_succeeds_once_the_server_listens(
    start_server: StartServer, runner: SshRunner
) -> None:
    reserved = socket.socket()
    reserved.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    reserved.bind((HEAD_IP, 0))
    port = reserved.getsockname()[1]
    failed = asyncio.Event()
    target = SshTarget("n4", HEAD_IP, port, USER)
    waiting = asyncio.create_task(runner.wait_for_ssh(target, timeout=20, on_retry=lambda _e: failed.set()))
    try:
        await asyncio.wait_for(failed.wait(), 10)  # it really waited: one attempt was refused
    finally:
        reserved.close()
    await start_server(HEAD_IP, port=port)
    await asyncio.wait_for(waiting, 20)
    assert (await runner.run(target, "echo up")).stdout == "up\n"


# -- files and ports --------------------------------------------------------------------------------


def _tree(root: Path) -> dict[str, tuple[str, bytes | str, int]]:
    found: dict[str, tuple[str, bytes | str, int]] = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = ("link", os.readlink(path), 0)
        elif path.is_dir():
            found[rel] = ("dir", b"", 0)
        else:
            found[rel] = ("file", path.read_bytes(), stat.S_IMODE(path.stat().st_mode))
    return found


async def test_sftp_copies_directory_trees_both_ways(
    start_server: StartServer, runner: SshRunner, tmp_path: Path
) -> None:
    server = await start_server()
    target = target_of(server)
    src = tmp_path / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "empty").mkdir()
    (src / "a.txt").write_text("alpha\n")
    (src / "sub" / "blob.bin").write_bytes(os.urandom(300_000))
    script = src / "sub" / "deeper" / "run.sh"
    script.write_text("#!/bin/sh\necho ran\n")
    script.chmod(0o755)
    (src / "link").symlink_to("a.txt")

    await runner.upload(target, src, "~/deploy/app")  # parents created
    assert _tree(server.home / "deploy" / "app") == _tree(src)
    assert (await runner.run(target, "deploy/app/sub/deeper/run.sh")).stdout == "ran\n"
    (src / "a.txt").write_text("changed\n")
    await runner.upload(target, src, "~/deploy/app")  # again: same place, updated, not nested
    assert _tree(server.home / "deploy" / "app") == _tree(src)

    back = tmp_path / "back" / "app"
    await runner.download(target, "~/deploy/app", back)
    assert _tree(back) == _tree(src)

    await runner.upload(target, src / "a.txt", "~/one/two/file.txt")
    assert (server.home / "one" / "two" / "file.txt").read_text() == "changed\n"
    await runner.download(target, f"{server.home}/one/two/file.txt", tmp_path / "x" / "f.txt")
    assert (tmp_path / "x" / "f.txt").read_text() == "changed\n"


async def test_local_port_forward_reaches_a_service_behind_the_node(
    start_server: StartServer, runner: SshRunner
) -> None:
    server = await start_server(HEAD_IP)

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(await reader.readline())
        await writer.drain()
        writer.close()

    echo_server = await asyncio.start_server(echo, WORKER_IP, 0)
    echo_port = echo_server.sockets[0].getsockname()[1]
    listener = await runner.forward_local_port(target_of(server), WORKER_IP, echo_port)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", listener.get_port())
        writer.write(b"ping through ssh\n")
        assert await asyncio.wait_for(reader.readline(), 10) == b"ping through ssh\n"
        writer.close()
        await writer.wait_closed()
    finally:
        listener.close()
        echo_server.close()
        await echo_server.wait_closed()


# -- attach -----------------------------------------------------------------------------------------


async def test_attach_bridges_a_raw_local_tty_to_a_remote_pty(
    start_server: StartServer, runner: SshRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = await start_server()
    monkeypatch.setenv("TERM", "xterm-test")
    loop = asyncio.get_running_loop()
    master, slave = os.openpty()  # the test is the user at the keyboard on `master`
    set_winsize(slave, 33, 101)
    before = termios.tcgetattr(slave)
    screen = bytearray()

    def on_screen() -> None:
        try:
            screen.extend(os.read(master, 65536))
        except OSError:
            loop.remove_reader(master)

    loop.add_reader(master, on_screen)
    command = 'stty size; echo "term=$TERM"; read line; stty size; echo "got=$line"; exit 3'
    session = asyncio.create_task(
        runner.attach(target_of(server), command, tty_in=slave, tty_out=slave, tty_err=slave)
    )
    try:
        await wait_for(lambda: b"term=xterm-test" in screen, timeout=20, what="the remote prompt")
        assert b"33 101" in screen
        lflag = termios.tcgetattr(slave)[3]
        assert not lflag & (termios.ICANON | termios.ECHO | termios.ISIG)  # raw while attached

        set_winsize(slave, 40, 120)
        os.kill(os.getpid(), signal.SIGWINCH)  # what the terminal emulator does on resize
        await wait_for(lambda: server.term_sizes[-1:] == [(120, 40)], timeout=10, what="the resize")
        os.write(master, b"hello\r")
        assert await asyncio.wait_for(session, 20) == 3
        await wait_for(lambda: b"got=hello" in screen, timeout=10, what="the echoed line")
        assert b"40 120" in screen
        assert termios.tcgetattr(slave) == before  # the terminal is restored
    finally:
        session.cancel()
        loop.remove_reader(master)
        os.close(master)
        os.close(slave)


async def test_attach_without_a_tty_bridges_plain_pipes(start_server: StartServer, runner: SshRunner) -> None:
    server = await start_server()
    in_read, in_write = os.pipe()
    out_read, out_write = os.pipe()
    try:
        os.write(in_write, b"piped input\n")
        os.close(in_write)  # EOF after the input, as with `cloudtik attach < file`
        status = await runner.attach(
            target_of(server), 'cat; [ -t 0 ] || echo "no pty"; exit 4', tty_in=in_read, tty_out=out_write
        )
        assert status == 4
        os.close(out_write)
        assert os.read(out_read, 65536) == b"piped input\nno pty\n"
    finally:
        for fd in (in_read, out_read, out_write):
            with contextlib.suppress(OSError):
                os.close(fd)
