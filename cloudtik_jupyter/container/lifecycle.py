"""Make sure a node's container runs with its current spec: reuse it, or replace it and wait until it runs.

Every step is a command on the node over the SSH runner; waits poll the node's Docker with a deadline.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import CloudtikError, CommandFailed, Timeout
from ..ssh.runner import SshRunner, SshTarget
from ..waiting import wait_for
from . import scripts
from .spec import ContainerSpec

START_TIMEOUT = 120.0  # a pull of a big image is not done here; see pull_before_run
REMOVE_TIMEOUT = 30.0


@dataclass(frozen=True)
class Started:
    name: str
    reused: bool

    def describe(self) -> str:
        return f"{'reusing' if self.reused else 'started'} container {self.name}"


async def _script(
    ssh: SshRunner, target: SshTarget, script: str, env: Mapping[str, str] | None = None
) -> str:
    result = await ssh.run(target, script, env=env, check=False)
    if result.exit_status == scripts.NO_DOCKER or result.exit_status == scripts.NO_IMAGE:
        raise CloudtikError(f"{target.node_id}: {result.stderr.strip()}")
    if result.exit_status != 0:
        tail = (result.stdout + result.stderr)[-2000:]
        raise CommandFailed(target.node_id, script.splitlines()[0] + " ...", result.exit_status, tail)
    return result.stdout


async def wait_until_gone(ssh: SshRunner, target: SshTarget, name: str, timeout: float) -> None:
    async def gone() -> bool:
        return (await _script(ssh, target, scripts.gone_script(name))).strip() == "gone"

    await wait_for(gone, timeout=timeout, what=f"container {name} on {target.node_id} to be removed")


async def ensure_container(
    ssh: SshRunner,
    target: SshTarget,
    spec: ContainerSpec,
    env: Mapping[str, str],
    *,
    timeout: float = START_TIMEOUT,
) -> Started:
    """The node's container runs `spec` when this returns (started now, or already running)."""
    found = (await _script(ssh, target, scripts.inspect_script(spec))).strip()
    if found == "reused":
        return Started(spec.name, reused=True)
    if found == "removed":  # stale spec, or stopped and still being removed
        await wait_until_gone(ssh, target, spec.name, REMOVE_TIMEOUT)
    out = await _script(ssh, target, scripts.start_script(spec), env)
    keeper = int(out.strip().splitlines()[-1])  # earlier lines: what the handover said
    outcome: list[str] = []

    async def settled() -> bool:
        lines = (await _script(ssh, target, scripts.status_script(spec.name, keeper))).splitlines()
        outcome[:] = lines
        return bool(lines) and lines[0] in ("running", "exited")

    try:
        await wait_for(settled, timeout=timeout, what=f"container {spec.name} on {target.node_id} to run")
    except Timeout:
        raise CloudtikError(
            f"{target.node_id}: container {spec.name} did not start in {timeout:g}s"
        ) from None
    if outcome[0] == "exited":
        detail = "\n".join(outcome[1:]).strip() or "no output"
        raise CloudtikError(f"{target.node_id}: container {spec.name} exited at start:\n{detail}")
    return Started(spec.name, reused=False)
