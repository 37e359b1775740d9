"""The command table: every ``foxagent`` command, its flags and its handler, in one place.

A handler is named by a ``"module:function"`` string and imported only when its command runs:
the handlers' modules import pydantic, the tools, aiohttp or the MCP SDK, and
``foxagent --help`` must not pay for any of them.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, TextIO, cast

from foxagent.cli import _arguments

__all__ = ["COMMANDS", "Command", "Handler", "load_handler"]


class Handler(Protocol):
    """What every command's handler looks like.

    A handler gets the parsed flags (``vars()`` of argparse's namespace, so it can also be called
    with a plain dict), writes its results to ``out`` and its progress and errors to ``err``, and
    returns the exit status: an `ExitCode` (only ``serve``, once vLLM
    has run, passes vLLM's own status on instead).
    """

    def __call__(self, flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int: ...


@dataclass(frozen=True, kw_only=True)
class Command:
    """One entry of the command table.

    A command either runs a handler (a leaf) or groups subcommands (``foxagent mcp serve``);
    never both.

    Attributes:
        name: what the user types.
        help: the one line ``foxagent --help`` shows for it.
        description: the text at the top of the command's own ``--help``.
        arguments: adds the command's flags to its subparser.
        handler: ``"module:function"`` of a `Handler`, for a leaf.
        subcommands: the actions under a group.
        passthrough: it accepts words after ``--`` (as ``flags["extra"]``).
    """

    name: str
    help: str
    description: str | None = None
    arguments: Callable[[argparse.ArgumentParser], None] | None = None
    handler: str | None = None
    subcommands: tuple[Command, ...] = ()
    passthrough: bool = False

    def __post_init__(self) -> None:
        # Caught when the module is imported, so a malformed entry fails every CLI test at once.
        if (self.handler is None) == (not self.subcommands):
            raise ValueError(
                f"command {self.name!r} needs a handler or subcommands (one, not both)"
            )

    @property
    def dest(self) -> str:
        """The namespace attribute that holds the name of the chosen subcommand."""
        return f"{self.name}_command"


def load_handler(reference: str) -> Handler:
    """Import the handler that ``reference`` (``"package.module:function"``) names.

    Raises:
        ValueError: ``reference`` is not of the form ``module:function``.
        TypeError: it names something that cannot be called.
    """
    module_name, _, function_name = reference.partition(":")
    if not module_name or not function_name:
        raise ValueError(f"handler {reference!r} is not 'module:function'")
    handler = getattr(importlib.import_module(module_name), function_name)
    if not callable(handler):
        raise TypeError(f"handler {reference!r} is not callable")
    return cast(Handler, handler)


_TOOLS = Command(
    name="tools",
    help="show the tool schemas the model would see, with their size in tokens",
    description="Show the tool schemas the model would see. Token counts are estimates: "
    "ASCII characters / 4 plus one token per non-ASCII character.",
    arguments=_arguments.add_tools_arguments,
    handler="foxagent.cli._tools:tools_command",
)
_RUN = Command(
    name="run",
    help="ask FoxBrain a question, running tools as it calls them",
    description="Ask FoxBrain a question through a vLLM server, running the tools it calls. "
    "stdout carries the answer alone (or one JSON object with --json); progress and errors go "
    "to stderr. Settings come from flags, then FOXAGENT_* (or OPENAI_*) environment variables, "
    "then [tool.foxagent] in ./pyproject.toml or ./foxagent.toml; with no server configured, "
    "the server at the default address is used if one answers, else the embedded local model. "
    "Exit codes: 0 answered, 2 usage error, 3 server unreachable, 4 server or model "
    "misbehaved, 5 step limit, 130 interrupted (Ctrl-C).",
    arguments=_arguments.add_run_arguments,
    handler="foxagent.cli._run:run_command",
)
_SERVE = Command(
    name="serve",
    help="start vLLM with FoxBrain's tested flags and foxagent's chat template",
    description="Start vLLM's OpenAI-compatible server as FoxBrain's guide tested it "
    "(--enable-auto-tool-choice --tool-call-parser llama3_json, foxagent's chat template, "
    "--max-model-len 32768, --gpu-memory-utilization 0.97). The API key comes from "
    "FOXAGENT_API_KEY (or --api-key) and reaches vLLM as VLLM_API_KEY. Arguments after "
    "`--` go to vLLM unchanged.",
    arguments=_arguments.add_serve_arguments,
    handler="foxagent.cli._server:serve_command",
    passthrough=True,
)
_DOCTOR = Command(
    name="doctor",
    help="check a FoxBrain server: reachable, model, tool parsing, chat template",
    description="Check a vLLM server before a demo and say how to fix what is wrong. "
    "Exit code 0 when every check passes, 1 otherwise.",
    arguments=_arguments.add_doctor_arguments,
    handler="foxagent.cli._server:doctor_command",
)
_MODELS = Command(
    name="models",
    help="the local model used when no server is set",
    arguments=_arguments.add_models_arguments,
    handler="foxagent.cli._server:models_command",
)
_TEMPLATE = Command(
    name="template",
    help="foxagent's Llama 3.1 chat template",
    arguments=_arguments.add_template_arguments,
    handler="foxagent.cli._server:template_command",
)
_EVAL = Command(
    name="eval",
    help="measure tool calling on real model output: BFCL or the local suite",
    description="Run BFCL's single-turn categories (--suite bfcl) or everyday questions "
    "(--suite local) through foxagent's loop against a server or the embedded model. Each "
    "BFCL case is generated once and scored by BFCL's own AST checker three ways: the "
    "server's tool_calls as a plain client parses them (raw), the calls foxagent decided to "
    "run from that first reply, and the calls of the whole run. stdout gets the summary "
    "table; progress goes to stderr. Records are kept per case, so an interrupted run resumes.",
    arguments=_arguments.add_eval_arguments,
    handler="foxagent.cli._eval:eval_command",
)
_MCP = Command(
    name="mcp",
    help="serve foxagent tools to any MCP client",
    description="Model Context Protocol. `foxagent mcp serve` offers foxagent tools (stock "
    "ones or your module) to MCP clients over stdio or streamable HTTP. To use an MCP "
    "server's tools in foxagent, see `foxagent run --mcp`.",
    subcommands=(
        Command(
            name="serve",
            help="serve tools over MCP (stdio by default)",
            description="Serve foxagent tools as an MCP server. Tools that require approval "
            "are not served. Progress goes to stderr; with stdio, stdout carries only the "
            "protocol.",
            arguments=_arguments.add_mcp_serve_arguments,
            handler="foxagent.cli._mcp_serve:mcp_serve_command",
        ),
    ),
)

#: Every command, in the order ``foxagent --help`` lists them.
COMMANDS: tuple[Command, ...] = (
    _TOOLS,
    _RUN,
    _EVAL,
    _SERVE,
    _DOCTOR,
    _MODELS,
    _TEMPLATE,
    _MCP,
)

_BATCH = Command(
    name="batch",
    help="answer every question of a JSON-lines file, resumable, locally or on Ray",
    description="Answer every question of QUESTIONS (one JSON per line: id, question, and "
    "optionally history and system_prompt) with the agent `foxagent run` would build, "
    "--concurrency at a time, appending one JSON line per question to --output (id, answer, "
    "parsed, tool_calls, usage, timings, steps, error). A failed question is an error line. "
    "Ids already in --output are not asked again, so the same command resumes. Bad input "
    "lines stop the job before it starts. Progress goes to stderr, the summary to stdout. "
    "--ray runs it on a Ray cluster. Exit codes: 0 all answered, 1 some error lines, 2 usage "
    "error or bad input, 3 server unreachable, 130 interrupted.",
    arguments=_arguments.add_batch_arguments,
    handler="foxagent.cli._batch:batch_command",
)
COMMANDS += (_BATCH,)
