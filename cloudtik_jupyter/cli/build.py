"""Click commands built from the command table (`cloudtik_jupyter.grammar`).

A command is built only when the user runs it (or asks for help), and its handler module is imported only
then: `cloudtik status` loads neither the workspace code nor rich's progress printer. Usage errors and
errors a user can act on print as one red line (exit 2 for bad input, 1 otherwise); `--debug` shows
tracebacks.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..errors import CloudtikError
from ..grammar import GROUPS, Arg, Command, GrammarError, Opt, alias_dest, commands, find, fold, split_rest

F = TypeVar("F", bound=Callable[..., Any])
HANDLERS: dict[str, Callable[..., Any]] = {}


def handles(name: str) -> Callable[[F], F]:
    """Register the CLI handler of command `name` (it gets the command's values as keyword arguments)."""
    if find(name) is None:
        raise ValueError(f"no command {name!r} in the grammar")

    def register(fn: F) -> F:
        HANDLERS[name] = fn
        return fn

    return register


def handler(command: Command) -> Callable[..., Any]:
    importlib.import_module(f"{__package__}.{command.section}")  # registers that section's handlers
    return HANDLERS[command.name]


def _scalar(arg_or_opt: Arg | Opt) -> Any:
    kind = arg_or_opt.type
    if isinstance(arg_or_opt, Arg) and arg_or_opt.local_file:
        return click.Path(exists=True, dir_okay=arg_or_opt.local_file == "path")
    return click.INT if kind is int else click.FLOAT if kind is float else click.STRING


def _params(command: Command) -> list[click.Parameter]:
    params: list[click.Parameter] = []
    for arg in command.args:
        if arg.rest:
            continue  # split off before click parses (see SpecCommand.parse_args)
        required = not (arg.optional or arg.option)
        params.append(click.Argument([arg.dest], metavar=arg.metavar, type=_scalar(arg), required=required))
        if arg.option:
            params.append(click.Option([*arg.option, alias_dest(arg.dest)], type=_scalar(arg), hidden=True))
    for opt in command.options("cli"):
        kind = None if opt.is_flag else _scalar(opt)
        params.append(
            click.Option(
                [*opt.flags, opt.dest],
                is_flag=opt.is_flag,
                type=kind,
                default=opt.default if not opt.is_flag else False,
                metavar=opt.metavar,
                help=opt.help,
                show_default=opt.default is not None,
            )
        )
        if opt.aliases:
            params.append(
                click.Option([*opt.aliases, alias_dest(opt.dest)], is_flag=opt.is_flag, hidden=True)
            )
    return params


def _debug(ctx: click.Context) -> bool:
    root = ctx.find_root().obj
    return bool(ctx.params.get("debug") or (isinstance(root, dict) and root.get("debug")))


class SpecCommand(click.Command):
    def __init__(self, spec: Command) -> None:
        self.spec = spec
        super().__init__(
            spec.leaf,
            params=_params(spec),
            help=spec.description or spec.help,
            short_help=spec.help,
            context_settings={"help_option_names": ["-h", "--help"]},
        )

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        rest = self.spec.rest_arg
        if rest is None:
            return super().parse_args(ctx, args)
        head, tail, _ = split_rest(self.spec, args, "cli")
        out = super().parse_args(ctx, head)
        if not tail and not (rest.many or rest.optional):
            raise click.UsageError(f"Missing argument '{rest.metavar}'.", ctx)
        # A shell command arrives as the words the shell left (ssh joins them the same way).
        ctx.params[rest.dest] = tuple(tail) if rest.many else " ".join(tail)
        return out

    def collect_usage_pieces(self, ctx: click.Context) -> list[str]:
        pieces = super().collect_usage_pieces(ctx)
        rest = self.spec.rest_arg
        if rest is not None:
            pieces.append(f"[{rest.metavar}]..." if rest.many else rest.metavar)
        return pieces

    def invoke(self, ctx: click.Context) -> Any:
        try:
            values = fold(self.spec, ctx.params)
            values.pop("debug", None)
            return handler(self.spec)(**values)
        except GrammarError as exc:
            raise click.UsageError(str(exc), ctx) from None
        except CloudtikError as exc:
            if _debug(ctx):
                raise
            click.secho(f"Error: {exc}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.secho("Interrupted; re-run the same command to converge.", fg="yellow", err=True)
            sys.exit(130)


class SpecGroup(click.Group):
    """The commands of one level of the grammar (the top, or a group such as `workspace`)."""

    def __init__(self, name: str, group: str | None, **kwargs: Any) -> None:
        super().__init__(name, context_settings={"help_option_names": ["-h", "--help"]}, **kwargs)
        self.level = group
        self._built: dict[str, click.Command] = {}

    def list_commands(self, ctx: click.Context) -> list[str]:
        names = [c.leaf for c in commands("cli", self.level)]
        return names + (list(GROUPS) if self.level is None else [])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self._built:
            if self.level is None and cmd_name in GROUPS:
                text = GROUPS[cmd_name]
                self._built[cmd_name] = SpecGroup(
                    cmd_name, cmd_name, help=text, short_help=text.split(":")[0]
                )
            else:
                spec = find(f"{self.level} {cmd_name}" if self.level else cmd_name)
                if spec is None:
                    return None
                if "cli" not in spec.fronts:
                    raise click.UsageError(f"{cmd_name} runs in a notebook: %%cloudtik {spec.name} ...", ctx)
                self._built[cmd_name] = SpecCommand(spec)
        return self._built[cmd_name]

    def main(self, *args: Any, **kwargs: Any) -> Any:
        """Usage errors as one line (click prints usage, a hint and the error on three)."""
        kwargs["standalone_mode"] = False
        try:
            rv = super().main(*args, **kwargs)
        except click.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx else self.name
            click.secho(f"Error: {exc.format_message()} (see `{where} --help`)", fg="red", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
        sys.exit(rv if isinstance(rv, int) else 0)
