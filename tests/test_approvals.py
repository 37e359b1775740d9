"""Human approval of tool calls: asked inline, or a paused run decided later through its
session (even by another process) and resumed. Over real HTTP to FakeVLLMServer."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from foxagent import UserError, tool
from foxagent.events import ApprovalRequired, RunEvent
from foxagent.sessions import MemoryStore, PendingCall, Session, SQLiteStore
from foxagent.testing import FakeVLLMServer
from tests.conftest import AgentFactory

ANSWER = "<answer>完成</answer>"
RAN: list[str] = []


@tool(requires_approval=True)
def delete_file(path: str) -> str:
    """Delete a file.

    Args:
        path: The file.
    """
    RAN.append(path)
    return f"deleted {path}"


@tool
def list_files(folder: str) -> list[str]:
    """List a folder.

    Args:
        folder: The folder.
    """
    return ["a.txt", "b.txt"]


def call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "parameters": arguments})


DELETE = call("delete_file", path="/tmp/a.txt")


@pytest.fixture
def agent_options() -> dict[str, Any]:
    return {"tools": [delete_file, list_files], "system_prompt": None}


def tool_messages(server: FakeVLLMServer) -> list[str]:
    return [m["content"] for m in server.requests[-1]["messages"] if m["role"] == "tool"]


@pytest.fixture(autouse=True)
def _forget_runs() -> None:
    RAN.clear()


@pytest.mark.parametrize("is_async", [False, True])
@pytest.mark.parametrize("approved", [True, False])
async def test_an_approver_is_asked_before_the_call_runs(
    approved: bool, is_async: bool, fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    asked: list[PendingCall] = []

    def decide(pending: PendingCall) -> bool:
        asked.append(pending)
        return approved

    async def decide_async(pending: PendingCall) -> bool:
        return decide(pending)

    fake_server.add(DELETE, ANSWER)
    async with make_agent(approver=decide_async if is_async else decide) as agent:
        result = await agent.arun("刪掉 a.txt")
    assert [(p.name, p.arguments, p.needs_approval) for p in asked] == [
        ("delete_file", {"path": "/tmp/a.txt"}, True)
    ]
    assert RAN == (["/tmp/a.txt"] if approved else [])
    assert result.tool_calls[0].status == ("ok" if approved else "denied")
    expected = (
        "deleted /tmp/a.txt"
        if approved
        else ("Error: The user did not approve the call to 'delete_file'.")
    )
    assert tool_messages(fake_server) == [expected]
    assert result.answer == "完成"


async def test_tools_without_approval_are_not_asked_about(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    asked: list[PendingCall] = []
    fake_server.add(call("list_files", folder="/tmp"), ANSWER)
    async with make_agent(approver=lambda p: asked.append(p) or True) as agent:
        result = await agent.arun("看 /tmp")
    assert asked == [] and result.tool_calls[0].status == "ok"


async def test_without_approver_or_session_the_call_is_refused(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(DELETE, ANSWER)
    async with make_agent() as agent:
        result = await agent.arun("刪掉 a.txt")
    assert RAN == [] and result.tool_calls[0].status == "denied"
    assert "needs a person's approval, and nobody can be asked" in tool_messages(fake_server)[0]


async def test_a_session_run_pauses_and_resumes_after_approval(
    tmp_path: Path, fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    events: list[RunEvent] = []
    both = DELETE + "\n" + call("list_files", folder="/tmp")
    fake_server.add(both, ANSWER)
    async with make_agent() as agent:
        session = Session(SQLiteStore(tmp_path / "s.db"), "user-1")
        paused = await agent.arun("清理 /tmp", session=session, on_event=events.append)
        assert paused.answer == "" and RAN == []
        assert [(p.name, p.needs_approval) for p in paused.pending] == [
            ("delete_file", True),
            ("list_files", False),  # waits with the reply it came in
        ]
        last = events[-1]
        assert isinstance(last, ApprovalRequired) and last.calls == paused.pending
        assert len(fake_server.requests) == 1
        # Stored: the question only; the reply's calls live in the pending state.
        assert [m["role"] for m in await session.messages()] == ["user"]
        with pytest.raises(UserError, match="waiting for approval of"):
            await agent.arun("再問", session=session)
        with pytest.raises(UserError, match="still wait for a decision"):
            await agent.resume(session)
        await session.approve(paused.pending[0].id)
        result = await agent.resume(session)
    assert RAN == ["/tmp/a.txt"] and result.answer == "完成"
    assert [r.status for r in result.tool_calls] == ["ok", "ok"]
    assert tool_messages(fake_server) == ["deleted /tmp/a.txt", '["a.txt", "b.txt"]']
    roles = [m["role"] for m in await session.messages()]
    assert roles == ["user", "assistant", "tool", "assistant", "tool", "assistant"]
    assert await session.pending() == []


async def test_a_denial_reason_reaches_the_model(
    fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(DELETE, ANSWER)
    async with make_agent() as agent:
        session = Session(MemoryStore(), "s")
        paused = await agent.arun("刪掉 a.txt", session=session)
        await session.deny(paused.pending[0].id, "a.txt is still needed")
        with pytest.raises(UserError, match="has no call 'nope' waiting for approval"):
            await session.approve("nope")
        result = await agent.resume(session)
    assert RAN == [] and result.tool_calls[0].status == "denied"
    assert tool_messages(fake_server) == [
        "Error: The user did not approve the call to 'delete_file': a.txt is still needed"
    ]


async def test_another_process_approves_through_the_session(
    tmp_path: Path, fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    database = tmp_path / "shared.db"
    fake_server.add(DELETE, ANSWER)
    async with make_agent() as agent:
        session = Session(SQLiteStore(database), "user-9")
        paused = await agent.arun("刪掉 a.txt", session=session)
        script = (
            "import asyncio, sys\n"
            "from foxagent.sessions import Session, SQLiteStore\n"
            "session = Session(SQLiteStore(sys.argv[1]), 'user-9')\n"
            "asyncio.run(session.approve(sys.argv[2]))\n"
        )
        approver = await asyncio.create_subprocess_exec(
            sys.executable, "-c", script, str(database), paused.pending[0].id
        )
        assert await approver.wait() == 0
        result = await agent.resume(session)
    assert RAN == ["/tmp/a.txt"] and result.answer == "完成"


async def test_resume_without_a_paused_run_is_a_clear_error(make_agent: AgentFactory) -> None:
    async with make_agent() as agent:
        with pytest.raises(UserError, match="has no run waiting for approval"):
            await agent.resume(Session(MemoryStore(), "idle"))
