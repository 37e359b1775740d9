"""The flags of each ``foxagent`` command, one function per command.

Only argparse here: building the parser must not import pydantic or the tools, so
``foxagent --help`` stays fast. The order of ``add_argument`` calls is the order ``--help``
shows them in.
"""

from __future__ import annotations

import argparse

from foxagent._environment import DEFAULT_BASE_URL, DEFAULT_PORT

__all__ = [
    "add_doctor_arguments",
    "add_eval_arguments",
    "add_mcp_serve_arguments",
    "add_models_arguments",
    "add_run_arguments",
    "add_serve_arguments",
    "add_template_arguments",
    "add_tools_arguments",
]

_TOOLS_HELP = (
    "stock tool name, 'stock', module, module:object or .py file "
    "(repeatable; default: the stock tools)"
)


def add_tools_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``foxagent tools`` to ``parser``."""
    parser.add_argument(
        "--tools",
        action="append",
        metavar="SPEC",
        help="stock tool name, 'stock', module path, module:object or .py file (repeatable; "
        "default: the stock tools)",
    )
    parser.add_argument(
        "--mcp",
        action="append",
        metavar="SERVER",
        help="also show an MCP server's tools: a command line or an http(s) URL (repeatable)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``foxagent run`` to ``parser``.

    Settings that a config file or the environment may also give default to ``None`` (not
    ``False``), so ``RunConfig.resolve`` can tell "not given" from "given as off".
    """
    parser.add_argument("question", help="the question (any language)")
    parser.add_argument("--tools", action="append", metavar="SPEC", default=None, help=_TOOLS_HELP)
    parser.add_argument(
        "--mcp",
        action="append",
        metavar="SERVER",
        default=None,
        help="add an MCP server's tools: a command line ('python server.py', started for the "
        "run) or a streamable HTTP URL (repeatable; with --tools or the stock tools)",
    )
    backend = parser.add_mutually_exclusive_group()
    backend.add_argument(
        "--base-url",
        help="the server's /v1 URL (env FOXAGENT_BASE_URL). With none configured, the run uses "
        f"the server at {DEFAULT_BASE_URL} if one answers there, else the embedded local model; "
        "stderr says which",
    )
    backend.add_argument(
        "--model-file",
        metavar="PATH",
        help="use this local GGUF model instead of a server (default without a server: "
        "qwen2.5-coder-0.5b)",
    )
    parser.add_argument("--api-key", help="the server's API key (env FOXAGENT_API_KEY)")
    parser.add_argument("--model", help="served model name (env FOXAGENT_MODEL; default: ask)")
    parser.add_argument(
        "--context-size",
        type=int,
        metavar="TOKENS",
        help="the embedded local model's context window (4096); using it means the local "
        "model, not a server",
    )
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument(
        "--system-prompt",
        metavar="TEXT|@FILE",
        help="system prompt, or @path to read it from a file",
    )
    prompt.add_argument(
        "--no-system-prompt",
        action="store_true",
        default=None,
        help="send no system prompt (FoxBrain's is the default)",
    )
    parser.add_argument("--max-steps", type=int, help="model requests before giving up (8)")
    parser.add_argument("--temperature", type=float, help="sampling temperature (0.5)")
    parser.add_argument("--max-tokens", type=int, help="tokens per reply (2048)")
    parser.add_argument(
        "--request-timeout",
        type=float,
        metavar="SECONDS",
        help="seconds one model request may take, retries included (300; env "
        "FOXAGENT_REQUEST_TIMEOUT)",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        default=None,
        help="stream replies: FoxBrain's steps and reflections show on stderr as they come "
        "(no tags, no call JSON); the answer is shown once (live on a terminal)",
    )
    parser.add_argument(
        "--tool-choice",
        metavar="CHOICE",
        help="auto (default), required, none, or a tool's name to force that tool; "
        "a forced choice applies until the first call",
    )
    parser.add_argument(
        "--strict-tools",
        action="store_true",
        default=None,
        help="mark tools strict: vLLM >= 0.32 then holds a call's arguments to the tool's schema",
    )
    parser.add_argument(
        "--trace",
        metavar="FILE",
        help="append the run's events to FILE as JSON lines (no keys or headers in it)",
    )
    parser.add_argument(
        "--steps",
        action="store_true",
        help="also print FoxBrain's structured view (the guide's === 解析後的回應 === block: "
        "steps, answer, reflections, scores) on stderr; stdout always carries the answer alone",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object for scripts; an error prints {"error": {"type", "message", '
        '"exit_code"}}',
    )


def add_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``foxagent serve`` to ``parser`` (defaults: the guide's tested command)."""
    parser.add_argument("model_path", help="the FoxBrain checkpoint directory")
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1; 0.0.0.0 exposes the server)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=DEFAULT_PORT,
        help=f"port (default {DEFAULT_PORT}, where foxagent run, doctor and Agent() look)",
    )
    parser.add_argument("--tensor-parallel-size", type=int, default=1, help="GPUs (default 1)")
    parser.add_argument("--max-model-len", type=int, default=32768, help="context (32768)")
    parser.add_argument("--gpu-memory-utilization", type=float, default=0.97, help="(0.97)")
    parser.add_argument("--dtype", default="auto", help="weights dtype (auto)")
    parser.add_argument("--served-model-name", help="the name clients use (default: the path)")
    parser.add_argument("--chat-template", help="template path (default: foxagent's)")
    parser.add_argument("--api-key", help="the key clients must send (env FOXAGENT_API_KEY)")
    parser.add_argument("--dry-run", action="store_true", help="print the command, start nothing")


def add_doctor_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``foxagent doctor`` to ``parser``."""
    parser.add_argument(
        "--base-url",
        help=f"the server's /v1 URL (env FOXAGENT_BASE_URL; default {DEFAULT_BASE_URL})",
    )
    parser.add_argument("--api-key", help="the server's API key (env FOXAGENT_API_KEY)")
    parser.add_argument(
        "--strict",
        action="store_true",
        help="also probe whether strict tools are honoured (one forced call)",
    )


def add_models_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``foxagent models`` to ``parser``."""
    parser.add_argument(
        "action",
        choices=["pull", "list"],
        help="pull: fetch a model into the cache; list: the known models and the cache",
    )
    parser.add_argument(
        "name",
        nargs="?",
        help="pull: a name from `foxagent models list` (default: the default model)",
    )


def add_template_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``foxagent template`` to ``parser``."""
    parser.add_argument(
        "action", choices=["path", "show"], help="path: where the installed copy is; show: print it"
    )


def add_mcp_serve_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``foxagent mcp serve`` to ``parser``."""
    parser.add_argument("--tools", action="append", metavar="SPEC", help=_TOOLS_HELP)
    parser.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        # No flag takes the token: command lines are visible to every user in `ps`.
        help="stdio (default; the client starts this command) or http (streamable HTTP; with "
        "FOXAGENT_MCP_TOKEN set in the environment, every request needs 'Authorization: Bearer "
        "<token>'; no flag takes the token, as command lines show in ps)",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface for http (default 127.0.0.1; a non-loopback address exposes the tools "
        "and is warned about)",
    )
    parser.add_argument("--port", type=int, default=8000, help="port for http (default 8000)")
    parser.add_argument("--path", default="/mcp", help="endpoint path for http (default /mcp)")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds a tool call may take (60)"
    )


def add_eval_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``foxagent eval`` to ``parser`` (settings the environment or a config
    file may also give default to ``None``, as for ``run``)."""
    parser.add_argument(
        "--suite",
        choices=["bfcl", "local"],
        default="bfcl",
        help="bfcl: BFCL's single-turn categories (the pinned bfcl-eval wheel, fetched once, "
        "never installed); local: everyday questions with the stock tools (default bfcl)",
    )
    parser.add_argument(
        "--categories",
        action="append",
        nargs="+",
        metavar="NAME",
        help="only these categories (space- or comma-separated; default: all of the suite's)",
    )
    parser.add_argument("--limit", type=int, metavar="N", help="at most N cases per category")
    parser.add_argument(
        "--seed",
        type=int,
        metavar="S",
        help="picks the cases under --limit and is the requests' sampling seed (42)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, metavar="C", help="cases run at once (4)"
    )
    parser.add_argument(
        "--json",
        metavar="FILE",
        help="the JSON report (default foxagent-eval-SUITE.json); per-case records go to "
        "FILE's .cases.jsonl next to it, and the same command resumes from them",
    )
    parser.add_argument("--html", metavar="FILE", help="also write a self-contained HTML report")
    _add_agent_arguments(parser, "case")


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the flags of ``foxagent batch`` to ``parser`` (the agent's flags are ``run``'s; those a
    config file or the environment may also give default to ``None``, as for ``run``)."""
    parser.add_argument("questions", metavar="QUESTIONS", help="the questions, one JSON per line")
    parser.add_argument(
        "--output",
        "-o",
        required=True,
        metavar="FILE",
        help="the answers file: one JSON line per question, appended; ids already in it are "
        "not asked again (resume)",
    )
    parser.add_argument(
        "--concurrency", type=int, metavar="N", help="questions in flight at once (16; per actor)"
    )
    parser.add_argument(
        "--retry-errors", action="store_true", help="ask the questions whose line is an error again"
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        metavar="ADDRESS",
        help="run on Ray (pip install 'foxagent[ray]'): the cluster's address, or none for what "
        "ray.init finds (RAY_ADDRESS under `ray job submit`, else a local Ray)",
    )
    parser.add_argument("--ray-actors", type=int, metavar="N", help="actors, one agent each (1)")
    parser.add_argument("--ray-cpus", type=float, metavar="CPUS", help="CPUs per actor (1)")
    parser.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object on stdout"
    )
    parser.add_argument("--tools", action="append", metavar="SPEC", default=None, help=_TOOLS_HELP)
    parser.add_argument(
        "--mcp", action="append", metavar="SERVER", default=None, help="add an MCP server's tools"
    )
    _add_agent_arguments(parser, "question")
    parser.add_argument("--tool-choice", metavar="CHOICE", help="auto, required, none or a tool")
    parser.add_argument(
        "--strict-tools", action="store_true", default=None, help="mark tools strict"
    )


__all__ += ["add_batch_arguments"]


def _add_agent_arguments(parser: argparse.ArgumentParser, unit: str) -> None:
    """The model and agent flags ``eval`` and ``batch`` share (``run`` has its own, longer
    help); ``unit`` is what one agent run answers (``case``, ``question``)."""
    backend = parser.add_mutually_exclusive_group()
    backend.add_argument(
        "--base-url",
        help="the server's /v1 URL (env FOXAGENT_BASE_URL); with none configured, the server "
        f"at {DEFAULT_BASE_URL} if one answers, else the embedded local model",
    )
    backend.add_argument("--model-file", metavar="PATH", help="a local GGUF model instead")
    parser.add_argument("--api-key", help="the server's API key (env FOXAGENT_API_KEY)")
    parser.add_argument("--model", help="served model name (env FOXAGENT_MODEL; default: ask)")
    parser.add_argument(
        "--context-size", type=int, metavar="TOKENS", help="the embedded model's context window"
    )
    prompt = parser.add_mutually_exclusive_group()
    prompt.add_argument(
        "--system-prompt", metavar="TEXT|@FILE", help="system prompt, or @path to read it from"
    )
    prompt.add_argument(
        "--no-system-prompt",
        action="store_true",
        default=None,
        help="send no system prompt (FoxBrain's is the default on a server)",
    )
    parser.add_argument("--max-steps", type=int, help=f"model requests per {unit} (8)")
    parser.add_argument("--temperature", type=float, help="sampling temperature (0.5)")
    parser.add_argument("--max-tokens", type=int, help="tokens per reply (2048)")
    parser.add_argument(
        "--request-timeout", type=float, metavar="SECONDS", help="seconds one request may take"
    )
