"""Real values a model wrapped in a copy of the tool schema's envelope.

Small models that read a tool's JSON schema sometimes write the call's arguments inside the
schema's own shape::

    {"name": "exhibition_info", "parameters": {"type": "object",
                                               "properties": {"museum_name": "MoMA", "month": 1}}}

Measured on real output (Qwen2.5-Coder-0.5B behind vLLM 0.32, 216 BFCL cases): 4 server calls
had this shape, beside 24 that copied the schema itself (``"properties": {"month": {"type":
"integer", ...}}``), which stay refused. The values are the model's: unwrapping them is a
repair, labelled ``unwrapped_schema``, and the call is then validated like any other. Only an
exact envelope is unwrapped: ``type`` "object", ``properties`` naming only the tool's own
parameters, no value that looks like a schema, and a tool that has no parameter called
``type`` or ``properties`` itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["unwrap_schema_envelope"]

_ENVELOPE_KEYS = frozenset({"type", "properties", "required"})
_SCHEMA_WORDS = frozenset({"type", "description", "enum", "items", "default", "anyOf", "oneOf"})


def unwrap_schema_envelope(
    parameters: Mapping[str, Any], arguments: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The values inside ``arguments``' copied envelope, or ``None`` when it is not one."""
    if arguments.get("type") != "object":
        return None  # the usual arguments, told apart first: one lookup
    known = parameters.get("properties") or {}
    if not isinstance(known, Mapping) or "type" in known or "properties" in known:
        return None
    if not set(arguments) <= _ENVELOPE_KEYS:
        return None
    inner = arguments.get("properties")
    if not isinstance(inner, Mapping) or not inner or not set(inner) <= set(known):
        return None
    if any(isinstance(value, Mapping) and _SCHEMA_WORDS & set(value) for value in inner.values()):
        return None  # the schema itself, copied: nothing the model meant to send
    return dict(inner)
