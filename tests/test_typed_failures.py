"""Failures from outside foxagent's own code become foxagent errors that carry the transcript,
and nothing committed is lost (issue 14, finding 5): an approver that raises, a session store
that fails (full disk, a broken store), lone surrogates in model or tool text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from foxagent import Agent, ApproverError, SessionStoreError, tool
from foxagent.events import JsonlTrace
from foxagent.sessions import MemoryStore, Session, SQLiteStore
from foxagent.testing import ScriptedModel

ANSWER = "<answer>好</answer>"
LONE = "\ud800"  # a lone surrogate: not encodable as UTF-8


def call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)


@tool(requires_approval=True)
def wipe(path: str) -> str:
    """Wipe a path.

    Args:
        path: What to wipe.
    """
    return f"wiped {path}"


@tool
def echo(text: str) -> str:
    """Say it back.

    Args:
        text: What to say.
    """
    return text + LONE


async def test_an_approver_that_raises_stops_the_run_with_the_transcript() -> None:
    def approver(pending: Any) -> bool:
        raise ConnectionError("approval service down")

    model = ScriptedModel([call("wipe", path="/srv"), ANSWER])
    agent = Agent(tools=[wipe], model=model, approver=approver, system_prompt=None)
    with pytest.raises(
        ApproverError, match="raised ConnectionError: approval service down"
    ) as caught:
        await agent.arun("清掉 /srv")
    assert caught.value.messages[0] == {"role": "user", "content": "清掉 /srv"}
    assert caught.value.messages[-1]["role"] == "user"  # nothing ran, nothing invented


async def test_a_full_disk_is_a_typed_error_and_the_committed_turns_stay(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    session = Session(store, "u")
    agent = Agent(tools=[echo], model=ScriptedModel([ANSWER]), system_prompt=None)
    await agent.arun("第一", session=session)
    pages = store._db.execute("PRAGMA page_count").fetchone()[0]
    store._db.execute(f"PRAGMA max_page_count = {pages}")  # the disk is full from now on
    big = "滿" * 200_000
    agent = Agent(tools=[echo], model=ScriptedModel([ANSWER]), system_prompt=None)
    with pytest.raises(SessionStoreError, match=r"SQLiteStore could not .*full") as caught:
        await agent.arun(big, session=session)
    assert caught.value.messages[-1] == {"role": "user", "content": big}  # the run's own view
    store._db.execute("PRAGMA max_page_count = 1073741823")
    stored = await session.messages()
    assert [m["content"] for m in stored] == ["第一", ANSWER]  # no dangling half of the run
    await store.aclose()


class BrokenStore(MemoryStore):
    async def append(self, session_id: str, messages: Sequence[dict[str, Any]]) -> None:
        if any(m.get("role") == "tool" for m in messages):
            raise OSError(30, "Read-only file system")
        await super().append(session_id, messages)


async def test_a_store_failing_mid_run_names_the_store_and_keeps_the_transcript() -> None:
    store = BrokenStore()
    model = ScriptedModel([call("echo", text="hi"), ANSWER])
    agent = Agent(tools=[echo], model=model, system_prompt=None)
    with pytest.raises(SessionStoreError, match="BrokenStore could not store the run's") as caught:
        await agent.arun("echo", session=Session(store, "u"))
    assert "Read-only file system" in str(caught.value)
    assert [m["role"] for m in caught.value.messages] == ["user", "assistant", "tool"]
    assert [m["role"] for m in await store.load("u")] == ["user"]  # committed before: kept


async def test_lone_surrogates_are_stored_traced_and_loaded_back(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.db")
    session = Session(store, "u")
    model = ScriptedModel([call("echo", text="嗨"), f"<answer>好{LONE}</answer>"])
    with JsonlTrace(tmp_path / "t.jsonl") as trace:
        result = await Agent(tools=[echo], model=model, system_prompt=None).arun(
            f"問{LONE}", session=session, on_event=trace
        )
    assert result.answer == f"好{LONE}"
    stored = await session.messages()
    assert stored[0]["content"] == f"問{LONE}" and stored[2]["content"] == f"嗨{LONE}"
    assert "\\ud800" in (tmp_path / "t.jsonl").read_text(encoding="utf-8")
    await store.aclose()


async def test_lone_surrogates_reach_a_vllm_server_as_json_escapes() -> None:
    from foxagent.testing import FakeVLLMServer

    with FakeVLLMServer([call("echo", text="嗨"), ANSWER]) as server:
        async with Agent(tools=[echo], base_url=server.base_url, system_prompt=None) as agent:
            result = await agent.arun(f"問{LONE}")
        sent = server.requests[1]["messages"]
    assert result.answer == "好"
    assert sent[0]["content"] == f"問{LONE}" and sent[-1]["content"] == f"嗨{LONE}"


def test_a_file_that_is_not_a_database_is_a_typed_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not SQLite " * 100)
    with pytest.raises(
        SessionStoreError, match=r"SQLiteStore cannot open .*notes\.db.*not a database"
    ):
        SQLiteStore(path)
