"""The ``foxagent`` entry point: the parser built from the command table, and the dispatch.

Nothing here imports pydantic or the tools: a command's handler is imported only once that
command was chosen, so ``foxagent --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from foxagent import __version__
from foxagent.cli._commands import COMMANDS, Command, load_handler
from foxagent.cli._exit import ExitCode, json_error

__all__ = ["main"]

_DESCRIPTION = "Tool-calling agents for FoxBrain (Llama 3.1) served by vLLM."


class _Parser(argparse.ArgumentParser):
    """argparse's parser, which also reports a usage error as JSON on stdout when the words
    asked for ``--json`` (scripts read one JSON object there, error or not)."""

    json_errors = False

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        if self.json_errors:
            sys.stdout.write(json_error("UsageError", message, ExitCode.USAGE) + "\n")
        raise SystemExit(ExitCode.USAGE)


def _parser(*, json_errors: bool = False) -> argparse.ArgumentParser:
    """The full argparse parser: every command of `COMMANDS` with its flags."""
    parser = _Parser(prog="foxagent", description=_DESCRIPTION)
    parser.json_errors = json_errors
    parser.add_argument(
        "--version", action="version", version=f"foxagent {__version__}", help="print the version"
    )
    _add_commands(parser, COMMANDS, dest="command", metavar="COMMAND", required=False)
    return parser


def _add_commands(
    parser: argparse.ArgumentParser,
    commands: Sequence[Command],
    *,
    dest: str,
    metavar: str,
    required: bool,
) -> None:
    """Add ``commands`` (and, recursively, their subcommands) as subparsers of ``parser``."""
    subparsers = parser.add_subparsers(dest=dest, metavar=metavar, required=required)
    for command in commands:
        subparser = subparsers.add_parser(
            command.name, help=command.help, description=command.description
        )
        if isinstance(parser, _Parser) and isinstance(subparser, _Parser):
            subparser.json_errors = parser.json_errors
        if command.arguments is not None:
            command.arguments(subparser)
        if command.subcommands:
            # A group does nothing on its own, so argparse insists on one of its actions.
            _add_commands(
                subparser, command.subcommands, dest=command.dest, metavar="ACTION", required=True
            )


def _chosen(args: argparse.Namespace) -> Command | None:
    """The leaf command the parsed ``args`` name, or ``None`` when no command was given."""
    commands: Sequence[Command] = COMMANDS
    dest = "command"
    while True:
        name = getattr(args, dest, None)
        if name is None:
            return None
        command = next(command for command in commands if command.name == name)
        if not command.subcommands:
            return command
        commands, dest = command.subcommands, command.dest


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``foxagent`` command line.

    Args:
        argv: the words after the program name (default: ``sys.argv[1:]``).

    Returns:
        The chosen command's exit code (an `ExitCode`; ``serve`` passes vLLM's own on);
        ``INTERRUPTED`` (130) after Ctrl-C, with one line on stderr and no traceback.
    """
    words = list(sys.argv[1:] if argv is None else argv)
    # Words after `--` are for a passthrough command (`serve` hands them to vLLM); they are cut
    # off before parsing because argparse mishandles `--` inside subcommands.
    extra = words[words.index("--") + 1 :] if "--" in words else []
    words = words[: words.index("--")] if "--" in words else words
    parser = _parser(json_errors="--json" in words)
    args = parser.parse_args(words)
    command = _chosen(args)
    if extra and (command is None or not command.passthrough):
        takers = " or ".join(f"`foxagent {c.name}`" for c in COMMANDS if c.passthrough)
        parser.error(f"arguments after `--` are only for {takers}")
    if command is None or command.handler is None:
        parser.print_help()
        return ExitCode.OK
    try:
        handler = load_handler(command.handler)
        return handler(vars(args) | {"extra": extra}, out=sys.stdout, err=sys.stderr)
    except KeyboardInterrupt:  # a handler that has no Ctrl-C handling of its own
        sys.stderr.write(f"\nfoxagent {command.name}: interrupted\n")
        return ExitCode.INTERRUPTED
