"""When vLLM's parser dropped generated text and only the token counts say so (a server that
does not list the generated tokens, or ``generated_tokens=False``), the agent asks again with
the parser off and decides from the raw text (issue 15, section 1). The path with the tokens
is in test_generated_text.py."""

from __future__ import annotations

import json
from typing import Any

import pytest

from foxagent import Agent, ModelHTTPError, ModelResponse, ModelSettings, Usage, tool
from foxagent._reask import dropped_text
from foxagent._tokens import estimate_tokens
from foxagent.events import RunWarning
from foxagent.models import VLLMModel
from foxagent.testing import FakeVLLMServer, Reply

RAN: list[str] = []
COUNTS_ONLY = ModelSettings(generated_tokens=False)
EXAMPLE = (
    "<step>使用者問怎麼查天氣。呼叫格式是 "
    '{"name": "get_weather", "parameters": {"location": "Taipei"}}'
    "，把城市換成你要的。</step>\n<answer>照上面的格式填入城市名稱，我就能幫你查天氣。</answer>"
)


@tool
def get_weather(location: str) -> str:
    """Weather now.

    Args:
        location: City.
    """
    RAN.append(location)
    return f"{location} 23°C"


def server_reply(text: str, calls: list[tuple[str, str]], completion: int) -> ModelResponse:
    tool_calls = [{"id": "c", "function": {"name": n, "arguments": a}} for n, a in calls]
    message = {"role": "assistant", "content": None, "tool_calls": tool_calls}
    return ModelResponse(
        message=message, finish_reason="tool_calls", usage=Usage(completion_tokens=completion)
    )


def test_a_clean_call_is_trusted_and_a_call_cut_out_of_prose_is_not() -> None:
    settings = ModelSettings()
    call = '{"name": "get_weather", "parameters": {"location": "台北"}}'
    clean = server_reply(call, [("get_weather", '{"location": "台北"}')], estimate_tokens(call))
    assert dropped_text(clean, settings, tools=True) is None
    cut = server_reply(
        EXAMPLE, [("get_weather", '{"location": "Taipei"}')], estimate_tokens(EXAMPLE)
    )
    reason = dropped_text(cut, settings, tools=True)
    assert reason is not None and "its parser dropped the rest" in reason


def test_only_auto_tool_choice_with_tools_and_uncut_replies_are_questioned() -> None:
    cut = server_reply(EXAMPLE, [("get_weather", '{"location": "Taipei"}')], 80)
    assert dropped_text(cut, ModelSettings(tool_choice="required"), tools=True) is None
    assert dropped_text(cut, ModelSettings(), tools=False) is None
    length = ModelResponse(message=cut.message, finish_reason="length", usage=cut.usage)
    assert dropped_text(length, ModelSettings(), tools=True) is None
    empty = ModelResponse(
        message={"role": "assistant", "content": ""}, usage=Usage(completion_tokens=30)
    )
    assert "empty reply for 30 generated tokens" in (
        dropped_text(empty, ModelSettings(), tools=True) or ""
    )


async def test_an_example_vllm_turned_into_a_call_is_decided_from_the_raw_text() -> None:
    RAN.clear()
    events: list[Any] = []
    # vLLM 0.32 ("brace") keeps only the JSON object of the reply: a clean-looking call.
    with FakeVLLMServer([Reply(text=EXAMPLE), Reply(text=EXAMPLE)], generation="brace") as server:
        agent = Agent(tools=[get_weather], base_url=server.base_url, settings=COUNTS_ONLY)
        async with agent:
            result = await agent.arun("怎麼查天氣？", on_event=events.append)
        requests = server.requests
    assert RAN == []  # the example never ran
    assert result.answer == "照上面的格式填入城市名稱，我就能幫你查天氣。"
    assert [r.get("tool_choice") for r in requests] == ["auto", "none"]
    assert requests[0]["seed"] == requests[1]["seed"] == 42  # the same text from the cache
    assert [e.code for e in events if isinstance(e, RunWarning)] == ["reasked_raw"]
    assert result.tool_calls == []  # an example is text, not an attempt


async def test_a_real_call_found_again_in_the_raw_text_runs_once_and_says_so() -> None:
    RAN.clear()
    text = (
        "<step>我先查台北的天氣，再回答使用者關於穿著的問題，所以需要呼叫工具。</step>\n"
        + json.dumps(
            {"name": "get_weather", "parameters": {"location": "台北"}}, ensure_ascii=False
        )
    )
    script = [Reply(text=text), Reply(text=text), Reply(text="<answer>帶傘。</answer>")]
    with FakeVLLMServer(script, generation="brace") as server:
        agent = Agent(tools=[get_weather], base_url=server.base_url, settings=COUNTS_ONLY)
        async with agent:
            result = await agent.arun("要帶傘嗎？")
    assert RAN == ["台北"] and result.answer == "帶傘。"
    assert result.tool_calls[0].repairs[-1] == "reasked_raw"
    assert result.repair_counts.get("reasked_raw") == 1


async def test_a_5xx_after_the_retries_is_asked_once_more_with_the_parser_off() -> None:
    # llama.cpp 2026 builds answered 500 when their tool parser failed on a finished generation.
    RAN.clear()
    call = json.dumps(
        {"name": "get_weather", "parameters": {"location": "台南"}}, ensure_ascii=False
    )
    failing = [Reply(status=500, text="Failed to parse tool call")] * 4  # the first try + 3 retries
    script = [*failing, Reply(text=call), Reply(text="<answer>晴。</answer>")]
    events: list[Any] = []
    with FakeVLLMServer(script, generation="brace") as server:
        model = VLLMModel(server.base_url, backoff=0.01)
        async with Agent(tools=[get_weather], model=model) as agent:
            result = await agent.arun("台南天氣？", on_event=events.append)
        choices = [r.get("tool_choice") for r in server.requests]
    assert RAN == ["台南"] and result.answer == "晴。"
    assert choices == ["auto"] * 4 + ["none", "auto"]
    (warning,) = [e for e in events if isinstance(e, RunWarning)]
    assert warning.code == "reasked_raw" and "Failed to parse tool call" in warning.message


async def test_a_4xx_is_not_asked_again() -> None:
    with FakeVLLMServer([Reply(status=400, text="prompt too long")]) as server:
        async with Agent(tools=[get_weather], base_url=server.base_url) as agent:
            with pytest.raises(ModelHTTPError):
                await agent.arun("?")
        assert len(server.requests) == 1
