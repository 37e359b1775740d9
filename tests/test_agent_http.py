"""End to end over real HTTP: Agent → VLLMModel (aiohttp) → FakeVLLMServer on 127.0.0.1."""

from __future__ import annotations

import json
from typing import Any

import pytest

from foxagent import (
    Agent,
    ModelConnectionError,
    ModelHTTPError,
    ModelSettings,
    ModelTimeoutError,
    StepLimitError,
    tool,
)
from foxagent._messages import TextDelta, ToolCallDelta
from foxagent.events import RunWarning
from foxagent.models.vllm import VLLMModel
from foxagent.testing import FakeVLLMServer, Reply
from tests.conftest import AgentFactory, get_weather

ANSWER = (
    "<count>1</count><step>工具回報 23°C。</step><reflection>可信。</reflection><reward>0.9</reward>"
    "<answer>台北現在 23°C。</answer><reflection>好。</reflection><reward>0.9</reward>"
)


def call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)


@tool
def calculator(expression: str) -> str:
    """Arithmetic."""
    return {"6*7": "42", "1+1": "2"}.get(expression, "0")


@pytest.fixture
def fake_server_options() -> dict[str, Any]:
    return {"api_key": "sk-test-secret"}


@pytest.fixture
def agent_options() -> dict[str, Any]:
    return {"tools": [get_weather, calculator]}


async def run(make_agent: AgentFactory, question: str = "台北幾度？", **kwargs: Any) -> Any:
    async with make_agent(**kwargs) as agent:
        return await agent.arun(question)


async def test_clean_call(fake_server: FakeVLLMServer, make_agent: AgentFactory) -> None:
    fake_server.add(call("get_weather", location="台北"), ANSWER)
    result = await run(make_agent)
    assert result.answer == "台北現在 23°C。"
    assert [(c.name, c.status) for c in result.tool_calls] == [("get_weather", "ok")]
    assert result.total_usage.completion_tokens > 0
    first = fake_server.requests[0]
    assert first["model"] == "foxbrain"  # discovered through /v1/models
    assert first["tools"][0]["function"]["name"] == "get_weather"
    assert first["tool_choice"] == "auto"
    assert first["stop"] == ["<|eot_id|>", "<|end_of_text|>", "<|end_header_id|>", "<|eom_id|>"]
    assert first["temperature"] == 0.5 and first["max_tokens"] == 2048
    history = fake_server.requests[1]["messages"]
    assert [m["role"] for m in history] == ["system", "user", "assistant", "tool"]
    fake_server.assert_complete()


async def test_call_vllm_missed_in_content(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    text = (
        "<count>2</count><step>集合 {1,2}</step><step>"
        + call("get_weather", location="新竹")
        + "</step>"
    )
    fake_server.add(text, ANSWER)
    result = await run(make_agent)
    assert [c.arguments for c in result.tool_calls] == [{"location": "新竹"}]


async def test_several_calls_in_one_reply_pass_the_templates_check(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(
        call("get_weather", location="Taipei") + "\n" + call("calculator", expression="6*7"), ANSWER
    )
    result = await run(make_agent)
    assert [c.name for c in result.tool_calls] == ["get_weather", "calculator"]
    # The fake server answers 400 (like vLLM's Llama 3.1 template) to two calls in one message.
    assert result.answer == "台北現在 23°C。"


async def test_bad_argument_corrected_unknown_tool_and_tool_error(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(
        call("get_weather", location="Taipei", unit="kelvin"),
        call("get_wether", location="Taipei"),
        call("get_weather", location="Atlantis"),
        call("get_weather", location="Taipei"),
        ANSWER,
    )
    result = await run(make_agent)
    assert [c.status for c in result.tool_calls] == ["rejected", "rejected", "error", "ok"]
    sent = [m["content"] for m in fake_server.requests[-1]["messages"] if m["role"] == "tool"]
    assert sent[0].startswith("Error: Invalid arguments for tool 'get_weather': 'unit'")
    assert sent[1] == "Error: Unknown tool 'get_wether'. Available tools: get_weather, calculator."
    assert sent[2] == "Error: No place called 'Atlantis' was found."


async def test_max_steps(fake_server: FakeVLLMServer, make_agent: AgentFactory) -> None:
    fake_server.add(*[call("calculator", expression=f"{i}") for i in range(2)])
    with pytest.raises(StepLimitError) as caught:
        await run(make_agent, max_steps=2)
    assert caught.value.messages[-1]["role"] == "tool"


async def test_500_then_success(fake_server: FakeVLLMServer, make_agent: AgentFactory) -> None:
    fake_server.add(Reply(status=500, text="engine overloaded"), Reply(status=503), ANSWER)
    result = await run(make_agent)
    assert result.answer == "台北現在 23°C。"
    assert len(fake_server.requests) == 3


async def test_client_error_is_not_retried_and_names_the_status(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(Reply(status=400, text="bad request"))
    with pytest.raises(ModelHTTPError) as caught:
        await run(make_agent)
    assert caught.value.status == 400
    assert len(fake_server.requests) == 1
    assert caught.value.messages[-1] == {"role": "user", "content": "台北幾度？"}


async def test_dropped_connection_is_retried_then_reported(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(Reply(drop=True), ANSWER)
    assert (await run(make_agent)).answer == "台北現在 23°C。"
    fake_server.add(*[Reply(drop=True)] * 4)
    with pytest.raises(ModelConnectionError, match="Cannot talk to the model server"):
        await run(make_agent)


async def test_timeout(fake_server: FakeVLLMServer, make_agent: AgentFactory) -> None:
    fake_server.add(Reply(delay=2.0, text=ANSWER))
    options = {"timeout": 0.2, "max_retries": 0}
    async with make_agent(tools=[get_weather], model_options=options) as agent:
        with pytest.raises(ModelTimeoutError):
            await agent.arun("?")


async def test_wrong_key_is_a_401_and_the_key_never_shows(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    model = VLLMModel(fake_server.base_url, api_key="sk-wrong-key", model_name="foxbrain")
    async with make_agent(model=model, tools=[get_weather]) as agent:
        with pytest.raises(ModelHTTPError) as caught:
            await agent.arun("?")
    assert caught.value.status == 401
    assert "sk-wrong-key" not in str(caught.value) and "sk-wrong-key" not in repr(model)


async def test_streaming_with_a_call_inside_foxbrain_tags(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    text = "<count>1</count><step>" + call("get_weather", location="台北") + "</step>"
    fake_server.add(text, ANSWER)
    events: list[Any] = []
    async with make_agent(stream=True) as agent:
        result = await agent.arun("台北幾度？", on_event=events.append)
    assert [c.arguments for c in result.tool_calls] == [{"location": "台北"}]
    streamed = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert streamed == text + ANSWER
    assert len([e for e in events if isinstance(e, TextDelta)]) > 10  # token by token
    assert fake_server.requests[0]["stream"] is True


async def test_streaming_server_detected_call(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(call("get_weather", location="Taipei"), ANSWER)
    events: list[Any] = []
    async with make_agent(stream=True) as agent:
        result = await agent.arun("?", on_event=events.append)
    deltas = [e for e in events if isinstance(e, ToolCallDelta)]
    assert deltas and deltas[0].name == "get_weather"
    assert [c.arguments for c in result.tool_calls] == [{"location": "Taipei"}]


async def test_chinese_question_and_settings(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add("<answer>鴻海研究院位於台北。</answer>")
    settings = ModelSettings(temperature=0.7, max_tokens=4096, seed=None)
    result = await run(make_agent, "鴻海研究院在哪裡？", settings=settings, system_prompt=None)
    assert result.answer == "鴻海研究院位於台北。"
    body = fake_server.requests[0]
    assert body["messages"] == [{"role": "user", "content": "鴻海研究院在哪裡？"}]
    assert body["temperature"] == 0.7 and "seed" not in body


async def test_api_key_and_url_from_the_environment(
    fake_server: FakeVLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FOXAGENT_BASE_URL", fake_server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    fake_server.add("<answer>ok</answer>")
    async with Agent(tools=[get_weather]) as agent:
        assert (await agent.arun("?")).answer == "ok"


async def test_openai_client_adapter(fake_server: FakeVLLMServer, make_agent: AgentFactory) -> None:
    import openai

    from foxagent.models.openai_client import OpenAIClientModel

    fake_server.add(call("calculator", expression="6*7"), "<answer>42</answer>")
    client = openai.AsyncOpenAI(base_url=fake_server.base_url, api_key="sk-test-secret")
    model = OpenAIClientModel(client, close_client=True)
    async with make_agent(model=model, tools=[calculator]) as agent:
        result = await agent.arun("6*7?")
    assert result.answer == "42"
    assert result.tool_calls[0].result == "42"


async def test_tool_that_times_out_is_told_to_the_model(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    import asyncio

    @tool(timeout=0.05)
    async def slow_lookup(query: str) -> str:
        """Never answers in time."""
        await asyncio.sleep(5)
        return query

    fake_server.add(call("slow_lookup", query="鴻海"), "<answer>查詢逾時。</answer>")
    async with make_agent(tools=[slow_lookup]) as agent:
        result = await agent.arun("?")
    assert result.tool_calls[0].status == "timeout"
    sent = fake_server.requests[1]["messages"][-1]
    assert sent["role"] == "tool"
    assert (
        sent["content"] == "Error: Tool 'slow_lookup' did not finish within 0.05 s and was stopped."
    )
    assert result.answer == "查詢逾時。"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    "choice", ["required", {"type": "function", "function": {"name": "get_weather"}}]
)
async def test_forced_tool_choice_applies_until_the_first_call(
    fake_server: FakeVLLMServer, make_agent: AgentFactory, choice: Any, stream: bool
) -> None:
    fake_server.add(call("get_weather", location="台北"), ANSWER)
    settings = ModelSettings(tool_choice=choice)
    result = await run(make_agent, settings=settings, stream=stream)
    assert result.answer == "台北現在 23°C。"
    assert [r["tool_choice"] for r in fake_server.requests] == [choice, "auto"]
    fake_server.assert_complete()


async def test_forced_tool_choice_kept_when_reset_is_off(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(call("get_weather", location="台北"), call("get_weather", location="新竹"))
    settings = ModelSettings(tool_choice="required")
    with pytest.raises(StepLimitError):
        await run(make_agent, settings=settings, max_steps=2, reset_tool_choice=False)
    assert [r["tool_choice"] for r in fake_server.requests] == ["required", "required"]


async def test_strict_tools_mark_every_function_strict(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(
        call("get_weather", location="台北"), ANSWER, call("get_weather", location="台北")
    )
    fake_server.add(ANSWER)
    result = await run(make_agent, settings=ModelSettings(strict_tools=True))
    assert result.answer == "台北現在 23°C。"
    for request in fake_server.requests:
        assert [t["function"]["strict"] for t in request["tools"]] == [True, True]
        assert request["tools"][0]["function"]["parameters"]["required"] == ["location"]
    await run(make_agent)  # the default sends the schemas as they are
    assert all("strict" not in t["function"] for t in fake_server.requests[-1]["tools"])


@pytest.mark.parametrize("generation", ["brace", "regex", "prefix"])
async def test_streamed_call_cut_at_max_tokens(make_agent: AgentFactory, generation: str) -> None:
    # The auto-closed stream hands the client a valid-looking call with a cut value. vLLM 0.32
    # reports finish_reason "length"; up to v0.11 it said "tool_calls", and the cut call looked
    # whole (foxagent ran it). Under every generation the usage shows the cut
    # (completion_tokens == max_tokens), so the call is refused and the caller warned.
    cut = '{"name": "get_weather", "parameters": {"location": "台北市信義'
    script = [Reply(text=cut, finish_reason="length"), ANSWER]
    events: list[Any] = []
    with FakeVLLMServer(script, generation=generation, api_key="sk-test-secret") as fake:  # type: ignore[arg-type]
        async with make_agent(server=fake, stream=True) as agent:
            result = await agent.arun("台北幾度？", on_event=events.append)
    (record,) = result.tool_calls
    assert record.name == "get_weather"
    assert record.status == "rejected" and "cut off" in (record.error or "")
    warnings = [e for e in events if isinstance(e, RunWarning)]
    assert [w.code for w in warnings] == ["cut_generation"]
    assert "max_tokens (2048)" in warnings[0].message
