"""An mkdocs hook: the command-line reference, written from ``foxagent``'s own argparse parser.

The page ``reference/cli.md`` is not a file in ``docs/``: on every build this hook walks
``foxagent.cli._main._parser()`` (the parser ``foxagent`` itself runs, built from the command
table) and adds the page to the site, so a flag added to the CLI is in the reference the next
time the docs are built, and a flag removed is gone. ``tests/test_docs_cli_reference.py`` checks
the page against the parser too.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

PAGE = "reference/cli.md"

_INTRO = """\
# Command line

Every `foxagent` command, with its flags. This page is generated from the parser `foxagent`
itself runs (`foxagent.cli._main._parser()`, built from the command table in
`foxagent/cli/_commands.py`) each time the site is built, so it cannot drift from
`foxagent COMMAND --help`.

Settings also come from `FOXAGENT_*` (or `OPENAI_*`) environment variables and from
`[tool.foxagent]` in `./pyproject.toml` or `./foxagent.toml`; flags win over both.
Exit codes of `foxagent run`: 0 answered, 2 usage error, 3 server unreachable, 4 server or model
misbehaved, 5 step limit, 130 interrupted (Ctrl-C). The guides show the commands at work:
[Quick start](../guides/quick-start.md), [Deploying FoxBrain](../guides/deploying.md),
[Evaluating](../guides/eval.md), [Batch jobs](../guides/batch.md), [MCP](../guides/mcp.md).
"""


def _subcommands(parser: argparse.ArgumentParser) -> list[tuple[str, argparse.ArgumentParser]]:
    """The (name, parser) of each subcommand of ``parser``, in the order they were added."""
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            found.extend(action.choices.items())
    return found


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _flag(action: argparse.Action) -> str:
    """How the flag is written: ``--tools SPEC``, ``-h, --help`` or the positional's name."""
    if not action.option_strings:
        return f"`{action.metavar or action.dest}`"
    if action.nargs == 0:
        return ", ".join(f"`{option}`" for option in action.option_strings)
    metavar = action.metavar
    if metavar is None:
        metavar = "{" + ",".join(map(str, action.choices)) + "}" if action.choices else None
    metavar = metavar or action.dest.upper()
    if isinstance(metavar, tuple):
        metavar = " ".join(metavar)
    if action.nargs == "?":
        metavar = f"[{metavar}]"
    elif action.nargs in ("+", "*"):
        metavar = f"{metavar} [{metavar} ...]"
    return ", ".join(f"`{option} {metavar}`" for option in action.option_strings)


def _help(action: argparse.Action) -> str:
    text = action.help or ""
    if "%(" in text:
        text = text % {**vars(action), "prog": "foxagent"}
    if action.choices and not isinstance(action, argparse._SubParsersAction):
        choices = ", ".join(f"`{choice}`" for choice in action.choices)
        text = f"{text} (one of {choices})" if text else f"one of {choices}"
    if action.required and action.option_strings:
        text = f"**required.** {text}"
    return _cell(text)


def _command(words: list[str], parser: argparse.ArgumentParser, out: list[str]) -> None:
    """The section of one command (and, after it, of each of its subcommands)."""
    level = "#" * min(len(words) + 1, 4)
    out.append(f"{level} `{' '.join(words)}`\n")
    if parser.description:
        out.append(_cell(parser.description) + "\n")
    usage = parser.format_usage().strip().removeprefix("usage: ")
    out.append("```text\n" + usage + "\n```\n")
    rows = [
        (_flag(action), _help(action))
        for action in parser._actions
        if not isinstance(action, (argparse._SubParsersAction, argparse._HelpAction))
        and action.help != argparse.SUPPRESS
    ]
    children = _subcommands(parser)
    if children:
        rows.extend((f"`{name}`", _cell(child.description or "")) for name, child in children)
    if rows:
        out.append("| argument | what it does |\n|---|---|")
        out.extend(f"| {flag} | {text} |" for flag, text in rows)
        out.append("")
    for name, child in children:
        _command([*words, name], child, out)


def render() -> str:
    """The whole page, as Markdown."""
    os.environ.setdefault("COLUMNS", "100")  # argparse wraps usage lines to the terminal
    from foxagent.cli._main import _parser

    parser = _parser()
    out = [_INTRO]
    commands = _subcommands(parser)
    out.append("| command | what it does |\n|---|---|")
    helps = {
        action.dest: action.help
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for action in action._choices_actions
    }
    for name, _child in commands:
        out.append(f"| [`foxagent {name}`](#foxagent-{name}) | {_cell(helps.get(name) or '')} |")
    out.append("")
    out.append("`foxagent --version` prints the version.\n")
    for name, child in commands:
        _command(["foxagent", name], child, out)
    return "\n".join(out)


def on_files(files: Any, config: Any) -> Any:
    """mkdocs: add the generated page to the site's files."""
    from mkdocs.structure.files import File

    files.append(File.generated(config, PAGE, content=render()))
    return files
