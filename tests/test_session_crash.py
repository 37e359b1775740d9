"""A process killed in the middle of SQLite-backed runs loses no committed turn.

A child process runs 30 conversations at once against FakeVLLMServer (in this process) and is
killed with SIGKILL while they are mid-way. Every message a run sent to the model had been
committed before the request went out, so each session's stored history must begin with the
messages of the last request the server saw for it; and what is stored must be a valid Llama 3.1
history (every call followed by its result) in a database that passes SQLite's integrity check.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

from foxagent.testing import FakeVLLMServer, Reply

SESSIONS = 30
CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from foxagent import Agent, tool
    from foxagent.models.vllm import VLLMModel
    from foxagent.sessions import Session, SQLiteStore

    @tool
    def lookup(key: str) -> str:
        '''Look something up.

        Args:
            key: What to look up.
        '''
        return "value of " + key

    async def main(base_url, database):
        store = SQLiteStore(database)
        agent = Agent(tools=[lookup], model=VLLMModel(base_url), max_steps=20)
        async def converse(n):
            session = Session(store, f"s{n}")
            for turn in range(100):
                await agent.arun(f"question {turn} of {n}", session=session)
        await asyncio.gather(*(converse(n) for n in range(int(sys.argv[3]))))

    asyncio.run(main(sys.argv[1], sys.argv[2]))
    """
)


def _reply(body: dict[str, Any]) -> Reply:
    # Three lookups per question, then an answer; every reply takes a little while, so the
    # child is always somewhere in the middle of a run.
    calls = sum(1 for m in body["messages"] if m["role"] == "tool")
    questions = sum(1 for m in body["messages"] if m["role"] == "user")
    if calls < questions * 3:
        text = json.dumps({"name": "lookup", "parameters": {"key": f"k{calls}"}})
    else:
        text = f"<answer>{questions}</answer>"
    return Reply(text=text, delay=0.02)


def _session_of(messages: list[dict[str, Any]]) -> str:
    first_user = next(m["content"] for m in messages if m["role"] == "user")
    return "s" + first_user.rsplit(" ", 1)[1]


def _stored(database: Path) -> dict[str, list[dict[str, Any]]]:
    with sqlite3.connect(database) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        rows = db.execute(
            "SELECT session_id, message FROM foxagent_messages ORDER BY session_id, seq"
        ).fetchall()
    stored: dict[str, list[dict[str, Any]]] = {}
    for session_id, message in rows:
        stored.setdefault(session_id, []).append(json.loads(message))
    return stored


def _valid_llama_history(messages: list[dict[str, Any]]) -> bool:
    for i, message in enumerate(messages):
        if message["role"] == "assistant" and message.get("tool_calls"):
            after = messages[i + 1] if i + 1 < len(messages) else None
            call_id = message["tool_calls"][0]["id"]
            if after is None or after["role"] != "tool" or after["tool_call_id"] != call_id:
                return False
    return messages[0]["role"] == "system"


def test_killing_the_process_loses_no_committed_turn(tmp_path: Path) -> None:
    database = tmp_path / "sessions.db"
    script = tmp_path / "child.py"
    script.write_text(CHILD, encoding="utf-8")
    with FakeVLLMServer(_reply) as server:
        command = [sys.executable, str(script), server.base_url, str(database), str(SESSIONS)]
        child = subprocess.Popen(command)
        try:
            deadline = time.monotonic() + 60
            while len(server.requests) < 400 and time.monotonic() < deadline:
                assert child.poll() is None, "the child died on its own"
                time.sleep(0.05)
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        finally:
            if child.poll() is None:
                child.kill()
        sent = list(server.requests)
    assert len(sent) >= 400
    last_sent: dict[str, list[dict[str, Any]]] = {}
    for body in sent:
        last_sent[_session_of(body["messages"])] = body["messages"]
    stored = _stored(database)
    assert set(last_sent) <= set(stored) and len(last_sent) == SESSIONS
    for session_id, messages in last_sent.items():
        history = stored[session_id]
        assert history[: len(messages)] == messages, session_id
        assert len(history) - len(messages) <= 3  # at most the step in progress went further
        assert _valid_llama_history(history), session_id
