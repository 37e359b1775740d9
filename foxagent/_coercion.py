"""Loosening what a model sends before strict validation, and phrasing what is still wrong.

Models get types wrong in ways whose meaning is clear: ``"5"`` for an integer, ``"true"`` for a
boolean, a JSON string holding the list a list parameter wants, ``"Celsius"`` for the enum value
``"celsius"``, ``null`` for an optional argument that has a default. `loosen` fixes exactly
these, guided by the parameter's JSON schema, so the same rules apply to ``@tool`` functions
(validated by pydantic afterwards) and to bare schema tools (validated by ``jsonschema``). Anything
else is left alone for the validator to refuse.

The ``describe_*`` helpers phrase refusals for the model: short, naming what came and what was
expected, because that text becomes the tool's result in the next request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["argument_path", "describe_expected", "json_type", "loosen", "short_repr"]

JsonDict = dict[str, Any]

_TYPE_WORDS = {
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
    "null": "null",
}


def _types(schema: Mapping[str, Any]) -> set[str]:
    declared = schema.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return {t for t in declared if isinstance(t, str)}
    return set()


def loosen(value: Any, schema: Mapping[str, Any]) -> Any:
    """Return ``value`` with the clear-meaning mistakes fixed for ``schema`` (never mutates)."""
    branches = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(branches, list):
        return _loosen_union(value, branches)
    types = _types(schema)
    if isinstance(value, str):
        value = _loosen_string(value, schema, types)
    elif _is_number(value) and types and not types & {"integer", "number"} and "string" in types:
        return str(value)  # 10023 for a postcode: the model meant the digits
    if isinstance(value, list) and "array" in types:
        return _loosen_items(value, schema)
    if isinstance(value, dict) and "object" in types:
        return loosen_object(value, schema)
    if "array" in types and not isinstance(value, list) and _scalar_fits_items(value, schema):
        # One value where a list of such values is expected: the model meant a list of one.
        return [value]
    return value


def loosen_object(value: Mapping[str, Any], schema: Mapping[str, Any]) -> JsonDict:
    """Loosen every known property of an object; drop ``null`` where it can only mean "default"."""
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    extra = schema.get("additionalProperties")
    result: JsonDict = {}
    for key, item in value.items():
        prop = properties.get(key)
        if prop is None:
            result[key] = loosen(item, extra) if isinstance(extra, dict) else item
        elif item is None and key not in required and not _accepts_null(prop):
            continue
        else:
            result[key] = loosen(item, prop)
    return result


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _accepts_null(schema: Mapping[str, Any]) -> bool:
    if "null" in _types(schema):
        return True
    branches = schema.get("anyOf") or schema.get("oneOf") or ()
    return any(isinstance(b, Mapping) and _accepts_null(b) for b in branches)


def _loosen_union(value: Any, branches: Sequence[Any]) -> Any:
    for branch in branches:
        if isinstance(branch, Mapping) and _fits(value, branch):
            return loosen(value, branch)
    for branch in branches:
        if isinstance(branch, Mapping):
            changed = loosen(value, branch)
            if changed is not value and _fits(changed, branch):
                return changed
    return value


def _fits(value: Any, schema: Mapping[str, Any]) -> bool:
    """Whether ``value`` has one of the JSON types ``schema`` declares (a cheap pre-check)."""
    types = _types(schema)
    if not types:
        return False
    kind = json_type(value)
    if kind == "integer" and "number" in types:
        return True
    return kind in types and ("enum" not in schema or value in schema["enum"])


def json_type(value: Any) -> str:
    """The JSON Schema type name of a decoded JSON value (a Python type's name otherwise)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def _loosen_string(value: str, schema: Mapping[str, Any], types: set[str]) -> Any:
    enum = schema.get("enum")
    if isinstance(enum, list) and value not in enum:
        return _match_enum(value, enum)
    if "string" in types:
        return value
    text = value.strip()
    scalar = _scalar_from_text(text, types)
    if scalar is not None:
        return scalar
    if not types & {"array", "object"}:
        return value
    if text[:1] in ("[", "{"):
        try:
            decoded = json.loads(text)
        except ValueError:
            return value
        if json_type(decoded) in types:
            return decoded
    return value


_TRUE = {"true", "yes", "on", "1"}
_FALSE = {"false", "no", "off", "0"}


def _scalar_from_text(text: str, types: set[str]) -> int | float | bool | None:
    """A number or boolean written as a string, when the schema wants one."""
    lowered = text.lower()
    if "boolean" in types and lowered in _TRUE | _FALSE:
        return lowered in _TRUE
    if types & {"integer", "number"}:
        try:
            number = float(text)
        except ValueError:
            return None
        if number != number or number in (float("inf"), float("-inf")):
            return None  # "nan" and "inf" parse as floats but are never what was meant
        if "integer" in types and number.is_integer():
            return int(number)
        if "number" in types:
            return number
    return None


def _match_enum(value: str, enum: Sequence[Any]) -> Any:
    wanted = value.strip().casefold()
    matches = [e for e in enum if isinstance(e, str) and e.casefold() == wanted]
    return matches[0] if len(matches) == 1 else value


def _loosen_items(value: list[Any], schema: Mapping[str, Any]) -> list[Any]:
    prefix = schema.get("prefixItems")
    items = schema.get("items")
    result = []
    for index, item in enumerate(value):
        if isinstance(prefix, list) and index < len(prefix):
            result.append(loosen(item, prefix[index]))
        elif isinstance(items, Mapping):
            result.append(loosen(item, items))
        else:
            result.append(item)
    return result


def _scalar_fits_items(value: Any, schema: Mapping[str, Any]) -> bool:
    items = schema.get("items")
    if value is None or isinstance(value, (dict, list)) or not isinstance(items, Mapping):
        return False
    return _fits(value, items)


def describe_expected(schema: Mapping[str, Any]) -> str:
    """Say in a few words what a schema accepts: ``"one of 'celsius', 'fahrenheit'"``."""
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return "one of " + ", ".join(short_repr(e) for e in enum)
    if "const" in schema:
        return short_repr(schema["const"])
    branches = schema.get("anyOf") or schema.get("oneOf")
    if isinstance(branches, list):
        words = [describe_expected(b) for b in branches if isinstance(b, Mapping)]
        return " or ".join(dict.fromkeys(w for w in words if w))
    types = [t for t in _TYPE_WORDS if t in _types(schema)]
    if types == ["array"] and isinstance(schema.get("items"), Mapping):
        inner = describe_expected(schema["items"])
        return f"a list of {inner.removeprefix('a ').removeprefix('an ')}s" if inner else "a list"
    return " or ".join(_TYPE_WORDS[t] for t in types)


def short_repr(value: Any, limit: int = 60) -> str:
    """JSON-ish rendering of a received value, cut to ``limit`` characters."""
    if isinstance(value, str):
        text = "'" + value + "'"
    else:
        try:
            text = json.dumps(value, ensure_ascii=False, default=repr)
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def argument_path(loc: Sequence[str | int], schema: Mapping[str, Any]) -> str:
    """The part of a validator's error location that names real arguments, dot-joined.

    pydantic puts union branch tags (``'int'``, ``"literal['a']"``) into locations; walking the
    schema alongside keeps only the steps that are property names or list indices.
    """
    parts: list[str] = []
    node: Mapping[str, Any] = schema
    for step in loc:
        node = _unwrap_nullable(node)
        properties = node.get("properties")
        if isinstance(step, str) and isinstance(properties, Mapping) and step in properties:
            parts.append(step)
            node = properties[step]
        elif isinstance(step, int) and "array" in _types(node):
            parts.append(str(step))
            items = node.get("items")
            node = items if isinstance(items, Mapping) else {}
        elif isinstance(step, str) and (isinstance(properties, Mapping) or not parts):
            parts.append(step)  # an argument the schema does not know (an extra one)
            break
        else:
            break
    return ".".join(parts)


def _unwrap_nullable(node: Mapping[str, Any]) -> Mapping[str, Any]:
    branches = node.get("anyOf") or node.get("oneOf")
    if isinstance(branches, list):
        for branch in branches:
            if isinstance(branch, Mapping) and "null" not in _types(branch):
                return branch
    return node
