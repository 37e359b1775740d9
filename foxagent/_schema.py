"""JSON schemas in the dialect a Llama model reads best.

pydantic writes standards-correct JSON Schema, but a Llama 3.1 model sees the schema as plain text
inside its prompt, where every token costs and every indirection hurts:

- ``$ref``/``$defs`` are inlined (the model cannot follow a pointer); only a recursive type keeps
  its ``$defs`` entry, since inlining it would never end;
- auto-generated ``title`` keys (``"title": "Location"`` next to a property named ``location``)
  are dropped; titles a developer wrote on purpose stay;
- ``anyOf: [X, {"type": "null"}]`` becomes ``X`` with ``"type": [X's type, "null"]``;
- ``additionalProperties: false`` is dropped (validation still refuses unknown arguments);
- ``enum``, ``items``, ``default``, ``description`` and constraints are kept.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic.json_schema import GenerateJsonSchema

__all__ = ["LlamaJsonSchema", "to_llama_dialect"]

JsonDict = dict[str, Any]


class LlamaJsonSchema(GenerateJsonSchema):
    """pydantic's schema generator without the titles it derives from field names."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        # An explicit Field(title=...) is applied after this check, so only derived titles go.
        return False


def to_llama_dialect(schema: JsonDict) -> JsonDict:
    """Return a copy of a pydantic JSON schema rewritten as described in the module docstring."""
    schema = copy.deepcopy(schema)
    defs: JsonDict = schema.pop("$defs", {})
    for def_name, definition in defs.items():
        if definition.get("title") == def_name:
            del definition["title"]
    schema.pop("title", None)
    recursive = _recursive_defs(defs)
    inlined: JsonDict = _inline(schema, defs, recursive)
    kept = {name: _inline(defs[name], defs, recursive) for name in sorted(recursive)}
    result: JsonDict = _simplify(inlined)
    if kept:
        result["$defs"] = {name: _simplify(d) for name, d in kept.items()}
    return result


def _ref_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _refs_in(node: Any) -> set[str]:
    found: set[str] = set()
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            found.add(_ref_name(ref))
        for value in node.values():
            found |= _refs_in(value)
    elif isinstance(node, list):
        for item in node:
            found |= _refs_in(item)
    return found


def _recursive_defs(defs: JsonDict) -> set[str]:
    """Names of definitions that can reach themselves through ``$ref``s."""
    edges = {name: _refs_in(d) for name, d in defs.items()}
    recursive: set[str] = set()
    for start in defs:
        stack, seen = list(edges[start]), set()
        while stack:
            name = stack.pop()
            if name == start:
                recursive.add(start)
                break
            if name in seen or name not in edges:
                continue
            seen.add(name)
            stack.extend(edges[name])
    return recursive


def _inline(node: Any, defs: JsonDict, keep: set[str]) -> Any:
    if isinstance(node, list):
        return [_inline(item, defs, keep) for item in node]
    if not isinstance(node, dict):
        return node
    ref = node.get("$ref")
    if isinstance(ref, str) and _ref_name(ref) in defs and _ref_name(ref) not in keep:
        # Keywords beside the $ref (a field's description or default) win over the definition's.
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        target = _inline(defs[_ref_name(ref)], defs, keep)
        return {**target, **_inline(siblings, defs, keep)}
    return {key: _inline(value, defs, keep) for key, value in node.items()}


def _simplify(node: Any) -> Any:
    if isinstance(node, list):
        return [_simplify(item) for item in node]
    if not isinstance(node, dict):
        return node
    # `additionalProperties: false` matters to validators, not to a model reading the prompt.
    node = {
        k: _simplify(v) for k, v in node.items() if not (k == "additionalProperties" and v is False)
    }
    any_of = node.get("anyOf")
    if isinstance(any_of, list) and len(any_of) == 2 and {"type": "null"} in any_of:
        other = any_of[0] if any_of[1] == {"type": "null"} else any_of[1]
        if isinstance(other, dict) and isinstance(other.get("type"), str):
            merged: JsonDict = {**other, "type": [other["type"], "null"]}
            if isinstance(merged.get("enum"), list) and None not in merged["enum"]:
                # Keep the schema satisfiable by null, which the union allowed.
                merged["enum"] = [*merged["enum"], None]
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            return {**merged, **rest}
    return node
