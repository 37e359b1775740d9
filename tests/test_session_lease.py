"""One run per session at a time, across Session objects, processes and concurrent resumes,
and every approved call runs at most once (issue 14, finding 3)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from foxagent import Agent, SessionBusyError, UserError
from foxagent.sessions import MemoryStore, Session, SQLiteStore
from foxagent.testing import FakeVLLMServer, Reply, ScriptedModel
from tests.fixtures import lease_tools

ANSWER = "<answer>好</answer>"
FIXTURES = Path(__file__).parent / "fixtures"

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from foxagent import Agent, UserError
    from foxagent.sessions import Session, SQLiteStore
    from lease_tools import delete_file, slow_note

    async def main(action, base_url, db, question):
        store = SQLiteStore(db)
        agent = Agent(tools=[slow_note, delete_file], base_url=base_url, system_prompt=None)
        session = Session(store, "shared", busy_timeout=30)
        try:
            async with agent:
                if action == "run":
                    result = await agent.arun(question, session=session)
                else:
                    result = await agent.resume(session)
            print(json.dumps({"answer": result.answer}))
        except UserError as error:
            print(json.dumps({"user_error": str(error)}))
        finally:
            await store.aclose()

    asyncio.run(main(*sys.argv[1:]))
    """
)


def call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)


def children(
    action: str, server: FakeVLLMServer, db: Path, log: Path, questions: list[str]
) -> list[dict[str, Any]]:
    env = {**os.environ, "PYTHONPATH": str(FIXTURES), "LEASE_LOG": str(log)}
    started = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, action, server.base_url, str(db), question],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for question in questions
    ]
    outputs = []
    for child in started:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
        outputs.append(json.loads(out.strip().splitlines()[-1]))
    return outputs


def exchanges(messages: list[dict[str, Any]]) -> list[list[str]]:
    """The stored history cut at each user message, as (role, text) summaries."""
    cut: list[list[str]] = []
    for message in messages:
        if message["role"] == "user":
            cut.append([])
        text = message.get("content") or json.dumps(message.get("tool_calls"), ensure_ascii=False)
        cut[-1].append(f"{message['role']}:{text}")
    return cut


def test_two_processes_running_one_session_take_turns(tmp_path: Path) -> None:
    db, log = tmp_path / "sessions.db", tmp_path / "executions.log"
    replies = [call("slow_note", text="x"), ANSWER] * 2
    with FakeVLLMServer([Reply(text=text, delay=0.1) for text in replies]) as server:
        outputs = children("run", server, db, log, ["第一", "第二"])
    assert outputs == [{"answer": "好"}, {"answer": "好"}]
    history = asyncio.run(_load(db))
    turns = exchanges(history)
    # Each run's four messages stay together: question, call, result, answer.
    assert sorted(turn[0] for turn in turns) == ["user:第一", "user:第二"]
    for turn in turns:
        assert [entry.split(":", 1)[0] for entry in turn] == [
            "user",
            "assistant",
            "tool",
            "assistant",
        ]
        assert turn[2] == "tool:noted x" and turn[3] == f"assistant:{ANSWER}"
    assert log.read_text(encoding="utf-8").splitlines() == ["note x", "note x"]


async def _load(db: Path) -> list[dict[str, Any]]:
    store = SQLiteStore(db)
    try:
        return await store.load("shared")
    finally:
        await store.aclose()


def test_two_processes_resuming_one_approval_run_the_call_once(tmp_path: Path) -> None:
    db, log = tmp_path / "sessions.db", tmp_path / "executions.log"
    os.environ["LEASE_LOG"] = str(log)
    try:
        with FakeVLLMServer([call("delete_file", path="/tmp/a"), ANSWER, ANSWER]) as server:
            asyncio.run(_pause_and_approve(server, db))
            outputs = children("resume", server, db, log, ["", ""])
    finally:
        del os.environ["LEASE_LOG"]
    assert log.read_text(encoding="utf-8").splitlines() == ["delete /tmp/a"]
    answers = [o for o in outputs if "answer" in o]
    refused = [o for o in outputs if "user_error" in o]
    assert answers == [{"answer": "好"}]
    assert len(refused) == 1 and "has no run waiting for approval" in refused[0]["user_error"]


async def _pause_and_approve(server: FakeVLLMServer, db: Path) -> None:
    store = SQLiteStore(db)
    agent = Agent(tools=[lease_tools.delete_file], base_url=server.base_url, system_prompt=None)
    try:
        async with agent:
            session = Session(store, "shared")
            paused = await agent.arun("刪掉 /tmp/a", session=session)
            assert [call.name for call in paused.pending] == ["delete_file"]
            await session.approve(paused.pending[0].id)
    finally:
        await store.aclose()


async def test_two_session_objects_in_one_process_take_turns() -> None:
    store = MemoryStore()
    model = ScriptedModel([ANSWER, ANSWER])
    agent = Agent(model=model, system_prompt=None)
    order: list[str] = []

    async def ask(question: str) -> None:
        result = await agent.arun(question, session=Session(store, "u"))
        order.append(result.answer)

    await asyncio.gather(ask("一"), ask("二"))
    history = await store.load("u")
    assert [m["role"] for m in history] == ["user", "assistant", "user", "assistant"]
    assert order == ["好", "好"]


async def test_a_busy_session_fails_with_a_typed_error_after_its_wait() -> None:
    store = MemoryStore()
    holder = Session(store, "u")
    async with holder.lease():
        started = time.monotonic()
        with pytest.raises(SessionBusyError, match=r"'u' is in use by another run.*0\.2 s"):
            async with Session(store, "u", busy_timeout=0.2).lease():
                pass
        assert time.monotonic() - started < 5
    async with Session(store, "u", busy_timeout=0.2).lease():  # given back: free again
        assert (await store.get_state("u"))["lease"]["expires"] > time.time()
    assert "lease" not in await store.get_state("u")


async def test_a_crashed_owners_lease_expires() -> None:
    store = MemoryStore()
    await store.set_state("u", {"lease": {"owner": "dead-process", "expires": time.time() + 0.3}})
    started = time.monotonic()
    async with Session(store, "u", busy_timeout=5).lease():
        waited = time.monotonic() - started
    assert 0.2 < waited < 3


async def test_a_long_run_keeps_its_lease() -> None:
    store = MemoryStore()
    async with Session(store, "u", lease_ttl=0.3).lease():
        await asyncio.sleep(1.0)  # three ttls: renewed meanwhile
        with pytest.raises(SessionBusyError):
            async with Session(store, "u", busy_timeout=0.1).lease():
                pass


async def test_claiming_twice_finds_nothing_the_second_time() -> None:
    store = MemoryStore()
    model = ScriptedModel([call("delete_file", path="/x"), ANSWER])
    agent = Agent(tools=[lease_tools.delete_file], model=model, system_prompt=None)
    session = Session(store, "u")
    os.environ["LEASE_LOG"] = os.devnull
    try:
        paused = await agent.arun("刪", session=session)
        with pytest.raises(UserError, match="still wait for a decision"):
            await session.claim_paused()
        await session.approve(paused.pending[0].id)
        assert (await session.claim_paused()).calls == paused.pending
        with pytest.raises(UserError, match="has no run waiting for approval"):
            await session.claim_paused()
    finally:
        del os.environ["LEASE_LOG"]
