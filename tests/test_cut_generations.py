"""A generation cut at max_tokens never runs a call it was cut inside of, whatever
``finish_reason`` says: the usage tells (issue 15, section 1)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from foxagent import Agent, ModelResponse, Usage, recover_tool_calls, tool
from foxagent.events import RunWarning
from foxagent.testing import ScriptedModel

CUT_ARGUMENTS = '{"location": "台北市信義'
WHOLE = json.dumps({"name": "get_weather", "parameters": {"location": "台北"}}, ensure_ascii=False)


@tool
def get_weather(location: str) -> str:
    """Weather now.

    Args:
        location: City.
    """
    return f"{location} 23°C"


def server_call(arguments: str) -> dict[str, Any]:
    function = {"name": "get_weather", "arguments": arguments}
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [{"id": "c1", "function": function}],
    }


@pytest.mark.parametrize("finish_reason", ["tool_calls", "stop", None])
def test_a_server_call_from_a_cut_generation_is_refused(finish_reason: str | None) -> None:
    # vLLM's stream flush auto-closes a cut call into valid JSON: it looks whole.
    closed = server_call('{"location": "台北市信義"}')
    recovery = recover_tool_calls(
        closed, [get_weather], finish_reason=finish_reason, completion_tokens=64, max_tokens=64
    )
    assert recovery.calls == ()
    assert [r.kind for r in recovery.rejected] == ["truncated"]
    assert "cut off at the output limit" in recovery.rejected[0].reason


def test_below_the_limit_the_same_call_runs() -> None:
    closed = server_call('{"location": "台北市信義"}')
    recovery = recover_tool_calls(
        closed, [get_weather], finish_reason="tool_calls", completion_tokens=63, max_tokens=64
    )
    assert [c.arguments for c in recovery.calls] == [{"location": "台北市信義"}]


def test_a_content_call_that_ended_before_the_cut_still_runs() -> None:
    # Provably ended before the cut: the call is closed and the text went on after it.
    message = {"role": "assistant", "content": WHOLE + "\n<step>接著我會再查一次，然後"}
    recovery = recover_tool_calls(
        message, [get_weather], finish_reason="stop", completion_tokens=64, max_tokens=64
    )
    assert [c.name for c in recovery.calls] == ["get_weather"]


def test_a_content_call_the_cut_ends_inside_of_is_refused() -> None:
    message = {
        "role": "assistant",
        "content": '{"name": "get_weather", "parameters": {"location": "台',
    }
    recovery = recover_tool_calls(
        message, [get_weather], finish_reason="stop", completion_tokens=64, max_tokens=64
    )
    assert recovery.calls == () and [r.kind for r in recovery.rejected] == ["truncated"]


async def test_the_agent_refuses_a_cut_call_and_warns_when_finish_reason_hides_it() -> None:
    cut = ModelResponse(
        message=server_call('{"location": "台北市信義"}'),
        finish_reason="tool_calls",
        usage=Usage(prompt_tokens=100, completion_tokens=2048),
    )
    model = ScriptedModel([cut, "<answer>好</answer>"])
    events: list[Any] = []
    result = await Agent(tools=[get_weather], model=model).arun("台北？", on_event=events.append)
    (record,) = result.tool_calls
    assert record.status == "rejected" and "cut off" in (record.error or "")
    assert [e.code for e in events if isinstance(e, RunWarning)] == ["cut_generation"]
    told = model.requests[1].messages[-1]["content"]
    assert told.startswith("Error: The call to tool 'get_weather' was cut off")


def test_server_calls_introduced_as_an_example_by_their_content_do_not_run() -> None:
    # vLLM main's parser sends the prose before a call as content, next to the call.
    function = {"name": "get_weather", "arguments": '{"location": "Paris"}'}
    example = {
        "role": "assistant",
        "content": "<answer>To ask for the weather, a tool call looks like",
        "tool_calls": [{"id": "c1", "function": function}],
    }
    recovery = recover_tool_calls(example, [get_weather])
    assert recovery.calls == () and [r.kind for r in recovery.rejected] == ["example"]
    plain = {**example, "content": "我先查一下巴黎的天氣。"}
    assert [c.name for c in recover_tool_calls(plain, [get_weather]).calls] == ["get_weather"]
