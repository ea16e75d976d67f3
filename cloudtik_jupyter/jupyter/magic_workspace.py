"""`%cloudtik workspace create|update|delete|status|info|list` and `%%cloudtik workspace create` (YAML in
the cell body): a thin layer over `api.workspace.Workspace` (arguments and help: the grammar)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..cluster.progress import ProgressEvent
from ..errors import CloudtikError, ConfigError
from .dispatch import handles
from .magics import Post
from .progress import CellProgress

if TYPE_CHECKING:
    from ..api.workspace import Workspace, WorkspaceStatus, WorkspaceSummary
    from .magics import CloudtikMagics

Source = Mapping[str, Any] | str


def _source(m: CloudtikMagics, body: str | None, token: str | None) -> Source:
    if body is not None:
        from ..config.yaml_io import parse_yaml

        data = parse_yaml(body, origin="cell")
        if not isinstance(data, Mapping):
            raise ConfigError(
                "", "the cell body must be a YAML mapping (workspace_name, provider, networking)"
            )
        return data
    assert token is not None  # dispatch.check_body
    value = m.variable(token)
    return value if isinstance(value, Mapping) else token


class _Steps:
    """The provider's step names as progress rows (each ensuring, then done), posted to the cell once
    `bind` says where; the provider calls it from its own thread."""

    def __init__(self, phase: str) -> None:
        self._phase = phase
        self._post: Post | None = None
        self._last: str | None = None

    def bind(self, post: Post) -> None:
        self._post = post

    def _send(self, phase: str, step: str) -> None:
        if self._post is not None:
            self._post(ProgressEvent(phase, "", step, "step"))

    def __call__(self, step: str) -> None:
        if self._last is not None:
            self._send("done", self._last)
        self._send(self._phase, step)
        self._last = step

    def finish(self) -> None:
        if self._last is not None:
            self._send("done", self._last)


def _workspace(
    m: CloudtikMagics, body: str | None, token: str | None, phase: str = "ensuring"
) -> tuple[Workspace, _Steps]:
    """The workspace (a bad config fails here, before any progress shows) and its progress rows."""
    from ..api.workspace import Workspace

    steps = _Steps(phase)
    return Workspace(_source(m, body, token), progress=steps), steps


def _converge(
    m: CloudtikMagics, body: str | None, config: str | None, quiet: bool, verb: str
) -> WorkspaceStatus:
    ws, steps = _workspace(m, body, config)

    async def make_async(post: Post) -> WorkspaceStatus:
        steps.bind(post)
        await ws.create_async()
        steps.finish()
        return await ws.status_async()

    title = f"{verb} workspace {ws.name} on {ws.config.provider.type}"
    progress = CellProgress(title, live=m.live, quiet=quiet)
    status = m.run(make_async, what=f"workspace {verb} {ws.name}", progress=progress)
    if not status.ready:
        raise CloudtikError(f"workspace {ws.name!r} is incomplete (missing: {', '.join(status.missing)})")
    return status


@handles("workspace create")
def create(
    m: CloudtikMagics, body: str | None, *, config: str | None, yes: bool, quiet: bool
) -> WorkspaceStatus:
    return _converge(m, body, config, quiet, "create")


@handles("workspace update")
def update(
    m: CloudtikMagics, body: str | None, *, config: str | None, yes: bool, quiet: bool
) -> WorkspaceStatus:
    return _converge(m, body, config, quiet, "update")


@handles("workspace delete")
def delete(
    m: CloudtikMagics, body: str | None, *, workspace: str, yes: bool, force: bool, quiet: bool
) -> None:
    ws, steps = _workspace(m, None, workspace, "deleting")

    async def make_async(post: Post) -> None:
        steps.bind(post)
        await ws.delete_async(force=force)
        steps.finish()

    progress = CellProgress(f"delete workspace {ws.name}", live=m.live, quiet=quiet)
    m.run(make_async, what=f"workspace delete {ws.name}", progress=progress)


@handles("workspace status")
def status(m: CloudtikMagics, body: str | None, *, workspace: str, quiet: bool) -> WorkspaceStatus:
    ws, _ = _workspace(m, None, workspace)
    return m.run(lambda _: ws.status_async(), what=f"workspace status {ws.name}")


@handles("workspace info")
def info(m: CloudtikMagics, body: str | None, *, workspace: str, quiet: bool) -> dict[str, str]:
    ws, _ = _workspace(m, None, workspace)
    return m.run(lambda _: ws.info_async(), what=f"workspace info {ws.name}")


@handles("workspace list")
def list_(m: CloudtikMagics, body: str | None, *, quiet: bool) -> list[WorkspaceSummary]:
    from ..api.workspace import Workspace

    return Workspace.list()
