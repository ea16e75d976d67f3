"""`cloudtik workspace create|update|delete|status|info`: a thin layer over `api.workspace.Workspace`.

WORKSPACE is a config file or the name of a workspace created from this machine.
"""

from __future__ import annotations

import sys
import time
import warnings
from typing import TYPE_CHECKING, Any

import click

from ..errors import CloudtikError

if TYPE_CHECKING:
    from rich.console import Console

    from ..api.workspace import Workspace, WorkspaceStatus


class _Group(click.Group):
    """Errors a user can act on: one red line, exit 2 for bad input and 1 otherwise."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CloudtikError as exc:
            root = ctx.find_root().obj
            if isinstance(root, dict) and root.get("debug"):
                raise
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)


def _console() -> Console:
    from rich.console import Console

    return Console(highlight=False)


def _workspace(source: str, console: Console) -> Workspace:
    """Load the workspace; config warnings (e.g. SSH open to the internet) print as yellow lines."""
    from ..api.workspace import Workspace

    started = time.monotonic()

    def progress(step: str) -> None:
        console.print(f"[dim]{time.monotonic() - started:6.2f}s[/] [cyan]{'ensuring':>9}[/] {step}")

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


WORKSPACE = click.argument("source", metavar="WORKSPACE")


@click.group(cls=_Group)
def workspace() -> None:
    """Create and manage workspaces: the network, firewall, roles and storage clusters share."""


def _converge(source: str, yes: bool, verb: str) -> None:
    console = _console()
    ws = _workspace(source, console)
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


@workspace.command()
@click.argument("config", metavar="CONFIG")
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation (for scripts).")
def create(config: str, yes: bool) -> None:
    """Create the workspace of CONFIG (a YAML file). Re-running converges, also after an interruption."""
    _converge(config, yes, "creating")


@workspace.command()
@click.argument("config", metavar="CONFIG")
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation (for scripts).")
def update(config: str, yes: bool) -> None:
    """Apply a changed CONFIG (e.g. allowed SSH CIDRs) to an existing workspace."""
    _converge(config, yes, "updating")


@workspace.command()
@WORKSPACE
@click.option("--yes", "-y", is_flag=True, help="Don't ask for confirmation.")
@click.option("--force", is_flag=True, help="Take down clusters still in the workspace and empty its bucket.")
def delete(source: str, yes: bool, force: bool) -> None:
    """Delete everything WORKSPACE created (refuses while clusters run in it, unless --force)."""
    console = _console()
    ws = _workspace(source, console)
    if not yes and sys.stdin.isatty():
        extra = " Its clusters are taken down and its bucket emptied." if force else ""
        click.confirm(f"Delete workspace {ws.name!r} on {ws.config.provider.type}?{extra}", abort=True)
    console.print(f"Deleting workspace [bold]{ws.name}[/] on [bold]{ws.config.provider.type}[/]")
    ws.delete(force=force)
    console.print(f"Workspace [bold]{ws.name}[/] is deleted.")


@workspace.command()
@WORKSPACE
def status(source: str) -> None:
    """Each resource of WORKSPACE: present or missing."""
    console = _console()
    result = _workspace(source, console).status()
    console.print(status_table(result))


@workspace.command()
@WORKSPACE
def info(source: str) -> None:
    """Ids and names of WORKSPACE's resources (what clusters in it use)."""
    for key, value in _workspace(source, _console()).info().items():
        click.echo(f"{key + ':':<26}{value}")
