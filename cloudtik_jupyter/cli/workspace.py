"""`cloudtik workspace create|update|delete|status|info|list`: a thin layer over `api.workspace.Workspace`
(arguments and help: the grammar).

WORKSPACE is a config file or the name of a workspace created from this machine.
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import TYPE_CHECKING

import click

from ..errors import CloudtikError
from .build import SpecGroup, handles

if TYPE_CHECKING:
    from rich.console import Console

    from ..api.workspace import Workspace, WorkspaceStatus

# `cloudtik workspace ...` as a group of its own (for scripts and tests that call it directly).
workspace = SpecGroup("workspace", "workspace")


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def _workspace(source: str, console: Console, quiet: bool = False) -> Workspace:
    """Load the workspace; config warnings (e.g. SSH open to the internet) print as yellow lines."""
    from ..api.workspace import Workspace

    started = time.monotonic()

    def progress(message: str) -> None:  # "creating VPC", "deleting VPC", "removed vpc-0abc"
        if not quiet:
            verb, _, what = message.partition(" ")
            console.print(f"[dim]{time.monotonic() - started:6.2f}s[/] [cyan]{verb:>9}[/] {what}")

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ws = Workspace(source, progress=progress)
    for w in caught:
        click.secho(f"Warning: {w.message}", fg="yellow", err=True)
    return ws


def status_table(status: WorkspaceStatus) -> object:
    from rich.table import Table

    table = Table(title=f"workspace {status.name} ({status.provider})", title_justify="left")
    for column in ("resource", "kind", "status", "detail"):
        table.add_column(column)
    for r in status.resources:
        state = "[green]present[/]" if r.present else "[red]missing[/]"
        table.add_row(r.name, r.kind, state, r.detail)
    table.caption = "ready" if status.ready else f"missing: {', '.join(status.missing)}"
    return table


def _converge(source: str, yes: bool, quiet: bool, verb: str) -> None:
    console = _console()
    ws = _workspace(source, console, quiet)
    if not yes and sys.stdin.isatty():
        click.confirm(f"{verb.capitalize()} workspace {ws.name!r} on {ws.config.provider.type}?", abort=True)
    console.print(f"{verb.capitalize()} workspace [bold]{ws.name}[/] on [bold]{ws.config.provider.type}[/]")
    ws.create()
    status = ws.status()
    console.print(status_table(status))
    if not status.ready:
        raise CloudtikError(f"workspace {ws.name!r} is incomplete (missing: {', '.join(status.missing)})")
    console.print(
        f"Workspace [bold]{ws.name}[/] is ready. Clusters join it with `workspace_name: {ws.name}`."
    )


@handles("workspace create")
def create(config: str, yes: bool, quiet: bool) -> None:
    _converge(config, yes, quiet, "creating")


@handles("workspace update")
def update(config: str, yes: bool, quiet: bool) -> None:
    _converge(config, yes, quiet, "updating")


@handles("workspace delete")
def delete(workspace: str, yes: bool, force: bool, quiet: bool) -> None:
    console = _console()
    ws = _workspace(workspace, console, quiet)
    if not yes and sys.stdin.isatty():
        extra = " Its clusters are taken down and its bucket emptied." if force else ""
        click.confirm(f"Delete workspace {ws.name!r} on {ws.config.provider.type}?{extra}", abort=True)
    console.print(f"Deleting workspace [bold]{ws.name}[/] on [bold]{ws.config.provider.type}[/]")
    report = ws.delete(force=force)
    removed = f"{len(report.removed)} resource(s) removed" if report.removed else "nothing was left to remove"
    console.print(f"Workspace [bold]{ws.name}[/] is deleted ({removed}).")


@handles("workspace status")
def status(workspace: str, quiet: bool) -> None:
    console = _console()
    console.print(status_table(_workspace(workspace, console, quiet).status()))


@handles("workspace info")
def info(workspace: str, quiet: bool) -> None:
    ws = _workspace(workspace, _console(), quiet)
    for key, value in ws.info().items():
        click.echo(f"{key + ':':<26}{value}")
    try:
        published = ws.services()
    except CloudtikError as exc:  # no registry on this provider (yet)
        click.echo(f"{'services:':<26}- ({exc})")
        return
    click.echo(f"{'services:':<26}{'-' if not any(d.services for d in published) else ''}")
    for doc in published:
        for s in doc.services:
            click.echo(f"  {doc.cluster:<14}{s.name:<18}{s.kind:<18}{s.url}")


@handles("workspace list")
def list_(quiet: bool) -> None:
    from ..api.workspace import Workspace

    found = Workspace.list()
    if not found:
        click.echo("no workspaces")
    for ws in found:
        click.echo(f"{ws.name}\t{ws.provider}")
