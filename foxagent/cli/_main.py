"""The ``foxagent`` command line: parsing arguments and printing, nothing more.

Heavy imports (pydantic, the tools) happen inside the command functions, so ``foxagent --help``
stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

EXIT_OK = 0
EXIT_USAGE = 2  # bad flags, tools that do not load; `run`'s other codes live in cli._run
EXIT_MCP_UNREACHABLE = 3  # an MCP server did not start or answer (as `run`'s unreachable)
_ESTIMATE = "estimated: ASCII characters / 4 + 1 per non-ASCII character"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="foxagent",
        description="Tool-calling agents for FoxBrain (Llama 3.1) served by vLLM.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    tools = commands.add_parser(
        "tools",
        help="show the tool schemas the model would see, with their size in tokens",
        description="Show the tool schemas the model would see. Token counts are estimates: "
        "ASCII characters / 4 plus one token per non-ASCII character.",
    )
    tools.add_argument(
        "--tools",
        action="append",
        metavar="SPEC",
        help="stock tool name, 'stock', module path, module:object or .py file (repeatable; "
        "default: the stock tools)",
    )
    tools.add_argument(
        "--mcp",
        action="append",
        metavar="SERVER",
        help="also show an MCP server's tools: a command line or an http(s) URL (repeatable)",
    )
    tools.add_argument("--json", action="store_true", help="print one JSON document")
    _add_run_parser(commands)
    _add_server_parsers(commands)
    _add_mcp_parser(commands)
    return parser


def _add_mcp_parser(commands: Any) -> None:
    mcp = commands.add_parser(
        "mcp",
        help="serve foxagent tools to any MCP client",
        description="Model Context Protocol. `foxagent mcp serve` offers foxagent tools (stock "
        "ones or your module) to MCP clients over stdio or streamable HTTP. To use an MCP "
        "server's tools in foxagent, see `foxagent run --mcp`.",
    )
    actions = mcp.add_subparsers(dest="mcp_command", metavar="ACTION", required=True)
    serve = actions.add_parser(
        "serve",
        help="serve tools over MCP (stdio by default)",
        description="Serve foxagent tools as an MCP server. Tools that require approval are "
        "not served. Progress goes to stderr; with stdio, stdout carries only the protocol.",
    )
    serve.add_argument(
        "--tools",
        action="append",
        metavar="SPEC",
        help="stock tool name, 'stock', module, module:object or .py file "
        "(repeatable; default: the stock tools)",
    )
    serve.add_argument(
        "--transport",
        choices=["stdio", "http"],
        default="stdio",
        help="stdio (default; the client starts this command) or http (streamable HTTP)",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface for http (default 127.0.0.1; 0.0.0.0 exposes the tools)",
    )
    serve.add_argument("--port", type=int, default=8000, help="port for http (default 8000)")
    serve.add_argument("--path", default="/mcp", help="endpoint path for http (default /mcp)")
    serve.add_argument(
        "--timeout", type=float, default=60.0, help="seconds a tool call may take (60)"
    )


def _add_server_parsers(commands: Any) -> None:
    serve = commands.add_parser(
        "serve",
        help="start vLLM with FoxBrain's tested flags and foxagent's chat template",
        description="Start vLLM's OpenAI-compatible server as FoxBrain's guide tested it "
        "(--enable-auto-tool-choice --tool-call-parser llama3_json, foxagent's chat template, "
        "--max-model-len 32768, --gpu-memory-utilization 0.97). The API key comes from "
        "FOXAGENT_API_KEY (or --api-key) and reaches vLLM as VLLM_API_KEY. Arguments after "
        "`--` go to vLLM unchanged.",
    )
    serve.add_argument("model_path", help="the FoxBrain checkpoint directory")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1; 0.0.0.0 exposes the server)",
    )
    serve.add_argument("--port", type=int, default=8883, help="port (default 8883)")
    serve.add_argument("--tensor-parallel-size", type=int, default=1, help="GPUs (default 1)")
    serve.add_argument("--max-model-len", type=int, default=32768, help="context (32768)")
    serve.add_argument("--gpu-memory-utilization", type=float, default=0.97, help="(0.97)")
    serve.add_argument("--dtype", default="auto", help="weights dtype (auto)")
    serve.add_argument("--served-model-name", help="the name clients use (default: the path)")
    serve.add_argument("--chat-template", help="template path (default: foxagent's)")
    serve.add_argument("--api-key", help="the key clients must send (env FOXAGENT_API_KEY)")
    serve.add_argument("--dry-run", action="store_true", help="print the command, start nothing")
    doctor = commands.add_parser(
        "doctor",
        help="check a FoxBrain server: reachable, model, tool parsing, chat template",
        description="Check a vLLM server before a demo and say how to fix what is wrong. "
        "Exit code 0 when every check passes, 1 otherwise.",
    )
    doctor.add_argument("--base-url", help="the server's /v1 URL (env FOXAGENT_BASE_URL)")
    doctor.add_argument("--api-key", help="the server's API key (env FOXAGENT_API_KEY)")
    models = commands.add_parser("models", help="the local model used when no server is set")
    models.add_argument(
        "action",
        choices=["pull", "list"],
        help="pull: fetch the default model into the cache; list: cached models",
    )
    template = commands.add_parser("template", help="foxagent's Llama 3.1 chat template")
    template.add_argument(
        "action", choices=["path", "show"], help="path: where the installed copy is; show: print it"
    )


def _add_run_parser(commands: Any) -> None:
    run = commands.add_parser(
        "run",
        help="ask FoxBrain a question, running tools as it calls them",
        description="Ask FoxBrain a question through a vLLM server, running the tools it calls. "
        "Settings come from flags, then FOXAGENT_* (or OPENAI_*) environment variables, then "
        "[tool.foxagent] in ./pyproject.toml or ./foxagent.toml. Exit codes: 0 answered, "
        "2 usage error, 3 server unreachable, 4 server or model misbehaved, 5 step limit.",
    )
    run.add_argument("question", help="the question (any language)")
    run.add_argument(
        "--tools",
        action="append",
        metavar="SPEC",
        default=None,
        help="stock tool name, 'stock', module, module:object or .py file "
        "(repeatable; default: the stock tools)",
    )
    run.add_argument(
        "--mcp",
        action="append",
        metavar="SERVER",
        default=None,
        help="add an MCP server's tools: a command line ('python server.py', started for the "
        "run) or a streamable HTTP URL (repeatable; with --tools or the stock tools)",
    )
    run.add_argument("--base-url", help="the server's /v1 URL (env FOXAGENT_BASE_URL)")
    run.add_argument("--api-key", help="the server's API key (env FOXAGENT_API_KEY)")
    run.add_argument("--model", help="served model name (env FOXAGENT_MODEL; default: ask)")
    prompt = run.add_mutually_exclusive_group()
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
    run.add_argument("--max-steps", type=int, help="model requests before giving up (8)")
    run.add_argument("--temperature", type=float, help="sampling temperature (0.5)")
    run.add_argument("--max-tokens", type=int, help="tokens per reply (2048)")
    run.add_argument(
        "--stream",
        action="store_true",
        default=None,
        help="stream replies and show the text as it comes",
    )
    run.add_argument(
        "--tool-choice",
        metavar="CHOICE",
        help="auto (default), required, none, or a tool's name to force that tool; "
        "a forced choice applies until the first call",
    )
    run.add_argument(
        "--strict-tools",
        action="store_true",
        default=None,
        help="mark tools strict: vLLM >= 0.32 then holds a call's arguments to the tool's schema",
    )
    run.add_argument(
        "--trace",
        metavar="FILE",
        help="append the run's events to FILE as JSON lines (no keys or headers in it)",
    )
    run.add_argument("--json", action="store_true", help="print one JSON object for scripts")
    run.add_argument(
        "--model-file",
        metavar="PATH",
        help="use this local GGUF model (default without a server: SmolLM2-135M)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    words = list(sys.argv[1:] if argv is None else argv)
    # Everything after `--` is passed to vLLM by `serve` (argparse mishandles `--` in subcommands).
    extra = words[words.index("--") + 1 :] if "--" in words else []
    words = words[: words.index("--")] if "--" in words else words
    parser = _parser()
    args = parser.parse_args(words)
    if extra and args.command != "serve":
        parser.error("arguments after `--` are only for `foxagent serve`")
    args.extra = extra
    if args.command == "tools":
        specs = args.tools or ["stock"]
        return _tools_command(specs, as_json=args.json, out=sys.stdout, mcp=args.mcp or ())
    if args.command == "mcp":
        from foxagent.cli._mcp_serve import serve_command

        return serve_command(vars(args), err=sys.stderr)
    if args.command in ("serve", "doctor", "template", "models"):
        import importlib

        handler = getattr(
            importlib.import_module("foxagent.cli._server"), f"{args.command}_command"
        )
        return int(handler(vars(args), out=sys.stdout, err=sys.stderr))
    if args.command == "run":
        from foxagent.cli._run import run_command

        return run_command(vars(args), out=sys.stdout, err=sys.stderr)
    parser.print_help()
    return EXIT_OK


def _tools_command(specs: list[str], *, as_json: bool, out: TextIO, mcp: Sequence[str] = ()) -> int:
    import asyncio

    from foxagent._exceptions import FoxagentError, UserError
    from foxagent._tokens import estimate_tokens
    from foxagent._toolset import Toolset

    async def schemas_of(toolset: Toolset) -> list[dict[str, Any]]:
        async with toolset:  # MCP servers are started, listed and stopped again
            return toolset.openai_schemas()

    try:
        toolset = Toolset.load(specs)
        for server in mcp:
            toolset = toolset + Toolset.from_mcp(server)
        schemas = asyncio.run(schemas_of(toolset)) if mcp else toolset.openai_schemas()
    except UserError as error:
        print(f"foxagent tools: {error}", file=sys.stderr)
        return EXIT_USAGE
    except FoxagentError as error:  # an MCP server that cannot be started or reached
        print(f"foxagent tools: {error}", file=sys.stderr)
        return EXIT_MCP_UNREACHABLE
    tokens = [estimate_tokens(json.dumps(schema, ensure_ascii=False)) for schema in schemas]
    if as_json:
        rows = [{"schema": s, "tokens": n} for s, n in zip(schemas, tokens, strict=True)]
        document = {"tools": rows, "total_tokens": sum(tokens), "token_estimate": _ESTIMATE}
        out.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        return EXIT_OK
    for schema, count in zip(schemas, tokens, strict=True):
        out.write(f"{schema['function']['name']}  (~{count} tokens)\n")
        out.write(json.dumps(schema, ensure_ascii=False, indent=2) + "\n\n")
    out.write(f"{len(schemas)} tools, ~{sum(tokens)} tokens in all ({_ESTIMATE})\n")
    return EXIT_OK
