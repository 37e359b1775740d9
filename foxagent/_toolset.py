"""``Toolset``: an explicit, ordered collection of tools (there is no global registry).

Tools come from Python objects, from a module path, from a ``.py`` file, or by stock-tool name,
which is what the CLI's ``--tools`` accepts; and from *sources*, such as MCP servers, whose tools
exist only while the toolset is open (``async with toolset:``, or the agent's ``async with``).
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, Union

from foxagent._exceptions import UserError
from foxagent._recovery import ToolIndex
from foxagent._schema_tool import SchemaTool
from foxagent._tools import CheckedArguments, Tool, ToolContext, ToolLike, tool

if TYPE_CHECKING:
    from typing_extensions import Self

__all__ = ["ExternalTool", "ToolSource", "Toolset"]


class ExternalTool(ToolLike, Protocol):
    """A tool with no Python function behind it (an MCP server's): what the agent needs of it."""

    timeout: float | None
    requires_approval: bool

    async def run_checked(
        self, checked: CheckedArguments, context: ToolContext | None = None
    ) -> Any: ...

    async def invoke(
        self, arguments: Mapping[str, Any] | None, context: ToolContext | None = None
    ) -> Any: ...


class ToolSource(Protocol):
    """Tools that exist while a connection is open, e.g. an MCP server's."""

    async def aopen(self) -> Sequence[ExternalTool]:
        """Connect and return the tools (reference counted: open twice, close twice)."""
        ...

    async def aclose(self) -> None:
        """Disconnect."""
        ...


AnyTool = Union[Tool[..., Any], ExternalTool]  # noqa: UP007 - a runtime alias on Python 3.10


class Toolset:
    """Tools by name, in the order they were added.

    Example:
        >>> from foxagent import Toolset, tool
        >>> @tool
        ... def ping() -> str:
        ...     '''Answer pong.'''
        ...     return "pong"
        >>> tools = Toolset([ping])
        >>> tools["ping"].name, "ping" in tools, len(tools)
        ('ping', True, 1)
    """

    def __init__(self, tools: Iterable[AnyTool | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, AnyTool] = {}
        self._sources: list[ToolSource] = []
        self._from_sources: set[str] = set()  # names of the tools the open sources added
        self._users = 0
        self._version = 0  # bumped whenever the tools change; the index and schemas follow it
        self._index: tuple[int, ToolIndex] | None = None
        self._schemas: tuple[int, list[dict[str, Any]]] | None = None
        self._lock: asyncio.Lock | None = None
        self._lock_loop: asyncio.AbstractEventLoop | None = None
        for item in tools:
            self.add(item)

    def add(self, item: AnyTool | Callable[..., Any]) -> AnyTool:
        """Add a tool (a plain function is decorated with ``@tool`` first) and return it.

        Raises:
            UserError: another tool already has this name.
        """
        candidate: Any = item  # checked at run time: the static union cannot say "SchemaTool"
        new: AnyTool
        if isinstance(candidate, Tool):
            new = candidate
        elif _is_runnable_schema_tool(candidate):
            new = candidate  # an MCP tool: a SchemaTool that can run
        else:
            new = tool(candidate)
        existing = self._tools.get(new.name)
        if existing is not None and existing is not new:
            raise UserError(
                f"Two tools are named '{new.name}': {_origin(existing)} and {_origin(new)}. "
                "Rename one (@tool(name=...), or Toolset.from_mcp(..., prefix=...))."
            )
        self._tools[new.name] = new
        self._version += 1
        return new

    def add_source(self, source: ToolSource) -> None:
        """Add a source of tools (e.g. an MCP server); its tools arrive when the toolset opens."""
        self._sources.append(source)

    @property
    def sources(self) -> list[ToolSource]:
        """The toolset's sources, in order."""
        return list(self._sources)

    async def aopen(self) -> None:
        """Open every source and add its tools (nothing to do without sources).

        Reference counted, so an agent entering a toolset that is already open is fine.

        Raises:
            UserError: two tools would have the same name.
            FoxagentError: a source could not be opened (``MCPServerError`` for MCP servers);
                the sources opened before it are closed again.
        """
        async with self._guard():
            if self._users == 0 and self._sources:
                self._drop_source_tools()  # those of an earlier opening
                opened: list[ToolSource] = []
                try:
                    for source in self._sources:
                        found = await source.aopen()
                        opened.append(source)
                        for item in found:
                            self.add(item)
                            self._from_sources.add(item.name)
                except BaseException:
                    self._drop_source_tools()
                    for source in reversed(opened):
                        await source.aclose()
                    raise
            self._users += 1

    async def aclose(self) -> None:
        """Close the sources once every ``aopen`` has its ``aclose``.

        Their tools stay listed, so an agent still holding their schemas gets a ``ToolError``
        ("not connected") for a call instead of an unknown tool; the next ``aopen`` replaces them.
        """
        async with self._guard():
            if self._users == 0:
                return
            self._users -= 1
            if self._users == 0 and self._sources:
                errors: list[BaseException] = []
                for source in reversed(self._sources):
                    try:
                        await source.aclose()
                    except Exception as error:  # close the others anyway
                        errors.append(error)
                if errors:
                    raise errors[0]

    async def __aenter__(self) -> Self:
        await self.aopen()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _guard(self) -> asyncio.Lock:
        # One lock per event loop: `agent.run()` gives every run a loop of its own.
        loop = asyncio.get_running_loop()
        if self._lock is None or self._lock_loop is not loop:
            self._lock, self._lock_loop = asyncio.Lock(), loop
        return self._lock

    def _drop_source_tools(self) -> None:
        for name in self._from_sources:
            self._tools.pop(name, None)
        self._from_sources.clear()
        self._version += 1

    def __getitem__(self, name: str) -> AnyTool:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(self.names) or "none"
            raise KeyError(f"No tool named '{name}'; tools: {known}") from None

    def get(self, name: str) -> AnyTool | None:
        """The tool called ``name``, or ``None``."""
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[AnyTool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __add__(self, other: Toolset) -> Toolset:
        """Both toolsets' tools and sources (a source's tools come when the sum is opened)."""
        own = [t for t in self if t.name not in self._from_sources]
        theirs = [t for t in other if t.name not in other._from_sources]
        combined = Toolset([*own, *theirs])
        combined._sources = [*self._sources, *other._sources]
        return combined

    def __repr__(self) -> str:
        return f"Toolset({self.names!r})"

    @property
    def names(self) -> list[str]:
        """Tool names in order."""
        return list(self._tools)

    def openai_schemas(self) -> list[dict[str, Any]]:
        """Every tool as an OpenAI ``tools=[...]`` entry (a new list each time)."""
        return [t.openai_schema() for t in self]

    @property
    def schemas(self) -> list[dict[str, Any]]:
        """`openai_schemas`, built once per change of the tools: what the agent sends.

        The list is shared; do not modify it.
        """
        if self._schemas is None or self._schemas[0] != self._version:
            self._schemas = (self._version, self.openai_schemas())
        return self._schemas[1]

    @property
    def index(self) -> ToolIndex:
        """The tools by exact and normalised name, for recovery; follows every change."""
        if self._index is None or self._index[0] != self._version:
            self._index = (self._version, ToolIndex(self))
        return self._index[1]

    @classmethod
    def from_mcp(
        cls,
        server: str | Sequence[str],
        *,
        name: str | None = None,
        headers: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        prefix: str = "",
        timeout: float | None = None,
        connect_timeout: float = 30.0,
        requires_approval: bool = False,
    ) -> Toolset:
        """The tools of an MCP server, available while the toolset (or its agent) is open.

        Example:
            >>> tools = Toolset.from_mcp("python my_server.py")  # doctest: +SKIP
            >>> async with Agent(tools=tools + Toolset([calculator])) as agent:  # doctest: +SKIP
            ...     result = await agent.arun("...")

        Args:
            server: a command line (``"npx -y @modelcontextprotocol/server-filesystem /tmp"``),
                a list of arguments, or the ``http(s)://`` URL of a streamable HTTP endpoint.
            name: how errors name the server (default: the script name, or host and path).
            headers: HTTP headers for a URL, e.g. ``{"Authorization": "Bearer ..."}``; never
                printed, logged or shown in a repr.
            env: extra environment variables for a command.
            cwd: working directory for a command.
            prefix: put before every tool name (``"fs_"``), to keep two servers' names apart.
            timeout: seconds a call may take (default: the agent's ``tool_timeout``).
            connect_timeout: seconds to start or reach the server and list its tools.
            requires_approval: every call waits for a person's approval (see ``Agent``).

        Raises:
            UserError: the ``mcp`` package is missing (``pip install 'foxagent[mcp]'``), or the
                arguments do not fit the transport.
        """
        from foxagent._mcp import MCPConnection, MCPSource

        connection = MCPConnection(
            server, name=name, headers=headers, env=env, cwd=cwd, connect_timeout=connect_timeout
        )
        toolset = cls()
        toolset.add_source(
            MCPSource(
                connection, prefix=prefix, timeout=timeout, requires_approval=requires_approval
            )
        )
        return toolset

    @classmethod
    def stock(cls) -> Toolset:
        """All of foxagent's stock tools (calculator, weather, ...)."""
        stock = _stock_tools()
        return cls(stock.load_stock_tool(name) for name in stock.STOCK_TOOLS)

    @classmethod
    def from_module(cls, module: str | ModuleType) -> Toolset:
        """Every ``Tool`` defined at the top level of a module (``"pkg.mod"`` or the module)."""
        if isinstance(module, str):
            module = _import(module)
        return cls._from_namespace(module, module.__name__)

    @classmethod
    def from_file(cls, path: str | Path) -> Toolset:
        """Every ``Tool`` defined at the top level of a Python file."""
        module = _load_file(Path(path))
        return cls._from_namespace(module, str(path))

    @classmethod
    def load(cls, specs: Sequence[str]) -> Toolset:
        """Tools from CLI-style specs, merged in order.

        Each spec is a stock tool name (``calculator``), ``stock`` for all of them, a module path
        (``myapp.tools``), a single object in a module (``myapp.tools:search``), or a ``.py`` file.
        """
        result = cls()
        for spec in specs:
            for item in _load_spec(spec):
                result.add(item)
        return result

    @classmethod
    def _from_namespace(cls, module: ModuleType, where: str) -> Toolset:
        found = [value for value in vars(module).values() if isinstance(value, Tool)]
        if not found:
            raise UserError(f"{where} defines no tools: decorate functions with @foxagent.tool.")
        return cls(found)


def _is_runnable_schema_tool(item: object) -> bool:
    """A ``SchemaTool`` with ``invoke`` (an MCP tool); a bare ``SchemaTool`` has nothing to run."""
    return isinstance(item, SchemaTool) and callable(getattr(item, "invoke", None))


def _origin(item: AnyTool) -> str:
    function = getattr(item, "function", None)
    if function is None:
        return repr(item)
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"


def _stock_tools() -> Any:
    """The stock tools' package, imported by name: it imports foxagent, never the reverse."""
    return importlib.import_module("foxagent_tools")


def _load_spec(spec: str) -> Iterable[AnyTool]:
    stock = _stock_tools()
    spec = spec.strip()
    if spec == "stock":
        return Toolset.stock()
    if spec in stock.STOCK_TOOLS:
        return [stock.load_stock_tool(spec)]
    if spec.endswith(".py") or Path(spec).is_file():
        return Toolset.from_file(spec)
    if ":" in spec:
        return [_load_object(spec)]
    if spec.isidentifier() and "." not in spec and importlib.util.find_spec(spec) is None:
        known = ", ".join(["stock", *stock.STOCK_TOOLS])
        raise UserError(f"Unknown tool '{spec}': not a stock tool ({known}) nor a module.")
    return Toolset.from_module(spec)


def _load_object(spec: str) -> Tool[..., Any]:
    module_name, _, attribute = spec.partition(":")
    value = getattr(_import(module_name), attribute, None)
    if value is None:
        raise UserError(f"Module '{module_name}' has no attribute '{attribute}' (from '{spec}').")
    if isinstance(value, Tool):
        return value
    if callable(value):
        return tool(value)
    raise UserError(f"'{spec}' is {type(value).__name__}, not a tool or a function.")


def _import(module_name: str) -> ModuleType:
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise UserError(f"Cannot import tools module '{module_name}': {error}") from None


def _load_file(path: Path) -> ModuleType:
    if not path.is_file():
        raise UserError(f"Tools file '{path}' does not exist.")
    # A name unique per file, so two files both called tools.py do not replace each other.
    digest = hashlib.sha1(str(path.resolve()).encode(), usedforsecurity=False).hexdigest()[:12]
    name = f"foxagent_user_tools_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"Tools file '{path}' cannot be loaded as Python.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses and pydantic look their module up while loading
    try:
        spec.loader.exec_module(module)
    except UserError:
        del sys.modules[name]
        raise
    except Exception as error:
        del sys.modules[name]
        reason = f"{type(error).__name__}: {error}"
        raise UserError(f"Tools file '{path}' failed to load: {reason}") from None
    return module
