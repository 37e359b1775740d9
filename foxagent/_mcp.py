"""Tools from MCP servers: ``Toolset.from_mcp("python server.py")`` or ``from_mcp(URL)``.

Each server is one `MCPConnection` (the official ``mcp`` SDK's ``Client`` over stdio or
streamable HTTP) and its tools become `MCPTool` objects, ``SchemaTool``\\ s whose input
schema went through the same Llama dialect as ``@tool`` functions and whose ``invoke`` calls the
server.

Design notes:

- The SDK's ``Client`` lives in anyio task groups that must be entered and left by one task and
  that cancel the task around them when the transport fails. So each connection is owned by a
  background task of its own: a dying server ends that task, never the agent's run, and the
  agent can open and close the toolset from any task.
- Reconnecting: a call that finds its connection dead (the process exited, the HTTP session's
  task ended) reconnects once before sending; if that fails the call fails with a ``ToolError``
  naming the server, which the agent hands to the model. A call whose connection breaks *while*
  it is in flight is not resent (the tool may have run; resending could do it twice): the model
  is told so, and the next call reconnects.
- Nothing here prints or stores in a repr the HTTP headers (they usually carry a token) nor the
  URL's query string or user info.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import re
import shlex
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from foxagent._exceptions import MCPServerError, ToolError, UserError
from foxagent._schema import to_llama_dialect
from foxagent._schema_tool import SchemaTool
from foxagent._tools import CheckedArguments, ToolContext

try:
    import anyio
    import httpx2
    import mcp_types
    from mcp import Client, StdioServerParameters
    from mcp.client.streamable_http import streamable_http_client
    from mcp.shared.exceptions import MCPError
except ImportError as _missing:  # pragma: no cover - exercised only without the extra
    raise UserError(
        f"MCP support needs the 'mcp' package ({_missing}): pip install 'foxagent[mcp]'"
    ) from None

__all__ = ["MCPConnection", "MCPServerError", "MCPSource", "MCPTool", "llama_schema"]

JsonDict = dict[str, Any]

_NAME_INVALID = re.compile(r"[^A-Za-z0-9_-]")
_CLOSE_TIMEOUT = 5.0  # the SDK itself waits 2 s for a stdio server to exit before killing it


class MCPConnection:
    """One MCP server: how to reach it, and the live SDK client while connected.

    Args:
        server: a command line (``"python server.py --flag"``, split like a shell would), a
            list of arguments, or an ``http://``/``https://`` URL of a streamable HTTP endpoint.
        name: how messages name the server (default: the script or host, see ``label``).
        headers: HTTP headers for a URL (e.g. ``Authorization``); never shown anywhere.
        env: extra environment variables for a command.
        cwd: working directory for a command.
        connect_timeout: seconds to start, connect and list tools before giving up.
    """

    def __init__(
        self,
        server: str | Sequence[str],
        *,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        connect_timeout: float = 30.0,
    ) -> None:
        self.url: str | None = None
        self.command: list[str] = []
        if isinstance(server, str) and server.strip().lower().startswith(("http://", "https://")):
            self.url = server.strip()
            if env or cwd:
                raise UserError("MCP server URLs take headers=, not env= or cwd=.")
        else:
            self.command = shlex.split(server) if isinstance(server, str) else list(server)
            if not self.command:
                raise UserError("An MCP server needs a command or a URL, got nothing.")
            if headers:
                raise UserError("headers= is for MCP server URLs; a command gets env= instead.")
        self.name = name or _label(self.url, self.command)
        self._headers = dict(headers or {})
        self._env = dict(env) if env else None
        self._cwd = cwd
        self.connect_timeout = connect_timeout
        self._client: Client | None = None
        self._owner: asyncio.Task[None] | None = None
        self._stop: asyncio.Event | None = None
        self._failure: BaseException | None = None  # why the last connection ended
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        self._wanted = False  # between connect() and close(): calls may reconnect

    def __repr__(self) -> str:
        transport = "http" if self.url is not None else "stdio"
        return f"MCPConnection(name={self.name!r}, transport={transport!r})"

    @property
    def connected(self) -> bool:
        """Whether a live session exists right now."""
        return self._client is not None and self._alive()

    async def connect(self) -> None:
        """Start (or reach) the server and complete the MCP handshake.

        Raises:
            MCPServerError: it did not start, refused, or did not answer in ``connect_timeout``.
        """
        async with self._guard():
            self._wanted = True
            if not self.connected:
                await self._disconnect()
                await self._connect()

    async def close(self) -> None:
        """End the session (a stdio server's process is stopped)."""
        async with self._guard():
            self._wanted = False
            await self._disconnect()

    async def list_tools(self) -> list[mcp_types.Tool]:
        """Every tool the server offers (all pages)."""
        client = await self._ready()

        async def pages() -> list[mcp_types.Tool]:
            tools: list[mcp_types.Tool] = []
            cursor: str | None = None
            while True:
                page = await client.list_tools(cursor=cursor)
                tools.extend(page.tools)
                cursor = page.next_cursor
                if not cursor:
                    return tools

        try:
            return await asyncio.wait_for(pages(), self.connect_timeout)
        except asyncio.TimeoutError:
            raise MCPServerError(
                f"MCP server '{self.name}' did not list its tools within "
                f"{self.connect_timeout:g} s (connect_timeout)"
            ) from None
        except _LIST_ERRORS as error:
            raise MCPServerError(
                f"MCP server '{self.name}' did not list its tools: {_describe(error)}"
            ) from None

    async def call_tool(self, tool: str, arguments: Mapping[str, Any]) -> mcp_types.CallToolResult:
        """Call ``tool`` on the server, reconnecting first (once) if the connection is dead.

        Raises:
            ToolError: the server is unreachable, refused the call, or the connection broke
                during it; the message names the server and the tool.
        """
        lost = await self._call_once(tool, arguments)
        if isinstance(lost, mcp_types.CallToolResult):
            return lost
        await self._settle()
        failure = self._failure or lost
        if any(isinstance(leaf, httpx2.ConnectError) for leaf in _leaves(failure)):
            # Refused before anything was sent: the server never saw the call, so reconnecting
            # and sending it again cannot run the tool twice.
            again = await self._call_once(tool, arguments)
            if isinstance(again, mcp_types.CallToolResult):
                return again
            failure = self._failure or again
        raise ToolError(
            f"The connection to MCP server '{self.name}' broke during the call to '{tool}' "
            f"({_describe(failure)}); the tool may or may not have run. The next call "
            "reconnects."
        )

    async def _call_once(
        self, tool: str, arguments: Mapping[str, Any]
    ) -> mcp_types.CallToolResult | BaseException:
        """The result, or the error that says the connection broke (other errors raise)."""
        if not self._wanted:
            raise ToolError(
                f"MCP server '{self.name}' is closed, so '{tool}' was not called: enter the "
                "agent (`async with agent:`) or the toolset (`async with toolset:`) first."
            )
        try:
            client = await self._ready()
        except MCPServerError as error:
            raise ToolError(
                f"MCP server '{self.name}' is unreachable, so '{tool}' was not called: "
                f"{_reason(error)}"
            ) from None
        try:
            return await client.call_tool(tool, dict(arguments))
        except MCPError as error:
            if error.code != mcp_types.CONNECTION_CLOSED:
                raise ToolError(
                    f"MCP server '{self.name}' refused the call to '{tool}': {error.message}"
                ) from None
            return error
        except _TRANSPORT_ERRORS as error:
            return error

    # -- the connection's own task ------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _guard(self) -> AsyncIterator[None]:
        # One lock per event loop: `agent.run()` gives every run a loop of its own.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        async with self._lock:
            yield

    async def _ready(self) -> Client:
        """The live client, after one reconnect attempt if the connection died."""
        client = self._client
        if client is not None and self._alive():
            return client
        async with self._guard():
            if self._client is not None and self._alive():
                return self._client  # another call reconnected meanwhile
            if not self._wanted:
                raise MCPServerError(
                    f"MCP server '{self.name}' is not connected: enter the agent (`async with "
                    "agent:`) or the toolset (`async with toolset:`) first"
                )
            await self._disconnect()
            await self._connect()
            assert self._client is not None
            return self._client

    def _alive(self) -> bool:
        if self._owner is None or self._owner.done():
            return False
        # A stdio server that exited leaves the session open with a closed dispatcher; the SDK
        # has no public flag for it, so look (and assume alive if the attribute ever moves).
        dispatcher = getattr(self._client and self._client.session, "_dispatcher", None)
        return not getattr(dispatcher, "_closed", False)

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[Client] = loop.create_future()
        self._stop = asyncio.Event()
        self._failure = None
        self._owner = asyncio.create_task(self._own(ready, self._stop), name=f"mcp {self.name}")
        waiting: set[asyncio.Future[Any]] = {ready, self._owner}
        done, _ = await asyncio.wait(
            waiting, timeout=self.connect_timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if ready in done and not ready.cancelled() and ready.exception() is None:
            self._client = ready.result()
            return
        if not done:
            await self._disconnect()
            raise MCPServerError(
                f"MCP server '{self.name}' did not answer within {self.connect_timeout:g} s "
                "(connect_timeout)"
            )
        failure = self._failure or (ready.exception() if ready.done() else None)
        await self._disconnect()
        what = "could not be reached" if self.url is not None else "could not be started"
        raise MCPServerError(f"MCP server '{self.name}' {what}: {_describe(failure)}")

    async def _own(self, ready: asyncio.Future[Client], stop: asyncio.Event) -> None:
        """Hold the SDK client open until told to stop or until the transport fails."""
        try:
            async with contextlib.AsyncExitStack() as stack:
                if self.url is not None:
                    http = httpx2.AsyncClient(
                        headers=self._headers,
                        timeout=httpx2.Timeout(self.connect_timeout, read=300.0),
                    )
                    await stack.enter_async_context(http)
                    client = Client(streamable_http_client(self.url, http_client=http), cache=None)
                else:
                    parameters = StdioServerParameters(
                        command=self.command[0],
                        args=self.command[1:],
                        env=self._env,
                        cwd=self._cwd,
                    )
                    client = Client(parameters, cache=None)
                await stack.enter_async_context(client)
                ready.set_result(client)
                await stop.wait()
        except asyncio.CancelledError:
            if not ready.done():
                ready.cancel()
            raise
        except BaseException as error:  # recorded for the messages; the run must go on
            self._failure = error
            if not ready.done():
                ready.set_exception(MCPServerError(_describe(error)))

    async def _settle(self) -> None:
        """Give a failing owner task a moment to end, so its error can explain the failure."""
        owner = self._owner
        if owner is not None and not owner.done():
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(owner), 0.5)

    async def _disconnect(self) -> None:
        owner, client = self._owner, self._client
        self._owner = self._client = None
        if owner is None:
            return
        if client is not None and self._stop is not None:
            self._stop.set()  # a clean exit: the SDK ends the session and stops the process
            done, _ = await asyncio.wait({owner}, timeout=_CLOSE_TIMEOUT)
            if done:
                return
        # Still starting (e.g. a server that never answers the handshake), or stuck closing:
        # cancelling unwinds the SDK's transport, which kills a stdio server's process.
        owner.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await owner


class MCPTool(SchemaTool):
    """A tool of an MCP server, as foxagent offers it to the model.

    Attributes:
        remote_name: the tool's name on the server (``name`` may carry a prefix or have had
            characters a Llama tool name cannot hold replaced).
        server: the connection its calls go through.
        timeout: seconds a call may take (``None``: the agent's ``tool_timeout``).
        requires_approval: each call waits for a person's approval.
        output_schema: the server's declared output schema, if any.
    """

    def __init__(
        self,
        definition: mcp_types.Tool,
        server: MCPConnection,
        *,
        name: str | None = None,
        timeout: float | None = None,
        requires_approval: bool = False,
    ) -> None:
        description = definition.description or (
            definition.annotations.title if definition.annotations else None
        )
        super().__init__(
            {
                "name": name or definition.name,
                "description": description or "",
                "parameters": llama_schema(definition.input_schema),
            }
        )
        self.remote_name = definition.name
        self.server = server
        self.timeout = timeout
        self.requires_approval = requires_approval
        self.output_schema = definition.output_schema

    def __repr__(self) -> str:
        return f"MCPTool(name={self.name!r}, server={self.server.name!r})"

    async def invoke(
        self, arguments: Mapping[str, Any] | None, context: ToolContext | None = None
    ) -> Any:
        """Validate ``arguments``, call the server, and return the result for the model.

        Text content comes back as a string, structured content as JSON-compatible data,
        images and other binary content as a short description.

        Raises:
            ToolArgumentsError: the arguments do not fit the schema (nothing is sent).
            ToolError: the server reported an error or could not be reached.
        """
        return await self.run_checked(self.check_arguments(arguments or {}), context)

    async def run_checked(
        self, checked: CheckedArguments, context: ToolContext | None = None
    ) -> Any:
        """Call the server with arguments `check_arguments` accepted (see `invoke`)."""
        result = await self.server.call_tool(self.remote_name, checked.native)
        if result.is_error:
            text = _content_text(result.content) or "no details given"
            raise ToolError(f"Tool '{self.name}' (MCP server '{self.server.name}') failed: {text}")
        return _result_value(result, self.output_schema)


class MCPSource:
    """An MCP server as a source of tools for a ``Toolset``: opened and closed with it.

    Opening connects, lists the tools and builds them; it is reference counted, so a source
    shared by two toolsets (``a + b``) connects once.
    """

    def __init__(
        self,
        connection: MCPConnection,
        *,
        prefix: str = "",
        timeout: float | None = None,
        requires_approval: bool = False,
    ) -> None:
        self.connection = connection
        self.prefix = prefix
        self.timeout = timeout
        self.requires_approval = requires_approval
        self._tools: list[MCPTool] = []
        self._users = 0

    def __repr__(self) -> str:
        return f"MCPSource({self.connection!r})"

    async def aopen(self) -> list[MCPTool]:
        """Connect and return the server's tools.

        Raises:
            MCPServerError: the server could not be started, reached or listed.
        """
        if self._users == 0:
            await self.connection.connect()
            try:
                listed = await self.connection.list_tools()
                self._tools = [self._tool(definition) for definition in listed]
            except BaseException:
                await self.connection.close()
                raise
        self._users += 1
        return list(self._tools)

    async def aclose(self) -> None:
        """Disconnect once every user has closed it."""
        if self._users == 0:
            return
        self._users -= 1
        if self._users == 0:
            self._tools = []
            await self.connection.close()

    def _tool(self, definition: mcp_types.Tool) -> MCPTool:
        name = _NAME_INVALID.sub("_", self.prefix + definition.name)[:64]
        try:
            return MCPTool(
                definition,
                self.connection,
                name=name,
                timeout=self.timeout,
                requires_approval=self.requires_approval,
            )
        except UserError as error:
            raise MCPServerError(
                f"MCP server '{self.connection.name}' offers tool '{definition.name}' that "
                f"foxagent cannot use: {error}"
            ) from None


def llama_schema(schema: Mapping[str, Any]) -> JsonDict:
    """An MCP input schema in foxagent's Llama dialect (see `foxagent._schema`).

    On top of ``to_llama_dialect`` (``$defs`` inlined, nullable unions folded, ...), titles that
    only repeat the property's name (``"a": {"title": "A"}``, which the Python SDK adds to
    every argument) are dropped; a schema without ``type``/``properties`` gets them.
    """
    result: JsonDict = _drop_derived_titles(to_llama_dialect(copy.deepcopy(dict(schema))))
    result.setdefault("type", "object")
    if result.get("type") == "object":
        result.setdefault("properties", {})
    return result


def _drop_derived_titles(node: Any) -> Any:
    if isinstance(node, list):
        return [_drop_derived_titles(item) for item in node]
    if not isinstance(node, dict):
        return node
    result = {key: _drop_derived_titles(value) for key, value in node.items()}
    properties = result.get("properties")
    if isinstance(properties, dict):
        for name, spec in properties.items():
            if isinstance(spec, dict) and _same_words(spec.get("title"), name):
                del spec["title"]
    return result


def _same_words(title: Any, name: str) -> bool:
    def words(text: str) -> str:
        return re.sub(r"[^0-9a-z]", "", text.lower())

    return isinstance(title, str) and words(title) == words(name)


def _result_value(result: mcp_types.CallToolResult, output_schema: Mapping[str, Any] | None) -> Any:
    structured = result.structured_content
    if structured is not None:
        # The Python SDK wraps a tool's non-object return as {"result": ...} to give it an
        # object schema; the model reads `3` better than `{"result": 3}`.
        properties = (output_schema or {}).get("properties")
        if isinstance(structured, dict) and list(structured) == ["result"] and properties:
            if list(properties) == ["result"]:
                return structured["result"]
        return structured
    return _content_text(result.content)


def _content_text(blocks: Sequence[mcp_types.ContentBlock]) -> str:
    """Text blocks as they are, other blocks as a short bracketed description."""
    parts: list[str] = []
    for block in blocks:
        if isinstance(block, mcp_types.TextContent):
            parts.append(block.text)
        elif isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
            kind = "image" if isinstance(block, mcp_types.ImageContent) else "audio"
            size = len(block.data) * 3 // 4  # base64
            parts.append(f"[{kind}: {block.mime_type}, {_size(size)}, not shown to the model]")
        elif isinstance(block, mcp_types.ResourceLink):
            parts.append(f"[resource link: {block.name} <{block.uri}>]")
        else:  # EmbeddedResource, the last kind of ContentBlock
            resource = block.resource
            if isinstance(resource, mcp_types.TextResourceContents):
                parts.append(resource.text)
            else:
                size = len(resource.blob) * 3 // 4
                mime = resource.mime_type or "binary"
                parts.append(f"[resource: {resource.uri}, {mime}, {_size(size)}, not shown]")
    return "\n".join(parts)


def _size(count: int) -> str:
    return f"{count} bytes" if count < 1024 else f"{count / 1024:.1f} KB"


def _label(url: str | None, command: Sequence[str]) -> str:
    """A name for messages that cannot leak a secret: no query, user info or arguments."""
    if url is not None:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        return f"{host}{port}{parts.path}"
    programs = [word for word in command if not word.startswith("-")]
    # `python server.py` is better named by the script than by the interpreter.
    scripts = [w for w in programs[1:] if w.endswith((".py", ".js", ".ts", ".mjs"))]
    return os.path.basename(scripts[0] if scripts else programs[0] if programs else command[0])


_TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    OSError,
    httpx2.TransportError,
)
_LIST_ERRORS: tuple[type[BaseException], ...] = (MCPError, *_TRANSPORT_ERRORS)


def _leaves(error: BaseException) -> list[BaseException]:
    nested = getattr(error, "exceptions", None)
    if isinstance(nested, Sequence) and nested:
        return [leaf for inner in nested for leaf in _leaves(inner)]
    return [error]


def _describe(error: BaseException | None) -> str:
    """One line about why a connection failed, from inside the SDK's exception groups."""
    if error is None:
        return "no reason given"
    leaf = _leaves(error)[0]
    if isinstance(leaf, MCPServerError):
        return str(leaf)
    if isinstance(leaf, MCPError):
        return leaf.message
    if isinstance(leaf, FileNotFoundError):
        return f"command not found: {leaf.filename or leaf}"
    if isinstance(leaf, httpx2.HTTPStatusError):  # the URL is left out: it may hold a token
        return f"HTTP {leaf.response.status_code}"
    if isinstance(leaf, httpx2.ConnectError):
        return "connection refused"
    text = str(leaf).strip()
    return f"{type(leaf).__name__}: {text}" if text else type(leaf).__name__


def _reason(error: MCPServerError) -> str:
    """The error's message without its leading "MCP server 'x'" (the caller names it)."""
    text = str(error)
    prefix = "MCP server "
    if text.startswith(prefix) and "' " in text:
        return text.split("' ", 1)[1]
    return text
