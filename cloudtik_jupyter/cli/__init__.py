"""The `cloudtik` command: a thin layer over `cloudtik_jupyter.api`.

Errors a user can act on print as one red line (exit 2 for bad input, 1 otherwise);
`--debug` shows tracebacks.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from .. import __version__
from ..errors import CloudtikError


class _Group(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except CloudtikError as exc:
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.secho("Interrupted; re-run the same command to converge.", fg="yellow", err=True)
            sys.exit(130)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="cloudtik")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """Create cloud workspaces and clusters, and work with them."""
    ctx.obj = {"debug": debug}


def _register() -> None:
    from . import cluster
    from .workspace import workspace

    for command in cluster.COMMANDS:
        main.add_command(command)
    main.add_command(workspace)


_register()
