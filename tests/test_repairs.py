"""Every recovered call says how it was obtained and what was changed, on the call, the
run's records, the events and the run's totals (issue 15, section 5)."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest

from foxagent import Agent, recover_tool_calls, tool
from foxagent.events import ToolCallDetected
from foxagent.testing import ScriptedModel


@tool
def get_weather(
    location: str, days: int = 1, unit: Literal["celsius", "fahrenheit"] = "celsius"
) -> str:
    """Weather.

    Args:
        location: City.
        days: How many days.
        unit: Unit.
    """
    return f"{location} 23°C"


def content(text: str) -> dict[str, Any]:
    return {"role": "assistant", "content": text}


CALL = '{"name": "get_weather", "parameters": {"location": "台北"}}'


@pytest.mark.parametrize(
    ("message", "repairs"),
    [
        (content(CALL), ("content:json",)),
        (content("<|python_tag|>" + CALL), ("content:json", "python_tag")),
        (content("```json\n" + CALL + "\n```"), ("content:json", "code_fence")),
        (
            content('{"name": "get_weather", "parameters": {"location": "台北",}}'),
            ("content:json", "repaired_json"),
        ),
        (
            content('{"name": "get_weather", "parameters": {"location": "台北"'),
            ("content:json", "repaired_json", "completed"),
        ),
        (content('[get_weather(location="台北")]'), ("content:pythonic",)),
        (
            content('<function=get_weather>{"location": "台北"}</function>'),
            ("content:function_tag",),
        ),
        (
            content('{"name": "functions.get_weather", "parameters": {"location": "台北"}}'),
            ("content:json", "renamed:functions.get_weather"),
        ),
        (
            content('{"name": "get_weather", "parameters": {"location": "台北", "days": "3"}}'),
            ("content:json", "coerced:days"),
        ),
        (content(CALL + "\n" + CALL), ("content:json", "deduplicated")),
    ],
)
def test_each_call_says_how_it_was_recovered(
    message: dict[str, Any], repairs: tuple[str, ...]
) -> None:
    (call,) = recover_tool_calls(message, [get_weather]).calls
    assert call.repairs == repairs


def test_a_server_call_and_its_string_encoded_arguments() -> None:
    def server(arguments: str) -> dict[str, Any]:
        function = {"name": "get_weather", "arguments": arguments}
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": "c1", "function": function}],
        }

    (clean,) = recover_tool_calls(server('{"location": "台北"}'), [get_weather]).calls
    assert clean.repairs == ("server",)
    (fixed,) = recover_tool_calls(server('{"location": "台北", }'), [get_weather]).calls
    assert fixed.repairs == ("server", "repaired_json")


async def test_records_events_and_run_totals_carry_the_repairs() -> None:
    fenced = (
        "```json\n"
        + json.dumps(
            {"name": "get_weather", "parameters": {"location": "台北", "days": "2"}},
            ensure_ascii=False,
        )
        + "\n```"
    )
    model = ScriptedModel([fenced, CALL.replace("台北", "高雄"), "<answer>好</answer>"])
    events: list[Any] = []
    result = await Agent(tools=[get_weather], model=model).arun("天氣", on_event=events.append)
    assert [r.repairs for r in result.tool_calls] == [
        ("content:json", "code_fence", "coerced:days"),
        ("content:json",),
    ]
    detected = [e.repairs for e in events if isinstance(e, ToolCallDetected)]
    assert detected == [r.repairs for r in result.tool_calls]
    assert result.repair_counts == {"content:json": 2, "code_fence": 1, "coerced": 1}
