"""The `cloudtik` command: a thin layer over `cloudtik_jupyter.api`, built from the command grammar.

Only click and the grammar (plain data) load at start; a command's handler module, the API and rich load
when that command runs. Errors a user can act on print as one red line (exit 2 for bad input, 1
otherwise); `--debug` shows tracebacks.
"""

from __future__ import annotations

import click

from .. import __version__
from .build import SpecGroup


@click.group(
    cls=SpecGroup,
    name="cloudtik",
    group=None,
    help="Create cloud workspaces and clusters, and work with them.",
)
@click.version_option(__version__, prog_name="cloudtik")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    ctx.obj = {"debug": debug}
