"""Sync tools run in foxagent's own daemon threads: a hanging one is abandoned at its timeout,
never waited for by `Agent.run`, `asyncio.run` or the interpreter's exit, and a pool held by
hung calls says so instead of queueing forever (issue 14, finding 7)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import pytest

from foxagent import Agent, ToolThreadsExhaustedError, tool
from foxagent._threads import ToolThreads
from foxagent.events import RunWarning
from foxagent.testing import ScriptedModel

RELEASE = threading.Event()


@tool(timeout=0.2)
def hang(seconds: int) -> str:
    """Wait for a release that comes late.

    Args:
        seconds: How long to wait at most.
    """
    RELEASE.wait(seconds)
    return "done"


def _wait_until(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "parameters": arguments})


def test_a_hanging_sync_tool_is_abandoned_and_the_sync_run_returns() -> None:
    RELEASE.clear()
    events: list[Any] = []
    model = ScriptedModel([call("hang", seconds=30), "<answer>好</answer>"])
    agent = Agent(tools=[hang], model=model)
    started = time.monotonic()
    result = asyncio.run(agent.arun("wait", on_event=events.append))
    elapsed = time.monotonic() - started
    RELEASE.set()
    assert elapsed < 10  # before: asyncio.run waited for the thread (30 s here, forever in life)
    record = result.tool_calls[0]
    assert record.status == "timeout"
    assert record.error == "Tool 'hang' did not finish within 0.2 s and was abandoned."
    warnings = [e for e in events if isinstance(e, RunWarning)]
    assert [w.code for w in warnings] == ["tool_abandoned"]
    assert "Its thread may still be running" in warnings[0].message


def test_a_process_whose_tool_hangs_forever_still_exits() -> None:
    script = textwrap.dedent(
        """
        import json, threading
        from foxagent import Agent, tool
        from foxagent.testing import ScriptedModel

        @tool(timeout=0.2)
        def stuck() -> str:
            '''Never returns.'''
            threading.Event().wait()
            return "never"

        model = ScriptedModel([json.dumps({"name": "stuck", "parameters": {}}), "done"])
        result = Agent(tools=[stuck], model=model).run("go")
        print(result.tool_calls[0].status, result.answer)
        """
    )
    finished = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.split() == ["timeout", "done"]


async def test_a_pool_held_by_hung_calls_refuses_at_once_and_recovers() -> None:
    pool = ToolThreads(size=2)
    gate = threading.Event()
    for _ in range(2):
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(pool.run(lambda: gate.wait(30), name="hung"), 0.05)
    assert pool.abandoned == 2
    with pytest.raises(ToolThreadsExhaustedError, match="all 2 tool threads are held"):
        await pool.run(lambda: "x", name="next")
    gate.set()
    await asyncio.to_thread(_wait_until, lambda: pool.abandoned == 0)
    assert await pool.run(lambda: "back", name="next") == "back"


async def test_calls_see_the_callers_context_and_errors_come_back() -> None:
    pool = ToolThreads(size=4)
    user: contextvars.ContextVar[str] = contextvars.ContextVar("user", default="nobody")
    user.set("alice")
    assert await pool.run(user.get) == "alice"

    def fail() -> None:
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        await pool.run(fail)
    results = await asyncio.gather(*(pool.run(lambda i=i: i * i) for i in range(20)))
    assert results == [i * i for i in range(20)]
