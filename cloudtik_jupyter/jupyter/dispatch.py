"""Which function runs a `%cloudtik` command, and the cell-body rules every command shares.

Handlers live in one module per section of the grammar (magic_cluster, magic_nodes, magic_runtime,
magic_workspace), imported only when one of their commands runs, so `%load_ext` stays light.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from IPython.core.error import UsageError

from ..grammar import COMMANDS, Command, find

if TYPE_CHECKING:
    from .magics import CloudtikMagics

F = TypeVar("F", bound=Callable[..., Any])
Handler = Callable[..., object]  # (magics, body, **values) -> what the cell shows
HANDLERS: dict[str, Handler] = {}


def handles(name: str) -> Callable[[F], F]:
    if find(name) is None:
        raise ValueError(f"no command {name!r} in the grammar")

    def register(fn: F) -> F:
        HANDLERS[name] = fn
        return fn

    return register


def handler(command: Command) -> Handler:
    importlib.import_module(f"{__package__}.magic_{command.section}")
    return HANDLERS[command.name]


def _with_body() -> str:
    names = [c.name for c in COMMANDS if c.body and "magic" in c.fronts]
    return ", ".join(names)


def check_body(command: Command, values: dict[str, Any], cell: str | None) -> None:
    """A cell body only where the command takes one, and then instead of the argument it stands for."""
    if cell is not None and command.body is None:
        raise UsageError(f"%%cloudtik {command.name} takes no cell body (these do: {_with_body()})")
    for arg in command.args:
        if not arg.from_body:
            continue
        given = values.get(arg.dest) not in (None, "", [])
        if cell is not None and given:
            raise UsageError(
                f"%%cloudtik {command.name} reads {arg.metavar} from the cell body: drop {arg.metavar} "
                "from the line"
            )
        if cell is None and not given:
            raise UsageError(
                f"%cloudtik {command.name}: missing {arg.metavar} "
                f"(or use %%cloudtik {command.name} with the {arg.metavar.lower()} in the cell body)"
            )


def run(magics: CloudtikMagics, command: Command, values: dict[str, Any], cell: str | None) -> object:
    check_body(command, values, cell)
    kwargs = {k: v for k, v in values.items() if k != "debug"}
    return handler(command)(magics, cell, **kwargs)
