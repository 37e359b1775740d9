"""The agent loop, driven in-process by ScriptedModel (HTTP paths are in test_agent_http.py)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from foxagent import ToolContext, tool
from foxagent._agent import Agent
from foxagent._exceptions import StepLimitError, ToolRetryError, UserError
from foxagent._prompts import DEFAULT_SYSTEM_PROMPT
from foxagent.testing._models import FunctionModel, ModelRequest, ScriptedModel
from tests.conftest import AgentFactory, get_weather

ANSWER = (
    "<count>1</count><step>查到台北 23°C。</step><reflection>正確。</reflection>"
    "<reward>0.9</reward><answer>台北現在 23°C。</answer><reflection>好。</reflection><reward>0.9</reward>"
)


def call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)


calls_made: list[tuple[str, dict[str, Any]]] = []  # the calculator's (get_weather: weather_calls)


@tool
async def calculator(expression: str) -> str:
    """Arithmetic."""
    calls_made.append(("calculator", {"expression": expression}))
    await asyncio.sleep(0)
    return str(eval(expression, {"__builtins__": {}}))  # test-only arithmetic on fixed inputs


@tool
def broken(x: int) -> int:
    """Always fails."""
    raise RuntimeError("disk on fire")


@tool(timeout=0.05)
async def slow() -> str:
    """Never finishes in time."""
    await asyncio.sleep(5)
    return "late"


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls_made.clear()


@pytest.fixture
def agent_options() -> dict[str, Any]:
    return {"tools": [get_weather, calculator, broken, slow]}


async def test_clean_call_then_answer(make_agent: AgentFactory) -> None:
    model = ScriptedModel([call("get_weather", location="台北"), ANSWER], parser="brace")
    result = await make_agent(model=model).arun("台北現在幾度？")
    assert result.answer == "台北現在 23°C。"
    assert result.parsed.complete
    assert result.steps == 2
    assert [(r.name, r.arguments, r.status) for r in result.tool_calls] == [
        ("get_weather", {"location": "台北"}, "ok")
    ]
    assert result.tool_calls[0].result == {"location": "台北", "temperature": 23, "unit": "celsius"}
    roles = [m["role"] for m in result.messages]
    assert roles == ["system", "user", "assistant", "tool", "assistant"]
    assert result.messages[0]["content"] == DEFAULT_SYSTEM_PROMPT
    tool_turn = result.messages[2]
    assert tool_turn["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"location": "台北"}',
    }
    assert result.messages[3]["tool_call_id"] == tool_turn["tool_calls"][0]["id"]
    assert json.loads(result.messages[3]["content"])["temperature"] == 23
    assert len(result.usage) == 2
    model.assert_complete()
    # The second request saw the tool result, and the tools were offered both times.
    assert model.requests[1].messages[-1]["role"] == "tool"
    assert [t["function"]["name"] for t in model.requests[0].tools] == [
        "get_weather",
        "calculator",
        "broken",
        "slow",
    ]


async def test_call_vllm_missed_in_foxbrain_content(
    make_agent: AgentFactory, weather_calls: list[dict[str, Any]]
) -> None:
    text = (
        "<count>2</count><step>先查天氣 {1,2}</step><step>"
        + call("get_weather", location="新竹")
        + "</step>"
    )
    model = ScriptedModel([text, ANSWER], parser="brace")
    result = await make_agent(model=model).arun("新竹天氣？")
    assert weather_calls == [{"location": "新竹", "unit": "celsius"}] and calls_made == []
    assert "<step>先查天氣 {1,2}</step>" in result.messages[2]["content"]


async def test_several_calls_become_consecutive_pairs_and_run_concurrently(
    make_agent: AgentFactory,
) -> None:
    text = call("get_weather", location="Taipei") + "; " + call("calculator", expression="6*7")
    model = ScriptedModel([text, ANSWER], parser="brace")
    result = await make_agent(model=model).arun("Weather and 6*7?")
    roles = [m["role"] for m in result.messages[2:6]]
    assert roles == ["assistant", "tool", "assistant", "tool"]
    for message in result.messages:
        if message["role"] == "assistant" and "tool_calls" in message:
            assert len(message["tool_calls"]) == 1  # the Llama 3.1 template allows one
    assert result.messages[5]["content"] == "42"


async def test_bad_argument_is_corrected_on_retry(make_agent: AgentFactory) -> None:
    model = ScriptedModel(
        [
            call("get_weather", location="Taipei", unit="kelvin"),
            call("get_weather", location="Taipei"),
            ANSWER,
        ]
    )
    result = await make_agent(model=model).arun("Weather?")
    assert [r.status for r in result.tool_calls] == ["rejected", "ok"]
    error = result.messages[3]["content"]
    assert error == (
        "Error: Invalid arguments for tool 'get_weather': 'unit': expected one of 'celsius', "
        "'fahrenheit', got 'kelvin'."
    )
    assert result.answer == "台北現在 23°C。"


async def test_unknown_tool_is_told_the_real_names(make_agent: AgentFactory) -> None:
    model = ScriptedModel([call("get_wether", location="x"), ANSWER])
    result = await make_agent(model=model).arun("?")
    assert result.messages[3]["content"] == (
        "Error: Unknown tool 'get_wether'. Available tools: get_weather, calculator, broken, slow."
    )
    assert result.tool_calls[0].status == "rejected"


async def test_tool_errors_become_results(make_agent: AgentFactory) -> None:
    model = ScriptedModel([call("get_weather", location="Atlantis"), call("broken", x=1), ANSWER])
    result = await make_agent(model=model).arun("?")
    assert [m["content"] for m in result.messages if m["role"] == "tool"] == [
        "Error: No place called 'Atlantis' was found.",
        "Error: Tool 'broken' failed: RuntimeError: disk on fire",
    ]


async def test_tool_timeout(make_agent: AgentFactory) -> None:
    model = ScriptedModel([call("slow"), ANSWER])
    result = await make_agent(model=model).arun("?")
    assert result.tool_calls[0].status == "timeout"
    assert (
        result.messages[3]["content"]
        == "Error: Tool 'slow' did not finish within 0.05 s and was stopped."
    )


async def test_max_steps_keeps_the_transcript(make_agent: AgentFactory) -> None:
    model = ScriptedModel([call("calculator", expression=f"{i}+1") for i in range(3)])
    with pytest.raises(StepLimitError) as caught:
        await make_agent(model=model, max_steps=3).arun("loop")
    assert len([m for m in caught.value.messages if m["role"] == "tool"]) == 3
    assert caught.value.messages[1] == {"role": "user", "content": "loop"}


async def test_retry_budget(make_agent: AgentFactory) -> None:
    model = ScriptedModel([call("broken", x=1)] * 3)
    with pytest.raises(ToolRetryError, match="'broken' failed 3 times in a row") as caught:
        await make_agent(model=model, max_retries=2).arun("?")
    assert caught.value.messages[-1]["role"] == "tool"


async def test_identical_call_repeated_without_progress_is_stopped(
    make_agent: AgentFactory,
) -> None:
    model = ScriptedModel([call("calculator", expression="1+1")] * 3 + [ANSWER])
    result = await make_agent(model=model).arun("?")
    assert [r.status for r in result.tool_calls] == ["ok", "ok", "rejected"]
    assert "already called 2 times" in (result.tool_calls[2].error or "")
    assert len([c for c in calls_made if c[0] == "calculator"]) == 2


async def test_plain_answer_without_tags(make_agent: AgentFactory) -> None:
    result = await make_agent(model=ScriptedModel(["Hello! 你好！"]), system_prompt=None).arun("hi")
    assert result.answer == "Hello! 你好！"
    assert [m["role"] for m in result.messages] == ["user", "assistant"]


async def test_multi_turn_continues_from_messages(make_agent: AgentFactory) -> None:
    model = ScriptedModel(
        [call("get_weather", location="台北"), ANSWER, "<answer>還是 23°C。</answer>"]
    )
    bot = make_agent(model=model)
    first = await bot.arun("台北幾度？")
    second = await bot.arun("那現在呢？", history=first.messages)
    assert second.answer == "還是 23°C。"
    assert second.messages[: len(first.messages)] == first.messages
    assert [m["role"] for m in model.requests[-1].messages].count("system") == 1


async def test_function_model_and_context_sees_the_run() -> None:
    seen: list[str] = []

    @tool
    def peek(ctx: ToolContext) -> str:
        """Peek at the conversation."""
        seen.append(ctx.messages[-1]["content"])
        return ctx.run_id

    def reply(request: ModelRequest) -> str:
        return call("peek") if request.messages[-1]["role"] == "user" else "<answer>done</answer>"

    result = await Agent(tools=[peek], model=FunctionModel(reply), system_prompt=None).arun("q")
    assert seen == ["q"]
    assert result.answer == "done"


def test_sync_run_and_misuse_inside_a_loop(make_agent: AgentFactory) -> None:
    result = make_agent(model=ScriptedModel(["<answer>ok</answer>"])).run("?")
    assert result.answer == "ok"

    async def inside() -> None:
        with pytest.raises(UserError, match=r"use `await agent.arun"):
            make_agent(model=ScriptedModel(["x"])).run("?")

    asyncio.run(inside())


def test_max_steps_must_be_positive() -> None:
    with pytest.raises(UserError, match="max_steps must be at least 1"):
        Agent(tools=[], model=ScriptedModel(), max_steps=0)
