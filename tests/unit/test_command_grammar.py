"""One command grammar: the table builds both fronts, the README documents exactly it, both fronts parse a
line the same way, and bad lines are one short error that runs nothing."""

from __future__ import annotations

import inspect
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from IPython.core.error import UsageError

from cloudtik_jupyter.cli import build as cli_build
from cloudtik_jupyter.cli import main
from cloudtik_jupyter.grammar import COMMANDS, COMMON, GROUPS, Command, Front, split_rest
from cloudtik_jupyter.jupyter import dispatch
from cloudtik_jupyter.jupyter.commands import HelpShown, build_parser, parse_line
from tests.docs.readme import README, command_rows

CLI = [c for c in COMMANDS if "cli" in c.fronts]
MAGIC = [c for c in COMMANDS if "magic" in c.fronts]
ROWS = command_rows(README.read_text(), set(GROUPS))


def _flags(command: Command, front: Front) -> set[str]:
    return {f for o in command.options(front) for f in o.flags}


def test_every_cli_command_is_also_a_magic() -> None:
    assert {c.name for c in CLI} <= {c.name for c in MAGIC}
    assert {"submit", "attach", "monitor", "workspace create", "workspace delete"} <= {c.name for c in CLI}


@pytest.mark.parametrize("command", CLI, ids=lambda c: c.name)
def test_cli_front_has_the_command_and_a_handler_taking_exactly_its_values(command: Command) -> None:
    result = CliRunner().invoke(main, [*command.words, "--help"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: cloudtik {command.name} ")
    assert all(flag in result.output for flag in _flags(command, "cli"))
    params = set(inspect.signature(cli_build.handler(command)).parameters)
    assert params == command.dests("cli") - {"debug"}


@pytest.mark.parametrize("command", MAGIC, ids=lambda c: c.name)
def test_magic_front_has_the_command_and_a_handler_taking_exactly_its_values(
    command: Command, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(HelpShown):
        parse_line(build_parser(), f"{command.name} --help")
    assert command.words[-1] in capsys.readouterr().out
    params = list(inspect.signature(dispatch.handler(command)).parameters)
    assert params[:2] == ["m", "body"]
    assert set(params[2:]) == command.dests("magic") - {"debug"}


def test_the_readme_documents_every_command_and_only_real_ones() -> None:
    documented = {(r.front, r.name) for r in ROWS}
    for row in ROWS:
        command = next((c for c in COMMANDS if c.name == row.name), None)
        assert command is not None, f"README documents `{row.text}`: no such command"
        front: Front = "cli" if row.front == "cli" else "magic"
        assert front in command.fronts, f"README documents `{row.text}` but the {row.front} has no {row.name}"
        if row.front == "cli":
            assert "magic" in command.fronts, f"{row.name} is a CLI command but not a magic"
        unknown = row.options - _flags(command, front)
        assert not unknown, f"README's `{row.text}`: {row.name} has no option {sorted(unknown)}"
    for command in CLI:
        assert ("cli", command.name) in documented, f"the README's CLI table lacks {command.name}"
        shown = set().union(*(r.options for r in ROWS if r.front == "cli" and r.name == command.name))
        missing = {o.flags[0] for o in command.options("cli") if o not in COMMON} - shown
        assert not missing, f"the README's CLI table lacks {command.name}'s {sorted(missing)}"
    for command in MAGIC:
        only_here = {o.flags[0] for o in command.opts if o.fronts == {"magic"}}
        shown = set().union(*(r.options for r in ROWS if r.front == "magic" and r.name == command.name))
        assert only_here <= shown, (
            f"the README's magic table lacks {command.name}'s {sorted(only_here - shown)}"
        )
        if "cli" not in command.fronts:
            assert ("magic", command.name) in documented, f"the README's magic table lacks {command.name}"


# -- one line, two fronts, the same values -----------------------------------------------------------

SAME = [
    "up cfg.yaml --no-wait",
    "up cfg.yaml --no-workers -y",
    "scale c 3 --node-type big",
    "scale c --workers 2 --no-wait",
    "exec c 'ls -l' --all-nodes",
    "exec c --node 2 echo a b",
    "exec c --all-nodes ls --all",
    "exec c -- --weird-first-word",
    "submit c README.md --rows 5 --runtime x",
    "submit c --runtime spark README.md a --b",
    "wait-for-ready c --timeout 7.5",
    "monitor c --history 3 --timeout 1",
    "kill-node c --node vn-1 --yes",
    "upload c README.md /tmp/x --all-nodes",
    "workspace create ws.yaml --yes",
    "workspace delete lab --force -q",
]


@pytest.mark.parametrize("line", SAME)
def test_the_cli_and_the_magic_parse_a_line_alike(line: str, monkeypatch: pytest.MonkeyPatch) -> None:
    words = shlex.split(line)
    magic = parse_line(build_parser(), line)
    seen: dict[str, Any] = {}
    cli_build.handler(magic.command)  # import the section, then stand in for its handler
    monkeypatch.setitem(cli_build.HANDLERS, magic.command.name, lambda **kw: seen.update(kw))
    result = CliRunner().invoke(main, words, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    magic_only = {o.dest for o in magic.command.opts if "cli" not in o.fronts}
    expected = {k: v for k, v in magic.values.items() if k not in magic_only | {"debug"}}
    if "job_args" in seen:
        seen["job_args"] = list(seen["job_args"])
    if "command" in seen and magic.command.name == "exec":
        # The shell hands the CLI words (quotes gone); the magic keeps the line as typed.
        assert shlex.split(expected.pop("command")) == shlex.split(seen.pop("command"))
    assert seen == expected


def test_trailing_words_rule() -> None:
    exec_ = next(c for c in COMMANDS if c.name == "exec")
    submit = next(c for c in COMMANDS if c.name == "submit")
    assert split_rest(exec_, ["c", "ls", "--all-nodes"], "cli")[:2] == (["c", "--all-nodes"], ["ls"])
    assert split_rest(exec_, ["c", "ls", "-l", "--all-nodes"], "cli")[:2] == (
        ["c"],
        ["ls", "-l", "--all-nodes"],
    )
    assert split_rest(submit, ["c", "j.py", "x", "--runtime", "r"], "cli")[:2] == (
        ["c", "j.py"],
        ["x", "--runtime", "r"],
    )


# -- hostile lines: one short error, exit 2, nothing created -----------------------------------------

BAD = [
    ("bogus", "No such command"),
    ("scale c", "missing N"),
    ("scale c three", "three"),
    ("scale c 3 --workers 4", "given twice"),
    ("exec c", "COMMAND"),
    ("up", "CONFIG"),
    ("up cfg.yaml --frobnicate", "--frobnicate"),
    ("upload c /nonexistent/file r", "/nonexistent/file"),
    ("submit c /nonexistent.py", "/nonexistent.py"),
    ("monitor c --history many", "many"),
    ("status ../../etc", "neither a config file nor a cluster name"),
    ("down '; rm -rf ~' --yes", "neither a config file nor a cluster name"),
    ("workspace status ../x", "neither a config file nor a workspace name"),
    ("workspace delete ''", "neither a config file nor a workspace name"),
    ("sql c SELECT 1", "runs in a notebook"),
]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = tmp_path / "state"
    monkeypatch.setenv("CLOUDTIK_HOME", str(state))
    return state


@pytest.mark.parametrize(("line", "says"), BAD, ids=[b[0] for b in BAD])
def test_bad_cli_lines_are_one_line_exit_2_and_create_nothing(home: Path, line: str, says: str) -> None:
    result = CliRunner().invoke(main, shlex.split(line))
    lines = [x for x in result.output.splitlines() if x.strip()]
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], result.output
    assert not home.exists()


@pytest.mark.parametrize(
    ("line", "says"),
    [b for b in BAD if b[0] != "sql c SELECT 1"],
    ids=[b[0] for b in BAD if b[0] != "sql c SELECT 1"],
)
def test_bad_magic_lines_are_one_short_error(home: Path, line: str, says: str) -> None:
    from cloudtik_jupyter.jupyter.cell_errors import CellError
    from cloudtik_jupyter.jupyter.magics import CloudtikMagics

    magics = CloudtikMagics(shell=None)  # type: ignore[arg-type]
    says = {"No such command": "invalid choice"}.get(says, says)
    with pytest.raises((UsageError, CellError)) as caught:
        try:
            parsed = parse_line(build_parser(), line)
            dispatch.run(magics, parsed.command, parsed.values, None)
        except Exception as exc:
            from cloudtik_jupyter.errors import CloudtikError

            if isinstance(exc, CloudtikError):
                raise CellError(str(exc)) from None
            raise
    message = str(caught.value)
    assert says in message and "\n" not in message.strip()
    assert not home.exists()


def test_the_cli_starts_light() -> None:
    """`cloudtik --help` and argument errors load click and the grammar only: no API, SSH, rich, YAML."""
    code = (
        "import sys\n"
        "from cloudtik_jupyter.cli import main\n"
        "from click.testing import CliRunner\n"
        "CliRunner().invoke(main, ['--help']); CliRunner().invoke(main, ['scale', 'c'])\n"
        "heavy = [m for m in ('cloudtik_jupyter.api', 'asyncssh', 'rich', 'yaml', 'pydantic', 'redis',"
        " 'IPython') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == "", f"cloudtik --help imported {out.stdout.strip()}"


def test_the_grammar_is_standard_library_only() -> None:
    code = (
        "import sys\nimport cloudtik_jupyter.grammar.argv\n"
        "mods = [m for m in sys.modules if m.split('.')[0] in ('click', 'IPython', 'pydantic', 'yaml')"
        " or (m.startswith('cloudtik_jupyter.') and not m.startswith('cloudtik_jupyter.grammar'))]\n"
        "print(','.join(mods))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert out.stdout.strip() == ""
