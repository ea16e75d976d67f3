"""What the security hardening costs: config loading with its bounds, refusing hostile YAML, downloads that
never follow a local link (vs plain ``sftp.get``), granting a worker its Redis user, and the bounded gather.

    .venv/bin/python benchmarks/bench_security.py [--files 300] [--big-mib 32]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncssh

from cloudtik_jupyter.concurrency import gather_bounded
from cloudtik_jupyter.config import load_config_text
from cloudtik_jupyter.errors import ConfigError
from cloudtik_jupyter.ssh import transfer
from cloudtik_jupyter.ssh.host_keys import HostKeyStore
from cloudtik_jupyter.ssh.keys import ensure_keypair, public_key
from cloudtik_jupyter.ssh.runner import SshRunner, SshTarget
from cloudtik_jupyter.state.acl import grant_node
from cloudtik_jupyter.state.redis_server import prepare_redis, start_redis_servers
from cloudtik_jupyter.state.store import StateStore

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "unit"))
from sshserver import SshTestServer

HOST = "127.0.0.2"


def median_ms(run: Callable[[], object], times: int) -> float:
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        run()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def bench_config() -> None:
    spark = "cluster_name: bench\nfrom: virtual-spark\nsetup_commands: [" + ",".join(["ls"] * 50) + "]\n"
    print(
        f"load a config (virtual-spark + 50 commands): {median_ms(lambda: load_config_text(spark), 50):.2f} ms"
    )
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    lines += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, 9)]
    bomb = "\n".join(lines) + "\n"

    def refuse() -> None:
        try:
            load_config_text(bomb)
        except ConfigError:
            return
        raise AssertionError("the alias bomb was accepted")

    print(f"refuse a billion-laughs alias bomb (387M values expanded): {median_ms(refuse, 20):.2f} ms")


async def _plain_get(sftp: asyncssh.SFTPClient, remote: str, local: Path) -> None:
    """The download as it was before (sftp.get into the path, following local links): the baseline."""
    local.mkdir(parents=True, exist_ok=True)
    jobs: list[Callable[[], Awaitable[None]]] = []
    for entry in await sftp.readdir(remote):
        name = str(entry.filename)
        if name not in (".", ".."):
            src, dst = f"{remote}/{name}", str(local / name)
            jobs.append(lambda src=src, dst=dst: sftp.get(src, dst, preserve=True))
    await gather_bounded(lambda job: job(), jobs, transfer.PARALLEL_FILES)


async def bench_download(files: int, big_mib: int) -> None:
    with tempfile.TemporaryDirectory(prefix="cloudtik-bench-") as tmp:
        root = Path(tmp)
        key = root / "key"
        ensure_keypair(key)
        home = root / "home"
        (home / "tree").mkdir(parents=True)
        for i in range(files):
            (home / "tree" / f"f{i:04d}.txt").write_bytes(os.urandom(8 * 1024))
        (home / "tree" / "big.bin").write_bytes(os.urandom(big_mib * 2**20))
        server = await SshTestServer(HOST, home, public_key(key)).start()
        try:
            target = SshTarget("node", HOST, server.port, "me")
            async with SshRunner(key, HostKeyStore(root / "pins.json")) as runner:
                conn = await runner.connection(target)
                async with conn.start_sftp_client() as sftp:
                    timings: dict[str, list[float]] = {"safe": [], "plain": []}
                    for round_ in range(3):
                        for kind in ("plain", "safe"):
                            dest = root / f"{kind}-{round_}"
                            started = time.perf_counter()
                            if kind == "safe":
                                await transfer.download(sftp, "tree", dest)
                            else:
                                await _plain_get(sftp, "tree", dest)
                            timings[kind].append(time.perf_counter() - started)
            safe, plain = (statistics.median(timings[k]) for k in ("safe", "plain"))
            size = files * 8 / 1024 + big_mib
            print(
                f"download {files} small files + {big_mib} MiB: safe {safe:.2f} s, plain sftp.get {plain:.2f} s "
                f"(ratio {safe / plain:.2f}; {size / safe:.0f} MiB/s)"
            )
        finally:
            await server.close()


async def bench_acl() -> None:
    with tempfile.TemporaryDirectory(prefix="cloudtik-bench-") as tmp:
        plan = prepare_redis(Path(tmp) / "redis", "127.0.0.3", shards=2, primary_port=6999)
        servers = await start_redis_servers(plan)
        try:
            async with StateStore.connect(plan.endpoints) as store:
                samples = []
                for i in range(100):
                    started = time.perf_counter()
                    await grant_node(store, plan.base_dir, f"w-{i}")
                    samples.append((time.perf_counter() - started) * 1000)
            print(
                f"grant a worker its Redis user (file + ACL LOAD on 3 servers): median {statistics.median(samples):.2f} ms,"
                f" the 100th {samples[-1]:.2f} ms"
            )
        finally:
            await servers.stop()


async def bench_gather(count: int) -> None:
    async def one(i: int) -> int:
        await asyncio.sleep(0)
        return i

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(count)))
    plain = time.perf_counter() - started
    started = time.perf_counter()
    await gather_bounded(one, range(count), 16)
    bounded = time.perf_counter() - started
    print(
        f"{count} trivial coroutines: asyncio.gather {plain * 1000:.0f} ms, gather_bounded(16) {bounded * 1000:.0f} ms"
        f" (ratio {bounded / plain:.2f}; at most 16 alive instead of {count})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--files", type=int, default=300)
    parser.add_argument("--big-mib", type=int, default=32)
    args = parser.parse_args()
    bench_config()
    asyncio.run(bench_download(args.files, args.big_mib))
    asyncio.run(bench_acl())
    asyncio.run(bench_gather(10_000))


if __name__ == "__main__":
    main()
