"""The ``foxagent`` command line: parsing arguments and printing, nothing more.

Heavy imports (pydantic, the tools) happen inside the command functions, so ``foxagent --help``
stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TextIO

EXIT_OK = 0
EXIT_USAGE = 2
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
    tools.add_argument("--json", action="store_true", help="print one JSON document")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code."""
    args = _parser().parse_args(argv)
    if args.command == "tools":
        return _tools_command(args.tools or ["stock"], as_json=args.json, out=sys.stdout)
    _parser().print_help()
    return EXIT_OK


def _tools_command(specs: list[str], *, as_json: bool, out: TextIO) -> int:
    from foxagent._exceptions import UserError
    from foxagent._tokens import estimate_tokens
    from foxagent._toolset import Toolset

    try:
        toolset = Toolset.load(specs)
    except UserError as error:
        print(f"foxagent tools: {error}", file=sys.stderr)
        return EXIT_USAGE
    schemas = toolset.openai_schemas()
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


if __name__ == "__main__":
    sys.exit(main())
