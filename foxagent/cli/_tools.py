"""``foxagent tools``: the tool schemas the model would see, with their size in tokens."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, TextIO

from foxagent._exceptions import FoxagentError, UserError
from foxagent._tokens import estimate_tokens
from foxagent._toolset import Toolset
from foxagent.cli._exit import ExitCode

__all__ = ["tools_command"]

_ESTIMATE = "estimated: ASCII characters / 4 + 1 per non-ASCII character"


def tools_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    """Run ``foxagent tools``: print each schema and its estimated token count.

    Args:
        flags: ``tools`` (specs; default the stock tools), ``mcp`` (MCP servers whose tools are
            added) and ``json`` (print one JSON document instead of text).
        out: where the schemas go.
        err: where errors go.

    Returns:
        ``OK``; ``USAGE`` when the tools do not load; ``UNREACHABLE`` when an MCP server does
        not start or answer.
    """
    specs = list(flags.get("tools") or ["stock"])
    servers = list(flags.get("mcp") or ())
    try:
        toolset = Toolset.load(specs)
        for server in servers:
            toolset = toolset + Toolset.from_mcp(server)
        # Only MCP tools need the event loop: their schemas are known once the server answers.
        schemas = asyncio.run(_schemas_of(toolset)) if servers else toolset.openai_schemas()
    except UserError as error:
        err.write(f"foxagent tools: {error}\n")
        return ExitCode.USAGE
    except FoxagentError as error:  # an MCP server that cannot be started or reached
        err.write(f"foxagent tools: {error}\n")
        return ExitCode.UNREACHABLE
    tokens = [estimate_tokens(json.dumps(schema, ensure_ascii=False)) for schema in schemas]
    if flags.get("json"):
        rows = [{"schema": s, "tokens": n} for s, n in zip(schemas, tokens, strict=True)]
        document = {"tools": rows, "total_tokens": sum(tokens), "token_estimate": _ESTIMATE}
        out.write(json.dumps(document, ensure_ascii=False, indent=2) + "\n")
        return ExitCode.OK
    for schema, count in zip(schemas, tokens, strict=True):
        out.write(f"{schema['function']['name']}  (~{count} tokens)\n")
        out.write(json.dumps(schema, ensure_ascii=False, indent=2) + "\n\n")
    out.write(f"{len(schemas)} tools, ~{sum(tokens)} tokens in all ({_ESTIMATE})\n")
    return ExitCode.OK


async def _schemas_of(toolset: Toolset) -> list[dict[str, Any]]:
    """The OpenAI schemas of ``toolset``, with its MCP servers started and stopped again."""
    async with toolset:
        return toolset.openai_schemas()
