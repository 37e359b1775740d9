"""Stock tools shipped with foxagent, importable as ``foxagent_tools``.

=============  ==========================================  =====================================
name           object                                      what it does
=============  ==========================================  =====================================
calculator     ``foxagent_tools.calculator:calculator``    safe arithmetic, Chinese-typed input
get_weather    ``foxagent_tools.weather:get_weather``      current weather from Open-Meteo
=============  ==========================================  =====================================

Importing this package imports no tool module: `STOCK_TOOLS` only names where each tool
lives, and `load_stock_tool` imports the one asked for. ``foxagent.Toolset.stock()`` loads
them all.
"""

from importlib import import_module
from typing import Any

from foxagent import Tool, UserError

__all__ = ["STOCK_TOOLS", "load_stock_tool"]

#: Stock tool name -> ``"module:attribute"`` of its `Tool`.
STOCK_TOOLS: dict[str, str] = {
    "calculator": "foxagent_tools.calculator:calculator",
    "get_weather": "foxagent_tools.weather:get_weather",
}


def load_stock_tool(name: str) -> Tool[..., Any]:
    """Import and return the stock tool called ``name``.

    Example:
        >>> load_stock_tool("calculator")("2^10")
        '1024'

    Raises:
        UserError: ``name`` is not a stock tool; the message lists the ones there are.
    """
    path = STOCK_TOOLS.get(name)
    if path is None:
        known = ", ".join(sorted(STOCK_TOOLS))
        raise UserError(f"Unknown stock tool {name!r}; the stock tools are: {known}.")
    module_name, _, attribute = path.partition(":")
    found = getattr(import_module(module_name), attribute)
    if not isinstance(found, Tool):
        raise UserError(f"Stock tool {name!r} at {path} is not a Tool but {type(found).__name__}.")
    return found
