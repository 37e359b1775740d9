"""``Toolset``: an explicit, ordered collection of tools (there is no global registry).

Tools come from Python objects, from a module path, from a ``.py`` file, or by stock-tool name,
which is what the CLI's ``--tools`` accepts.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from foxagent._exceptions import UserError
from foxagent._tools import Tool, tool

__all__ = ["Toolset"]


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

    def __init__(self, tools: Iterable[Tool[..., Any] | Callable[..., Any]] = ()) -> None:
        self._tools: dict[str, Tool[..., Any]] = {}
        for item in tools:
            self.add(item)

    def add(self, item: Tool[..., Any] | Callable[..., Any]) -> Tool[..., Any]:
        """Add a tool (a plain function is decorated with ``@tool`` first) and return it.

        Raises:
            UserError: another tool already has this name.
        """
        new = item if isinstance(item, Tool) else tool(item)
        existing = self._tools.get(new.name)
        if existing is not None and existing is not new:
            raise UserError(
                f"Two tools are named '{new.name}': {_origin(existing)} and {_origin(new)}. "
                "Rename one with @tool(name=...)."
            )
        self._tools[new.name] = new
        return new

    def __getitem__(self, name: str) -> Tool[..., Any]:
        try:
            return self._tools[name]
        except KeyError:
            known = ", ".join(self.names) or "none"
            raise KeyError(f"No tool named '{name}'; tools: {known}") from None

    def get(self, name: str) -> Tool[..., Any] | None:
        """The tool called ``name``, or ``None``."""
        return self._tools.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool[..., Any]]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def __add__(self, other: Toolset) -> Toolset:
        return Toolset([*self, *other])

    def __repr__(self) -> str:
        return f"Toolset({self.names!r})"

    @property
    def names(self) -> list[str]:
        """Tool names in order."""
        return list(self._tools)

    def openai_schemas(self) -> list[dict[str, Any]]:
        """Every tool as an OpenAI ``tools=[...]`` entry."""
        return [t.openai_schema() for t in self]

    @classmethod
    def stock(cls) -> Toolset:
        """All of foxagent's stock tools (calculator, weather, ...)."""
        from foxagent_tools import STOCK_TOOLS, load_stock_tool

        return cls(load_stock_tool(name) for name in STOCK_TOOLS)

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


def _origin(item: Tool[..., Any]) -> str:
    function = item.function
    return f"{getattr(function, '__module__', '?')}.{getattr(function, '__qualname__', '?')}"


def _load_spec(spec: str) -> Iterable[Tool[..., Any]]:
    from foxagent_tools import STOCK_TOOLS, load_stock_tool

    spec = spec.strip()
    if spec == "stock":
        return Toolset.stock()
    if spec in STOCK_TOOLS:
        return [load_stock_tool(spec)]
    if spec.endswith(".py") or Path(spec).is_file():
        return Toolset.from_file(spec)
    if ":" in spec:
        return [_load_object(spec)]
    if spec.isidentifier() and "." not in spec and importlib.util.find_spec(spec) is None:
        known = ", ".join(["stock", *STOCK_TOOLS])
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
