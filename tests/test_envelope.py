"""Real values inside a copy of the schema's envelope are unwrapped; the schema itself copied
is still refused (a family seen on real output: foxagent eval, BFCL through vLLM 0.32)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from foxagent import recover_tool_calls, tool
from foxagent._envelope import unwrap_schema_envelope


@tool
def exhibition_info(museum_name: str, month: int = 1) -> str:
    """Upcoming exhibitions.

    Args:
        museum_name: The museum.
        month: How many months ahead.
    """
    return museum_name


PARAMETERS = exhibition_info.openai_schema()["function"]["parameters"]


def _content(arguments: Any) -> dict[str, Any]:
    call = {"name": "exhibition_info", "parameters": arguments}
    return {"role": "assistant", "content": json.dumps(call)}


def test_values_in_an_envelope_are_unwrapped_and_validated() -> None:
    wrapped = {"type": "object", "properties": {"museum_name": "MoMA", "month": "2"}}
    recovery = recover_tool_calls(_content(wrapped), [exhibition_info])
    (call,) = recovery.calls
    assert call.arguments == {"museum_name": "MoMA", "month": 2}
    assert "unwrapped_schema" in call.repairs


@pytest.mark.parametrize(
    "arguments",
    [
        # the schema itself copied: nothing the model meant to send
        {"type": "object", "properties": {"museum_name": {"type": "string"}}},
        {"type": "object", "properties": {"museum_name": {"description": "The museum."}}},
        # a name the tool does not have inside
        {"type": "object", "properties": {"museum": "MoMA"}},
        # not exactly an envelope
        {"type": "object", "properties": {"museum_name": "MoMA"}, "month": 2},
        {"type": "array", "properties": {"museum_name": "MoMA"}},
        {"type": "object", "properties": {}},
    ],
)
def test_anything_else_is_not_unwrapped(arguments: dict[str, Any]) -> None:
    assert unwrap_schema_envelope(PARAMETERS, arguments) is None
    recovery = recover_tool_calls(_content(arguments), [exhibition_info])
    assert all("unwrapped_schema" not in call.repairs for call in recovery.calls)


def test_a_tool_with_a_parameter_called_type_is_left_alone() -> None:
    parameters = {"type": "object", "properties": {"type": {"type": "string"}, "properties": {}}}
    arguments = {"type": "object", "properties": {"type": "x"}}
    assert unwrap_schema_envelope(parameters, arguments) is None


def test_invalid_values_in_an_envelope_are_still_refused() -> None:
    wrapped = {"type": "object", "properties": {"month": 3}}  # museum_name is required
    recovery = recover_tool_calls(_content(wrapped), [exhibition_info])
    assert recovery.calls == ()
    assert "museum_name" in recovery.rejected[0].reason
