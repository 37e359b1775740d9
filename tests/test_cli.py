"""The foxagent command line, run as a real subprocess and in-process."""

from __future__ import annotations

import inspect
import io
import json
import subprocess
import sys
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TextIO

import pytest

from foxagent import cli
from foxagent.cli._commands import COMMANDS, Command, load_handler
from foxagent.cli._exit import ExitCode
from foxagent.cli._tools import tools_command

FIXTURES = Path(__file__).parent / "fixtures"


def test_help_answers_from_the_console_script() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "foxagent.cli", "--help"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert "usage: foxagent" in result.stdout
    assert "tools" in result.stdout


def test_help_does_not_import_pydantic() -> None:
    code = "import sys, foxagent.cli; sys.exit('pydantic' in sys.modules)"
    # Fast start-up: the CLI module must not drag the schema machinery in.
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, "importing foxagent.cli imported pydantic"


def test_tools_lists_stock_schemas_with_token_estimates(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tools"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("calculator  (~")
    assert '"name": "get_weather"' in out
    assert out.rstrip().endswith("(estimated: ASCII characters / 4 + 1 per non-ASCII character)")


def test_tools_json_for_a_file() -> None:
    out, err = io.StringIO(), io.StringIO()
    flags = {"tools": [str(FIXTURES / "file_tools.py")], "mcp": None, "json": True}
    assert tools_command(flags, out=out, err=err) == 0
    document = json.loads(out.getvalue())
    assert [row["schema"]["function"]["name"] for row in document["tools"]] == ["shout", "whisper"]
    assert document["total_tokens"] == sum(row["tokens"] for row in document["tools"])
    assert all(row["tokens"] > 10 for row in document["tools"])


def test_tools_with_a_bad_spec_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tools", "--tools", "no_such_tool"]) == 2
    assert "foxagent tools: Unknown tool 'no_such_tool'" in capsys.readouterr().err


def test_token_estimate_rule() -> None:
    from foxagent._tokens import estimate_tokens

    assert estimate_tokens("abcd" * 10) == 10
    assert estimate_tokens("台北天氣") == 4
    assert estimate_tokens("ab台") == 2


# --- the command table ----------------------------------------------------------------------


def walk(
    commands: tuple[Command, ...] = COMMANDS, path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], Command]]:
    """Every command of the table with the words that reach it, groups before their actions."""
    for command in commands:
        yield (*path, command.name), command
        yield from walk(command.subcommands, (*path, command.name))


LEAVES = [(path, command) for path, command in walk() if command.handler is not None]


def help_of(capsys: pytest.CaptureFixture[str], *words: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        cli.main([*words, "--help"])
    assert exit_.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(("path", "command"), list(walk()), ids=[" ".join(p) for p, _ in walk()])
def test_every_command_in_the_table_is_listed_in_its_parents_help(
    capsys: pytest.CaptureFixture[str], path: tuple[str, ...], command: Command
) -> None:
    listing = help_of(capsys, *path[:-1])
    # argparse lists a subcommand as "    NAME  HELP" (the help may wrap onto the next line).
    first_words = " ".join(command.help.split()[:3])
    assert any(
        line.split()[:1] == [command.name] and first_words in " ".join(line.split()[1:])
        for line in listing.splitlines()
    ), listing
    assert help_of(capsys, *path).startswith(f"usage: foxagent {' '.join(path)} ")


def test_help_lists_exactly_the_tables_commands(capsys: pytest.CaptureFixture[str]) -> None:
    listing = help_of(capsys)
    listed = listing.split("COMMAND\n", 1)[1].split("\noptions:", 1)[0]
    names = [
        line.split()[0]
        for line in listed.splitlines()
        if line.startswith("    ") and line[4] != " "
    ]
    assert names == [command.name for command in COMMANDS]
    # Pinned, so dropping a command from the table cannot pass unnoticed.
    assert names == [
        "tools",
        "run",
        "eval",
        "serve",
        "doctor",
        "models",
        "template",
        "mcp",
        "batch",
    ]


@pytest.mark.parametrize(("path", "command"), LEAVES, ids=[" ".join(p) for p, _ in LEAVES])
def test_every_handler_resolves_to_the_one_signature(
    path: tuple[str, ...], command: Command
) -> None:
    assert command.handler is not None
    handler = load_handler(command.handler)
    assert callable(handler)
    parameters = inspect.signature(handler).parameters
    assert [(p.name, p.kind) for p in parameters.values()] == [
        ("flags", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        ("out", inspect.Parameter.KEYWORD_ONLY),
        ("err", inspect.Parameter.KEYWORD_ONLY),
    ]
    hints = typing.get_type_hints(handler)
    assert hints == {"flags": Mapping[str, Any], "out": TextIO, "err": TextIO, "return": int}


def test_the_table_is_well_formed() -> None:
    paths = [path for path, _ in walk()]
    assert len(paths) == len(set(paths)), "a command name is used twice at one level"
    for _, command in walk():
        assert (command.handler is None) == bool(command.subcommands)
        assert (command.arguments is None) == bool(command.subcommands)
    with pytest.raises(ValueError, match="handler or subcommands"):
        Command(name="broken", help="neither a handler nor subcommands")


@pytest.mark.parametrize("reference", ["foxagent.cli._tools", "foxagent.cli._tools:_ESTIMATE"])
def test_a_bad_handler_reference_is_refused(reference: str) -> None:
    with pytest.raises((ValueError, TypeError)):
        load_handler(reference)


def test_exit_codes_keep_their_numbers() -> None:
    assert {code.name: code.value for code in ExitCode} == {
        "OK": 0,
        "FAILED": 1,
        "USAGE": 2,
        "UNREACHABLE": 3,
        "MODEL": 4,
        "STEP_LIMIT": 5,
        "INTERRUPTED": 130,
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["tools", "--tools", "no_such_tool"], "foxagent tools: Unknown tool 'no_such_tool'"),
        (["run", "--tools", "no_such_tool", "hi"], "foxagent run: Unknown tool 'no_such_tool'"),
        (["mcp", "serve", "--tools", "no_such_tool"], "foxagent mcp serve: Unknown tool"),
    ],
    ids=["tools", "run", "mcp serve"],
)
def test_a_bad_tools_spec_is_exit_code_usage_for_every_command_that_loads_tools(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    argv: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)  # no config file from the repo
    code = cli.main(argv)
    assert type(code) is ExitCode and code is ExitCode.USAGE
    assert message in capsys.readouterr().err


def test_handlers_return_exit_code_members(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["template", "path"])
    assert type(code) is ExitCode and code is ExitCode.OK
    # A port nothing listens on: doctor's reachability check fails.
    code = cli.main(["doctor", "--base-url", "http://127.0.0.1:9/v1"])
    assert type(code) is ExitCode and code is ExitCode.FAILED
    assert "✗ server reachable" in capsys.readouterr().out


def test_no_command_prints_the_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == ExitCode.OK
    assert capsys.readouterr().out.startswith("usage: foxagent")


def test_help_imports_no_handler_module() -> None:
    code = (
        "import sys\n"
        "from foxagent.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = ('pydantic', 'foxagent._toolset', 'foxagent_tools', 'foxagent.cli._run',\n"
        "         'foxagent.cli._tools', 'foxagent.cli._server', 'foxagent.cli._mcp_serve')\n"
        "sys.exit(' '.join(m for m in heavy if m in sys.modules) or None)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
