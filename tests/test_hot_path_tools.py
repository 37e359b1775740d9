"""Sync tools without a thread hop, only when allowed; tracing decided once per run (issue 18)."""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from typing import Any

import pytest

from foxagent import Agent, _tracing as tracing, tool
from foxagent._tools import TRIAL_CALLS
from foxagent.testing import FunctionModel

CALL = '{{"name": "{name}", "parameters": {{"x": {x}}}}}'
ANSWER = "<count>1</count><step>done</step><answer>ok</answer>"


async def _calls(some_tool: Any, count: int) -> list[str]:
    """Run ``some_tool`` ``count`` times; the thread each call ran in."""
    threads = []
    for x in range(count):
        threads.append(await some_tool.invoke({"x": x}))
    return threads


def _thread_name(x: int) -> str:
    return threading.current_thread().name


async def test_a_cheap_sync_tool_runs_inline_after_its_trial() -> None:
    cheap = tool(name="cheap")(_thread_name)
    assert not cheap.runs_inline
    threads = await _calls(cheap, TRIAL_CALLS + 3)
    main = threading.current_thread().name
    assert all(name.startswith("foxagent-tool") for name in threads[:TRIAL_CALLS])
    assert threads[TRIAL_CALLS:] == [main] * 3
    assert cheap.runs_inline


async def test_a_blocking_sync_tool_never_runs_inline_and_never_stalls_the_loop() -> None:
    def slow(x: int) -> str:
        time.sleep(0.02)
        return threading.current_thread().name

    blocking = tool(name="slow")(slow)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.ensure_future(ticker())
    try:
        threads = await _calls(blocking, TRIAL_CALLS + 4)
    finally:
        task.cancel()
    assert all(name.startswith("foxagent-tool") for name in threads)
    assert not blocking.runs_inline
    # The calls ran in threads: the loop kept ticking while each one slept (inline, it could not).
    assert ticks >= TRIAL_CALLS + 4


async def test_a_tool_that_blocks_after_its_trial_goes_back_to_threads_for_good() -> None:
    block = False

    def sometimes(x: int) -> str:
        if block:
            time.sleep(0.005)
        return threading.current_thread().name

    flaky = tool(name="flaky")(sometimes)
    await _calls(flaky, TRIAL_CALLS)
    assert flaky.runs_inline
    block = True
    await _calls(flaky, 1)  # on the loop, once: it waited, so it is demoted
    block = False
    assert not flaky.runs_inline
    threads = await _calls(flaky, TRIAL_CALLS + 2)
    assert all(name.startswith("foxagent-tool") for name in threads)


async def test_a_cpu_heavy_tool_is_not_promoted() -> None:
    def heavy(x: int) -> int:
        end = time.thread_time() + 0.003
        while time.thread_time() < end:
            pass
        return x

    busy = tool(name="busy")(heavy)
    await _calls(busy, TRIAL_CALLS + 2)
    assert not busy.runs_inline


async def test_declared_inline_and_declared_threaded() -> None:
    inline = tool(name="inline", inline=True)(_thread_name)
    threaded = tool(name="threaded", inline=False)(_thread_name)
    main = threading.current_thread().name
    assert await _calls(inline, 2) == [main, main]
    names = await _calls(threaded, TRIAL_CALLS + 2)
    assert all(name.startswith("foxagent-tool") for name in names)
    assert inline.runs_inline and not threaded.runs_inline


async def test_async_tools_are_never_inline_sync_calls() -> None:
    async def coroutine(x: int) -> int:
        return x

    assert not tool(name="a", inline=True)(coroutine).runs_inline


LEAK: contextvars.ContextVar[str] = contextvars.ContextVar("leak", default="outside")


async def test_an_inline_call_sees_and_keeps_context_variables_as_a_thread_would() -> None:
    def sets(x: int) -> str:
        seen = LEAK.get()
        LEAK.set("inside")
        return seen

    setter = tool(name="setter", inline=True)(sets)
    LEAK.set("caller")
    assert await setter.invoke({"x": 1}) == "caller"
    assert LEAK.get() == "caller"  # the tool's own set stayed in its copy


async def test_an_agent_runs_a_promoted_tool_inline_with_the_same_results() -> None:
    def record(x: int) -> dict[str, Any]:
        return {"x": x, "thread": threading.current_thread().name}

    recorder = tool(name="record")(record)

    def reply(request: Any) -> str:
        return ANSWER if request.messages[-1]["role"] == "tool" else CALL.format(name="record", x=7)

    agent = Agent(tools=[recorder], model=FunctionModel(reply), system_prompt=None)
    results = [await agent.arun("go") for _ in range(TRIAL_CALLS + 2)]
    for result in results:
        assert result.answer == "ok"
        assert [r.status for r in result.tool_calls] == ["ok"]
        assert result.tool_calls[0].result["x"] == 7
    threads = [r.tool_calls[0].result["thread"] for r in results]
    assert threads[-1] == threading.current_thread().name
    assert threads[0].startswith("foxagent-tool")


async def test_an_inline_tool_that_raises_is_an_error_record() -> None:
    def fails(x: int) -> str:
        raise ValueError("nope")

    failing = tool(name="fails", inline=True)(fails)

    def reply(request: Any) -> str:
        return ANSWER if request.messages[-1]["role"] == "tool" else CALL.format(name="fails", x=1)

    agent = Agent(tools=[failing], model=FunctionModel(reply), system_prompt=None)
    result = await agent.arun("go")
    assert result.tool_calls[0].status == "error"
    assert "ValueError: nope" in (result.tool_calls[0].error or "")


async def test_tracing_is_decided_once_per_run(monkeypatch: pytest.MonkeyPatch) -> None:
    asked = 0
    real = tracing.recording

    def counting() -> bool:
        nonlocal asked
        asked += 1
        return real()

    monkeypatch.setattr(tracing, "recording", counting)

    def reply(request: Any) -> str:
        return ANSWER if request.messages[-1]["role"] == "tool" else CALL.format(name="cheap", x=1)

    agent = Agent(tools=[tool(name="cheap")(_thread_name)], model=FunctionModel(reply))
    await agent.arun("go")
    assert asked == 1
