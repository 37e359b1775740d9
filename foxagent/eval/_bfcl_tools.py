"""BFCL's functions as tools a server accepts, and the model's calls back in BFCL's names.

Two translations, both per case:

- **Names.** BFCL names hold dots (``math.factorial``) and OpenAI-style servers accept only
  ``^[a-zA-Z0-9_-]{1,64}$``. `NameMap` replaces every other character with ``_`` (what BFCL's
  own OpenAI handler does for dots), adds a short hash when that collides with another function
  of the case or is too long, and maps back exactly.
- **Types.** BFCL writes ``dict``, ``float``, ``tuple``, ``any`` and puts ``"required": true``
  or ``"optional"`` inside properties. `json_schema` turns that into valid JSON Schema by BFCL's
  own table (``GORILLA_TO_OPENAPI`` in ``bfcl_eval/constants/type_mappings.py``): dict → object,
  float → number, tuple → array, any → string (BFCL's checker wants a string for ``any``).

`StandInTool` is a BFCL function the agent can run: it has no code, so every call returns a
neutral result, and the whole run goes on as it would with a real tool.
"""

from __future__ import annotations

import copy
import hashlib
import re
from collections.abc import Iterable, Mapping
from typing import Any

from foxagent._schema_tool import SchemaTool
from foxagent._tools import CheckedArguments, ToolContext

__all__ = ["STAND_IN_RESULT", "NameMap", "StandInTool", "json_schema", "openai_tools"]

#: What every BFCL tool returns: the run is judged on its calls, not on invented results.
STAND_IN_RESULT = '{"status": "ok"}'

# BFCL type → JSON Schema type (bfcl_eval/constants/type_mappings.py, GORILLA_TO_OPENAPI).
_TYPES = {
    "integer": "integer",
    "number": "number",
    "float": "number",
    "double": "number",
    "string": "string",
    "boolean": "boolean",
    "bool": "boolean",
    "array": "array",
    "list": "array",
    "tuple": "array",
    "dict": "object",
    "object": "object",
    "any": "string",
}
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")
_MAX_NAME = 64
# Keywords JSON Schema gives a meaning that BFCL's data uses differently (booleans, not lists).
_NOT_SCHEMA = ("required", "optional")


class NameMap:
    """A case's BFCL function names ↔ names a server accepts (reversible, collision-safe)."""

    def __init__(self, names: Iterable[str]) -> None:
        self._to_safe: dict[str, str] = {}
        self._to_bfcl: dict[str, str] = {}
        names = list(dict.fromkeys(names))
        taken = {name for name in names if _UNSAFE.search(name) is None and len(name) <= 64}
        for name in names:
            safe = name if name in taken else _UNSAFE.sub("_", name)[:_MAX_NAME]
            if safe != name and (safe in taken or safe in self._to_bfcl):
                # Another function already has that name: a hash of the original keeps both.
                tag = hashlib.sha256(name.encode()).hexdigest()[:8]
                safe = f"{safe[: _MAX_NAME - 9]}_{tag}"
            self._to_safe[name] = safe
            self._to_bfcl[safe] = name

    def safe(self, name: str) -> str:
        """The name sent to the server for BFCL's ``name``."""
        return self._to_safe[name]

    def bfcl(self, name: str) -> str:
        """BFCL's name for a name the model used (an unknown name comes back unchanged)."""
        return self._to_bfcl.get(name, name)


def json_schema(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """BFCL's ``parameters`` (a ``dict`` type at the top) as a valid JSON Schema object."""
    schema = _node(copy.deepcopy(dict(parameters)))
    schema["type"] = "object"
    schema.setdefault("properties", {})
    return schema


def _node(node: dict[str, Any]) -> dict[str, Any]:
    kind = node.get("type")
    if isinstance(kind, str):
        node["type"] = _TYPES.get(kind, "string")  # an unknown type: BFCL falls back to string
    elif kind is None and "properties" not in node and "items" not in node:
        node["type"] = "string"
    for key in _NOT_SCHEMA:
        if key in node and not isinstance(node[key], list):
            del node[key]
    properties = node.get("properties")
    if isinstance(properties, dict):
        node["properties"] = {
            key: _node(value) if isinstance(value, dict) else {"type": "string"}
            for key, value in properties.items()
        }
        if isinstance(node.get("required"), list):
            node["required"] = [name for name in node["required"] if name in node["properties"]]
    items = node.get("items")
    if isinstance(items, dict):
        node["items"] = _node(items)
    return node


def openai_tools(functions: Iterable[Mapping[str, Any]], names: NameMap) -> list[dict[str, Any]]:
    """The case's functions as OpenAI ``tools`` entries (safe names, valid JSON Schema)."""
    return [
        {
            "type": "function",
            "function": {
                "name": names.safe(function["name"]),
                "description": str(function.get("description") or ""),
                "parameters": json_schema(function.get("parameters") or {}),
            },
        }
        for function in functions
    ]


class StandInTool(SchemaTool):
    """A BFCL function the agent can call: arguments checked by its schema, a neutral result."""

    timeout: float | None = None
    requires_approval = False

    async def invoke(
        self, arguments: Mapping[str, Any] | None, context: ToolContext | None = None
    ) -> str:
        """Check ``arguments`` like any tool, then return `STAND_IN_RESULT`."""
        return await self.run_checked(self.check_arguments(arguments or {}), context)

    async def run_checked(
        self, checked: CheckedArguments, context: ToolContext | None = None
    ) -> str:
        """Return `STAND_IN_RESULT`: BFCL's functions have no code."""
        return STAND_IN_RESULT
