"""``foxagent mcp serve``: foxagent tools served to any MCP client, over stdio or streamable HTTP.

The SDK's low-level ``Server`` is used rather than its decorator API (``MCPServer``), because a
foxagent tool already has its schema and its validation: the schema goes out as the tool's
``inputSchema`` unchanged, and ``Tool.invoke`` checks (and coerces) the arguments exactly as it
does for FoxBrain. Argument mistakes and ``ToolError``\\ s come back as ``isError`` results, so
the client's model can correct itself; an unknown tool is a protocol error, as the spec asks.

Tools made with ``requires_approval=True`` are not served: an MCP client would run them with
nobody asked.

Over HTTP, ``FOXAGENT_MCP_TOKEN`` (environment only, never a flag: command lines show in ``ps``)
makes every request need ``Authorization: Bearer <token>`` (see `foxagent.cli._mcp_auth`), and a
``--host`` that is not a loopback address is warned about, more loudly without a token.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any, TextIO

from foxagent._exceptions import ToolCallError, UserError
from foxagent._tools import ToolContext
from foxagent._toolset import AnyTool, Toolset
from foxagent.cli._exit import ExitCode
from foxagent.cli._mcp_auth import (
    BearerTokenMiddleware,
    public_bind_warning,
    token_from_environment,
)

try:
    import mcp_types
    from mcp.server import Server
    from mcp.server.context import ServerRequestContext
    from mcp.server.stdio import stdio_server
    from mcp.shared.exceptions import MCPError
    from pydantic_core import to_jsonable_python
except ImportError as _missing:  # pragma: no cover - exercised only without the extra
    raise UserError(
        f"MCP support needs the 'mcp' package ({_missing}): pip install 'foxagent[mcp]'"
    ) from None

__all__ = ["build_server", "mcp_serve_command", "serve"]


def build_server(toolset: Toolset, *, name: str = "foxagent", timeout: float = 60.0) -> Server[Any]:
    """An MCP server (the SDK's low-level ``Server``) offering ``toolset``'s tools.

    Args:
        toolset: the tools; those that require approval are left out.
        name: the server name clients see.
        timeout: seconds a call may take before it is stopped and reported as an error.
    """
    from foxagent import __version__

    served = {t.name: t for t in toolset if not getattr(t, "requires_approval", False)}
    listing = mcp_types.ListToolsResult(
        tools=[
            mcp_types.Tool(name=t.name, description=t.description, input_schema=t.parameters)
            for t in served.values()
        ]
    )

    async def list_tools(
        ctx: ServerRequestContext[Any], params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListToolsResult:
        return listing

    async def call_tool(
        ctx: ServerRequestContext[Any], params: mcp_types.CallToolRequestParams
    ) -> mcp_types.CallToolResult:
        tool = served.get(params.name)
        if tool is None:
            known = ", ".join(served) or "none"
            raise MCPError(
                code=mcp_types.INVALID_PARAMS,
                message=f"Unknown tool '{params.name}'; tools: {known}",
            )
        return await _call(tool, params.arguments or {}, timeout)

    return Server(
        name,
        version=__version__,
        get_tool_input_schema=lambda tool: served[tool].parameters if tool in served else None,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


async def _call(
    tool: AnyTool, arguments: Mapping[str, Any], timeout: float
) -> mcp_types.CallToolResult:
    try:
        result = await asyncio.wait_for(tool.invoke(arguments, ToolContext()), timeout)
    except asyncio.TimeoutError:
        return _error(f"Tool '{tool.name}' did not finish within {timeout:g} s and was stopped.")
    except ToolCallError as error:  # bad arguments, or the tool's own ToolError
        return _error(str(error))
    except Exception as error:  # a tool's bug is the client's error result, not a crash
        return _error(f"Tool '{tool.name}' failed: {type(error).__name__}: {error}")
    return _result(result)


def _error(text: str) -> mcp_types.CallToolResult:
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(text=text)], is_error=True)


def _result(value: Any) -> mcp_types.CallToolResult:
    """Text for the client's model; JSON-like results also as structured content."""
    if isinstance(value, str):
        return mcp_types.CallToolResult(content=[mcp_types.TextContent(text=value)])
    data = to_jsonable_python(value, fallback=str)
    text = json.dumps(data, ensure_ascii=False)
    # Structured content must be an object before the 2026 protocol; wrap anything else the
    # way the Python SDK does.
    structured = data if isinstance(data, dict) else {"result": data}
    return mcp_types.CallToolResult(
        content=[mcp_types.TextContent(text=text)], structured_content=structured
    )


async def serve(
    toolset: Toolset,
    *,
    transport: str = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    timeout: float = 60.0,
    token: str | None = None,
) -> None:
    """Serve ``toolset`` until the client disconnects (stdio) or the process is stopped (HTTP).

    With ``token`` (HTTP only), a request without ``Authorization: Bearer <token>`` gets a 401
    and reaches no tool.
    """
    server = build_server(toolset, timeout=timeout)
    if transport == "stdio":
        # stdio_server points fd 1 at stderr while serving, so a tool's print() cannot corrupt
        # the protocol stream.
        async with stdio_server() as (read_stream, write_stream):
            await server.run(read_stream, write_stream, server.create_initialization_options())
        return
    import uvicorn

    app: Any = server.streamable_http_app(streamable_http_path=path, host=host)
    if token:
        app = BearerTokenMiddleware(app, token)
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve()


def mcp_serve_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    """Run ``foxagent mcp serve``: serve the tools until the client or a Ctrl-C ends it.

    Args:
        flags: the parsed flags of ``foxagent mcp serve``.
        out: unused: with stdio, the MCP SDK owns the process's stdout for the protocol.
        err: where progress and errors go.

    Returns:
        ``OK`` once serving ends; ``USAGE`` when the tools do not load or
        ``FOXAGENT_MCP_TOKEN`` cannot be a bearer token.
    """
    transport = str(flags.get("transport") or "stdio")
    try:
        toolset = Toolset.load(flags.get("tools") or ["stock"])
        # stdio has no requests to check: a client that starts us may pass its own token on.
        token = token_from_environment() if transport == "http" else None
    except UserError as error:
        err.write(f"foxagent mcp serve: {error}\n")
        return ExitCode.USAGE
    held = [t.name for t in toolset if getattr(t, "requires_approval", False)]
    if held:
        err.write(
            f"foxagent mcp serve: not serving {', '.join(held)}: they require approval, which "
            "an MCP client cannot be made to ask for.\n"
        )
    host, port, path = str(flags["host"]), int(flags["port"]), str(flags["path"])
    names = ", ".join(t.name for t in toolset if t.name not in held) or "none"
    where = "stdin/stdout" if transport == "stdio" else f"http://{host}:{port}{path}"
    warning = public_bind_warning(host, token_set=bool(token)) if transport == "http" else None
    if warning:
        err.write(warning)
    guard = " (bearer token required)" if token else ""
    err.write(f"foxagent mcp serve: serving {names} on {where}{guard}\n")
    err.flush()
    try:
        asyncio.run(
            serve(
                toolset,
                transport=transport,
                host=host,
                port=port,
                path=path,
                timeout=float(flags["timeout"]),
                token=token,
            )
        )
    except KeyboardInterrupt:
        pass
    return ExitCode.OK
