"""Typed run events over real HTTP: ``Agent.iter`` and ``arun(on_event=...)`` against
FakeVLLMServer on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from foxagent import Agent, StepLimitError
from foxagent.events import (
    FinalAnswer,
    ModelRetry,
    RunEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallDetected,
    ToolFinished,
    ToolStarted,
)
from foxagent.testing import FakeVLLMServer, Reply
from tests.conftest import AgentFactory, get_weather
from tests.fixtures.slow_tools import STOPPED, slow_lookup

ANSWER = "<answer>台北 23°C</answer>"
CALL = json.dumps({"name": "get_weather", "parameters": {"location": "台北"}}, ensure_ascii=False)


@pytest.fixture
def agent_options() -> dict[str, Any]:
    return {"tools": [get_weather, slow_lookup], "system_prompt": None}


async def collect(agent: Agent, question: str = "台北幾度？") -> list[RunEvent]:
    async with agent:
        return [event async for event in agent.iter(question)]


async def test_iter_yields_each_step_of_a_run_in_order(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(CALL, ANSWER)
    events = await collect(make_agent())
    assert [e.kind for e in events] == [
        "step",
        "tool_call_detected",
        "tool_started",
        "tool_finished",
        "step",
        "text",
        "final_answer",
    ]
    detected = events[1]
    assert isinstance(detected, ToolCallDetected)
    assert (detected.name, detected.arguments, detected.step) == (
        "get_weather",
        {"location": "台北"},
        1,
    )
    started, finished = events[2], events[3]
    assert isinstance(started, ToolStarted) and started.id == detected.id
    assert isinstance(finished, ToolFinished) and finished.record.status == "ok"
    assert finished.record.result == {"location": "台北", "temperature": 23, "unit": "celsius"}
    final = events[-1]
    assert isinstance(final, FinalAnswer) and final.result.answer == "台北 23°C"
    assert final.result.timings.total > 0  # the result is complete when the event comes


async def test_streaming_run_yields_deltas_before_the_call_runs(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(CALL, ANSWER)
    events = await collect(make_agent(stream=True))
    kinds = [e.kind for e in events]
    first_tool = kinds.index("tool_call_detected")
    assert "tool_call" in kinds[:first_tool]  # vLLM streamed the call as tool-call deltas
    names = [e.name for e in events if isinstance(e, ToolCallDelta) and e.name]
    assert names == ["get_weather"]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert text == ANSWER
    assert kinds[-1] == "final_answer"


async def test_a_retried_request_is_reported_with_its_reason(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(Reply(status=503, text="engine busy"), ANSWER)
    events = await collect(make_agent())
    retry = next(e for e in events if isinstance(e, ModelRetry))
    assert retry.attempt == 1 and retry.delay > 0
    assert "503" in retry.reason and "engine busy" in retry.reason
    assert [e.kind for e in events] == ["step", "retry", "text", "final_answer"]


async def test_concurrent_runs_never_see_each_others_events(make_agent: AgentFactory) -> None:
    def script(body: dict[str, Any]) -> Reply | str:
        question = body["messages"][-1]["content"]
        if question == "busy" and not any(m["role"] == "user" for m in body["messages"][:-1]):
            script.busy_failures += 1  # type: ignore[attr-defined]
            if script.busy_failures == 1:  # type: ignore[attr-defined]
                return Reply(status=503, text="engine busy")
        return ANSWER

    script.busy_failures = 0  # type: ignore[attr-defined]
    with FakeVLLMServer(script) as server:
        async with make_agent(server=server) as agent:

            async def kinds(question: str) -> list[str]:
                return [e.kind async for e in agent.iter(question)]

            busy, calm = await asyncio.gather(kinds("busy"), kinds("calm"))
    assert busy == ["step", "retry", "text", "final_answer"]
    assert calm == ["step", "text", "final_answer"]


async def test_a_refused_call_is_finished_without_starting(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    unknown = json.dumps({"name": "send_rocket", "parameters": {}})
    fake_server.add(unknown, ANSWER)
    events = await collect(make_agent())
    assert [e.kind for e in events] == ["step", "tool_finished", "step", "text", "final_answer"]
    finished = events[1]
    assert isinstance(finished, ToolFinished) and finished.record.status == "rejected"
    assert "send_rocket" in (finished.record.error or "")


async def test_a_failed_run_raises_after_its_events(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    seen: list[str] = []
    fake_server.add(CALL, CALL, CALL)
    async with make_agent(max_steps=2) as agent:
        with pytest.raises(StepLimitError) as caught:
            async for event in agent.iter("台北幾度？"):
                seen.append(event.kind)
    assert seen.count("step") == 2 and "final_answer" not in seen
    assert caught.value.messages[-1]["role"] == "tool"


async def test_leaving_the_loop_cancels_the_run_and_its_tools(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    STOPPED.clear()
    call = json.dumps({"name": "slow_lookup", "parameters": {"query": "q-break"}})
    fake_server.add(call, ANSWER)
    async with make_agent() as agent:
        started = time.monotonic()
        async for event in agent.iter("look it up"):
            if isinstance(event, ToolStarted):
                break
        # The generator is closed by the loop's finalizer (not at the break): the run and its
        # tool are cancelled a few turns of the loop later.
        for _ in range(100):
            if STOPPED:
                break
            await asyncio.sleep(0.01)
    assert STOPPED == ["q-break"]
    assert time.monotonic() - started < 5  # not the tool's 30 s
