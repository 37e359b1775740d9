"""Limits for services over real HTTP: in-flight requests per model, run deadlines,
cancellation, and the size of tool results sent back to the model."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from foxagent import RunTimeoutError, UserError, tool
from foxagent.events import RunCancelled, RunEvent, ToolStarted
from foxagent.models.vllm import VLLMModel
from foxagent.testing import FakeVLLMServer, Reply
from tests.conftest import AgentFactory
from tests.fixtures.slow_tools import STOPPED, slow_lookup

ANSWER = "<answer>好</answer>"


@tool
def big_report(rows: int) -> str:
    """A report with many rows.

    Args:
        rows: How many rows.
    """
    return "".join(f"row {i:05d}\n" for i in range(rows))


def call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "parameters": arguments})


@pytest.fixture
def agent_options() -> dict[str, Any]:
    return {"tools": [slow_lookup, big_report], "system_prompt": None}


async def wait_until(condition: Any, seconds: float = 5.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition never became true")


@pytest.mark.parametrize(("cap", "expected_peak"), [(3, 3), (None, 12)])
async def test_in_flight_requests_per_model_queue_instead_of_failing(
    fake_server: FakeVLLMServer, make_agent: AgentFactory, cap: int | None, expected_peak: int
) -> None:
    fake_server.add(*[Reply(text=ANSWER, delay=0.2)] * 12)
    async with make_agent(model_options={"max_concurrent_requests": cap}) as agent:
        results = await asyncio.gather(*(agent.arun(f"q{i}") for i in range(12)))
    assert [r.answer for r in results] == ["好"] * 12
    assert fake_server.peak_in_flight == expected_peak


def test_in_flight_cap_must_be_positive() -> None:
    with pytest.raises(UserError, match="max_concurrent_requests must be at least 1, got 0"):
        VLLMModel("http://127.0.0.1:9/v1", max_concurrent_requests=0)


async def test_run_deadline_stops_the_model_request_and_keeps_the_transcript(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(Reply(text=ANSWER, delay=10))
    async with make_agent(run_timeout=0.3) as agent:
        with pytest.raises(RunTimeoutError, match=r"within 0\.3 s") as caught:
            await agent.arun("慢慢來")
        await wait_until(lambda: fake_server.abandoned == 1)  # the server saw the client leave
    assert caught.value.messages == [{"role": "user", "content": "慢慢來"}]


async def test_per_run_timeout_overrides_the_agents_and_stops_tools(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    STOPPED.clear()
    fake_server.add(call("slow_lookup", query="q-deadline"))
    async with make_agent(run_timeout=60) as agent:
        with pytest.raises(RunTimeoutError):
            await agent.arun("look it up", timeout=0.3)
    assert STOPPED == ["q-deadline"]


async def test_cancelling_a_run_stops_its_tools_and_reports_the_transcript(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    STOPPED.clear()
    events: list[RunEvent] = []
    fake_server.add(call("slow_lookup", query="q-cancel"))
    async with make_agent() as agent:
        run = asyncio.ensure_future(agent.arun("look it up", on_event=events.append))
        await wait_until(lambda: any(isinstance(e, ToolStarted) for e in events))
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
    assert STOPPED == ["q-cancel"]
    last = events[-1]
    assert isinstance(last, RunCancelled)
    assert last.messages == [{"role": "user", "content": "look it up"}]


async def test_cancelling_during_a_model_request_closes_it(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    events: list[RunEvent] = []
    fake_server.add(Reply(text=ANSWER, delay=10))
    async with make_agent() as agent:
        run = asyncio.ensure_future(agent.arun("hi", on_event=events.append))
        await wait_until(lambda: len(fake_server.requests) == 1)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        await wait_until(lambda: fake_server.abandoned == 1)
    assert isinstance(events[-1], RunCancelled)


@pytest.mark.parametrize(("cap", "sent_chars"), [(16_000, 16_000), (500, 500), (None, 50_000)])
async def test_long_tool_results_are_cut_with_a_note(
    fake_server: FakeVLLMServer, make_agent: AgentFactory, cap: int | None, sent_chars: int
) -> None:
    fake_server.add(call("big_report", rows=5_000), ANSWER)
    kwargs = {} if cap == 16_000 else {"max_tool_result_chars": cap}
    async with make_agent(**kwargs) as agent:
        result = await agent.arun("report")
    assert len(result.tool_calls[0].result) == 50_000  # the record keeps it whole
    sent = next(m for m in fake_server.requests[1]["messages"] if m["role"] == "tool")["content"]
    assert sent.startswith("row 00000\nrow 00001\n")
    if cap is None:
        assert len(sent) == 50_000
    else:
        body, note = sent[:sent_chars], sent[sent_chars:]
        assert body == result.tool_calls[0].result[:sent_chars]
        assert (
            note == f"\n[foxagent: the tool result was cut to its first {cap} of 50000 characters]"
        )
