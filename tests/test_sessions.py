"""Sessions: conversations kept across runs in memory or SQLite, over real HTTP to
FakeVLLMServer (its history checks are vLLM's template rules)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from foxagent import ModelHTTPError, UserError
from foxagent.models.vllm import VLLMModel
from foxagent.sessions import MemoryStore, Session, SessionStore, SQLiteStore
from foxagent.sessions._session import compact_history
from foxagent.testing import FakeVLLMServer, Reply
from tests.conftest import AgentFactory, get_weather

ANSWER = "<answer>台北 23°C</answer>"
CALL = json.dumps({"name": "get_weather", "parameters": {"location": "台北"}}, ensure_ascii=False)


StoreFactory = Callable[[Path], SessionStore]
STORES: dict[str, StoreFactory] = {
    "memory": lambda _: MemoryStore(),
    "sqlite": lambda folder: SQLiteStore(folder / "sessions.db"),
}


@pytest.fixture(params=sorted(STORES))
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[SessionStore]:
    made = STORES[request.param](tmp_path)
    yield made
    await made.aclose()


@pytest.fixture
def model_options() -> dict[str, Any]:
    return {"backoff": 0.01, "max_retries": 0}


async def test_store_contract(store: SessionStore) -> None:
    assert await store.load("a") == [] and await store.get_state("a") == {}
    first = [{"role": "user", "content": "台北？"}]
    call = {"role": "assistant", "content": None, "tool_calls": [{"id": "x", "type": "function"}]}
    await store.append("a", first)
    await store.append("a", [call, {"role": "tool", "tool_call_id": "x", "content": "23"}])
    await store.append("b", [{"role": "user", "content": "other"}])
    assert [m["role"] for m in await store.load("a")] == ["user", "assistant", "tool"]
    assert (await store.load("a"))[1] == call
    assert await store.load("b") == [{"role": "user", "content": "other"}]
    await store.replace("a", first)
    assert await store.load("a") == first
    await store.set_state("a", {"pending": {"calls": [1]}})
    await store.set_state("a", {"pending": None})
    assert await store.get_state("a") == {"pending": None} and await store.get_state("b") == {}


async def test_a_conversation_continues_across_runs(
    store: SessionStore, fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(CALL, ANSWER, "<answer>新竹 21°C</answer>")
    async with make_agent() as agent:
        first = await agent.arun("台北幾度？", session=Session(store, "user-1"))
        second = await agent.arun("那新竹呢？", session=Session(store, "user-1"))
    stored = await store.load("user-1")
    assert [m["role"] for m in stored] == [
        "system",
        "user",
        "assistant",
        "tool",
        "assistant",
        "user",
        "assistant",
    ]
    assert stored == second.messages
    assert first.messages == stored[:5]
    # The second request carried the whole first exchange: the history was replayed.
    assert fake_server.requests[-1]["messages"][:5] == json.loads(json.dumps(stored[:5]))
    assert (first.answer, second.answer) == ("台北 23°C", "新竹 21°C")


async def test_history_and_session_together_are_refused(make_agent: AgentFactory) -> None:
    async with make_agent() as agent:
        with pytest.raises(UserError, match="either history or session"):
            await agent.arun("x", history=[], session=Session(MemoryStore(), "s"))


async def test_a_failed_run_keeps_every_committed_turn(
    store: SessionStore, fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    # The call and its result are committed before the server fails on the next request.
    fake_server.add(CALL, Reply(status=400, text="bad request"))
    async with make_agent() as agent:
        with pytest.raises(ModelHTTPError):
            await agent.arun("台北幾度？", session=Session(store, "s"))
        stored = await store.load("s")
        assert [m["role"] for m in stored] == ["system", "user", "assistant", "tool"]
        # The next run continues after the interrupted one, and vLLM accepts the history.
        fake_server.add(ANSWER)
        result = await agent.arun("再試一次", session=Session(store, "s"))
    assert result.answer == "台北 23°C"
    assert [m["role"] for m in await store.load("s")][-2:] == ["user", "assistant"]


async def test_different_sessions_run_concurrently(
    store: SessionStore, make_agent: AgentFactory
) -> None:
    def reply(body: dict[str, Any]) -> str:
        last = body["messages"][-1]
        return CALL if last["role"] == "user" else f"<answer>{len(body['messages'])}</answer>"

    with FakeVLLMServer(reply) as server:
        async with make_agent(server=server) as agent:
            runs = [agent.arun(f"q{i}", session=Session(store, f"s{i}")) for i in range(40)]
            results = await asyncio.gather(*runs)
    assert all(r.answer == "4" for r in results)
    for i in range(40):
        stored = await store.load(f"s{i}")
        assert [m["role"] for m in stored] == ["system", "user", "assistant", "tool", "assistant"]
        assert stored[1]["content"] == f"q{i}"


async def test_runs_of_one_session_take_turns(
    store: SessionStore, fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(*[Reply(text=ANSWER, delay=0.1)] * 3)
    async with make_agent() as agent:
        session = Session(store, "shared")
        await asyncio.gather(*(agent.arun(f"q{i}", session=session) for i in range(3)))
    roles = [m["role"] for m in await store.load("shared")]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant"]
    assert fake_server.peak_in_flight == 1


def test_compaction_drops_the_oldest_whole_exchanges() -> None:
    system = {"role": "system", "content": "s"}
    exchanges = [
        [
            {"role": "user", "content": f"question {i} " + "x" * 100},
            {"role": "assistant", "content": None, "tool_calls": [{"id": f"c{i}"}]},
            {"role": "tool", "tool_call_id": f"c{i}", "content": "y" * 100},
            {"role": "assistant", "content": f"answer {i}"},
        ]
        for i in range(6)
    ]
    history = [system, *(m for e in exchanges for m in e)]
    compacted = compact_history(history, tokens=1200, target=500)
    assert compacted[0] == system
    kept = [m["content"].split()[1] for m in compacted if m["role"] == "user"]
    # Six equal exchanges of ~200 tokens: the oldest go until at most 500 remain.
    assert kept == ["4", "5"]
    assert compact_history(history[:5], tokens=1200, target=10) == history[:5]  # keeps the last


async def test_a_long_session_is_compacted_before_the_next_run(
    store: SessionStore, fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(*[ANSWER] * 8)
    async with make_agent(system_prompt="系統") as agent:
        session = Session(store, "long", compact_at=10_000)
        for i in range(6):
            await agent.arun(f"question {i}: " + "很長的問題" * 400, session=session)
        # ~2,000 estimated tokens per exchange: compaction keeps the newest few.
        await agent.arun("last", session=session)
    stored = await store.load("long")
    questions = [m["content"].split(":")[0] for m in stored if m["role"] == "user"]
    assert stored[0] == {"role": "system", "content": "系統"}
    assert questions[-1] == "last" and "question 0" not in questions
    assert len(questions) < 7
    sent = fake_server.requests[-1]["messages"]
    assert [m["content"] for m in sent] == [m["content"] for m in stored[:-1]]


async def test_token_count_comes_from_the_servers_tokenize_else_an_estimate() -> None:
    from foxagent._templates import template_path

    messages = [{"role": "user", "content": "台北幾度？"}]
    tools = get_weather.openai_schema()
    template = template_path().read_text(encoding="utf-8")
    with FakeVLLMServer(chat_template=template) as server:
        model = VLLMModel(server.base_url)
        counted = await model.count_tokens(messages, [tools])
        await model.aclose()
    with FakeVLLMServer() as server:  # no template: /tokenize answers 404
        model = VLLMModel(server.base_url)
        estimated = await model.count_tokens(messages, [tools])
        await model.aclose()
    # The rendered prompt (template text, tool JSON, headers) is far longer than the raw JSON.
    assert counted > estimated > 0


def test_postgres_store_is_imported_on_first_use() -> None:
    import foxagent.sessions
    from foxagent.sessions._postgres import PostgresStore

    assert foxagent.sessions.PostgresStore is PostgresStore
    with pytest.raises(AttributeError, match="has no attribute 'RedisStore'"):
        foxagent.sessions.RedisStore  # noqa: B018


async def test_state_updates_from_two_sqlite_stores_never_overwrite_each_other(
    tmp_path: Path,
) -> None:
    # Two connections to one file, as two processes would have, each from worker threads.
    first, second = SQLiteStore(tmp_path / "s.db"), SQLiteStore(tmp_path / "s.db")

    def bump(state: dict[str, Any]) -> dict[str, Any]:
        return {"count": state.get("count", 0) + 1}

    await asyncio.gather(*(s.update_state("x", bump) for s in (first, second) for _ in range(40)))
    assert await first.get_state("x") == {"count": 80}
    with pytest.raises(UserError):  # a change that raises leaves the state as it was
        await first.update_state("x", lambda state: (_ for _ in ()).throw(UserError("no")))
    assert await second.get_state("x") == {"count": 80}
    await first.aclose()
    await second.aclose()
