"""PostgresStore against a real PostgreSQL server.

The server's conninfo comes from FOXAGENT_TEST_POSTGRES (``.ci/run`` installs PostgreSQL and
sets it from ``.ci/postgres.sh``). When it is unset, ``tests/conftest.py`` starts a private
server for the session (a fresh cluster in a temporary directory, on 127.0.0.1) before the
first test here and stops and deletes it at the end; without PostgreSQL's server programs these
tests are skipped, naming ``make postgres-deps``. The `conninfo` fixture below is the fallback
when neither applies: it runs the script itself and fails with its output.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import traceback
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

try:
    import psycopg
except ImportError as error:  # a collection error that says what to install
    raise ImportError(
        "psycopg is missing: install foxagent's postgres extra (pip install -e '.[postgres]')"
    ) from error

from foxagent import UserError
from foxagent.sessions import Session
from foxagent.sessions._postgres import PostgresStore
from foxagent.testing import FakeVLLMServer
from tests.conftest import AgentFactory

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / ".ci" / "postgres.sh"
ENV = "FOXAGENT_TEST_POSTGRES"

ANSWER = "<answer>台北 23°C</answer>"
CALL = json.dumps({"name": "get_weather", "parameters": {"location": "台北"}}, ensure_ascii=False)


@pytest.fixture(scope="session")
def conninfo() -> str:
    value = os.environ.get(ENV, "").strip()
    if value:
        return value
    try:
        done = subprocess.run(
            ["bash", str(SCRIPT)], capture_output=True, text=True, timeout=900, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{ENV} is unset and {SCRIPT} did not finish in 15 minutes.", pytrace=False)
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        pytest.fail(
            f"{ENV} is unset, and starting a server with {SCRIPT} failed (exit "
            f"{done.returncode}). Run `bash .ci/postgres.sh` as root, or set {ENV} to a "
            f"PostgreSQL conninfo. Its output:\n{done.stderr}{done.stdout}",
            pytrace=False,
        )
    return lines[-1]


@pytest.fixture(scope="session")
def prefix(conninfo: str) -> Iterator[str]:
    """Tables of this test session's own, dropped at its end."""
    name = f"foxagent_test_{uuid.uuid4().hex[:12]}"
    yield name
    drop_tables(conninfo, name)


def drop_tables(conninfo: str, prefix: str) -> None:
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for table in ("messages", "session_state"):
            conn.execute(
                psycopg.sql.SQL("DROP TABLE IF EXISTS {}").format(
                    psycopg.sql.Identifier(f"{prefix}_{table}")
                )
            )


@pytest.fixture
async def store(conninfo: str, prefix: str) -> AsyncIterator[PostgresStore]:
    async with PostgresStore(conninfo, table_prefix=prefix) as opened:
        yield opened


def new_id() -> str:
    """A session of this test's own: the tables are shared by the whole test session."""
    return f"s-{uuid.uuid4().hex}"


def password_of(conninfo: str) -> str:
    password = psycopg.conninfo.conninfo_to_dict(conninfo).get("password")
    assert password, f"the test conninfo must hold a password ({ENV})"
    return str(password)


async def seqs(store: PostgresStore, conninfo: str, session_id: str) -> list[int]:
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cursor = await conn.execute(
            psycopg.sql.SQL("SELECT seq FROM {} WHERE session_id = %s ORDER BY seq").format(
                psycopg.sql.Identifier(f"{store.table_prefix}_messages")
            ),
            (session_id,),
        )
        return [row[0] for row in await cursor.fetchall()]


CONVERSATION: list[dict[str, Any]] = [
    {"role": "system", "content": "你是 FoxBrain，一個有用的助手。"},
    {"role": "user", "content": "台北現在幾度？請用攝氏。🌡️"},
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"location": "台北"}'},
            }
        ],
    },
    {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"location": "台北", "temperature": 23}',
    },
    {
        "role": "assistant",
        "content": None,
        # Arguments as a mapping (as vLLM templates them), nested, keys deliberately unsorted.
        "tool_calls": [
            {
                "id": "call_2",
                "type": "function",
                "function": {
                    "name": "plan",
                    "arguments": {
                        "zeta": [1, 2.5, None, True],
                        "alpha": {"城市": ["台北", "新竹"]},
                    },
                },
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_2", "content": "binary\x00output", "n": 1e16},
    {"role": "assistant", "content": "台北現在 23°C。"},
]


async def test_messages_round_trip_in_order(store: PostgresStore) -> None:
    sid = new_id()
    assert await store.load(sid) == []
    await store.append(sid, CONVERSATION[:2])
    await store.append(sid, CONVERSATION[2:4])
    await store.append(sid, [])  # nothing to add: no error, no change
    await store.append(sid, CONVERSATION[4:])
    loaded = await store.load(sid)
    assert loaded == CONVERSATION
    # Exactly as written: key order, the float 1e16 and the NUL character all survive (jsonb
    # would reorder the keys, make 1e16 an int and refuse "\u0000").
    assert json.dumps(loaded, ensure_ascii=False) == json.dumps(CONVERSATION, ensure_ascii=False)
    assert isinstance(loaded[5]["n"], float)


async def test_50_concurrent_appends_to_one_session_keep_each_batch_whole(
    conninfo: str, prefix: str
) -> None:
    sid = new_id()
    # Fewer connections than appends: the pool queues them, the session lock orders them.
    async with PostgresStore(conninfo, table_prefix=prefix, max_size=8) as store:
        await asyncio.gather(
            *(
                store.append(sid, [{"role": "user", "content": f"{i}a"}, {"content": f"{i}b"}])
                for i in range(50)
            )
        )
        stored = [m["content"] for m in await store.load(sid)]
        assert await seqs(store, conninfo, sid) == list(range(100))
    assert len(stored) == 100
    pairs = [(stored[k], stored[k + 1]) for k in range(0, 100, 2)]
    assert all(a[:-1] == b[:-1] and (a[-1], b[-1]) == ("a", "b") for a, b in pairs)
    assert sorted(int(a[:-1]) for a, _ in pairs) == list(range(50))


CHILD = """
import asyncio, sys
from foxagent.sessions._postgres import PostgresStore

async def main(conninfo, prefix, sid, tag):
    async with PostgresStore(conninfo, table_prefix=prefix) as store:
        print("ready", flush=True)
        sys.stdin.readline()  # start together
        for i in range(40):
            await store.append(sid, [{"content": f"{tag}{i}a"}, {"content": f"{tag}{i}b"}])
    print("done", flush=True)

asyncio.run(main(*sys.argv[1:]))
"""


async def test_two_processes_append_to_one_session_at_once(conninfo: str) -> None:
    # Fresh tables: both processes also race to create them.
    prefix = f"foxagent_test_{uuid.uuid4().hex[:12]}"
    sid = new_id()
    try:
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                CHILD,
                conninfo,
                prefix,
                sid,
                tag,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                cwd=REPO,
            )
            for tag in ("A", "B")
        ]
        for child in children:
            assert child.stdout is not None
            assert await asyncio.wait_for(child.stdout.readline(), 60) == b"ready\n"
        for child in children:
            assert child.stdin is not None
            child.stdin.write(b"go\n")
            await child.stdin.drain()
        outputs = [await asyncio.wait_for(child.communicate(), 120) for child in children]
        assert [child.returncode for child in children] == [0, 0], outputs
        async with PostgresStore(conninfo, table_prefix=prefix) as store:
            stored = [m["content"] for m in await store.load(sid)]
            assert await seqs(store, conninfo, sid) == list(range(160))
    finally:
        drop_tables(conninfo, prefix)
    pairs = [(stored[k], stored[k + 1]) for k in range(0, 160, 2)]
    assert all(a[:-1] == b[:-1] and (a[-1], b[-1]) == ("a", "b") for a, b in pairs)
    for tag in "AB":  # each process's appends kept its order
        mine = [int(a[1:-1]) for a, _ in pairs if a[0] == tag]
        assert mine == list(range(40))


CRASH = """
import asyncio, sys
from foxagent.sessions._postgres import PostgresStore

async def main(conninfo, prefix):
    store = PostgresStore(conninfo, table_prefix=prefix)
    await store.open()
    for _ in range(20):  # the pool grows to serve these
        asyncio.create_task(store.load("s"))
    await asyncio.sleep(0.002)
    raise SystemExit(7)  # a crash while connections are being opened; the store stays open

asyncio.run(main(*sys.argv[1:]))
"""


async def test_a_program_that_crashes_with_the_store_open_still_exits(
    conninfo: str, prefix: str
) -> None:
    # Without the store's closer task, psycopg_pool's worker swallows asyncio.run's
    # cancellation and the process hangs forever (10 times out of 10 here).
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CRASH, conninfo, prefix, cwd=REPO, stderr=asyncio.subprocess.PIPE
    )
    try:
        _, stderr = await asyncio.wait_for(child.communicate(), 60)
    except asyncio.TimeoutError:
        child.kill()
        await child.wait()
        pytest.fail("the crashed program hung at exit instead of ending", pytrace=False)
    assert child.returncode == 7, stderr.decode(errors="replace")


async def test_state_get_set_and_overwrite(store: PostgresStore) -> None:
    sid, other = new_id(), new_id()
    assert await store.get_state(sid) == {}
    pending = {"pending": {"calls": [{"name": "刪除檔案", "arguments": {"path": "/tmp/x"}}]}}
    await store.set_state(sid, pending)
    assert await store.get_state(sid) == pending
    await store.set_state(sid, {"pending": None})  # replaced whole, not merged
    assert await store.get_state(sid) == {"pending": None}
    assert await store.get_state(other) == {}
    assert await store.load(sid) == []  # state and messages are apart


async def test_replace_makes_the_whole_history(store: PostgresStore, conninfo: str) -> None:
    sid = new_id()
    await store.append(sid, CONVERSATION)
    kept = [CONVERSATION[0], CONVERSATION[-1]]
    await store.replace(sid, kept)
    assert await store.load(sid) == kept
    await store.append(sid, [{"role": "user", "content": "再一個問題"}])
    assert [m["content"] for m in await store.load(sid)][-1] == "再一個問題"
    assert await seqs(store, conninfo, sid) == [0, 1, 2]
    await store.replace(sid, [])
    assert await store.load(sid) == []


async def test_sessions_are_kept_apart(store: PostgresStore) -> None:
    a, b = new_id(), new_id()
    await store.append(a, [{"content": "a1"}])
    await store.append(b, [{"content": "b1"}])
    await store.append(a, [{"content": "a2"}])
    await store.set_state(a, {"x": 1})
    await store.replace(b, [{"content": "b-only"}])
    assert await store.load(a) == [{"content": "a1"}, {"content": "a2"}]
    assert await store.load(b) == [{"content": "b-only"}]
    assert await store.get_state(b) == {}


async def test_the_tables_it_creates(store: PostgresStore, conninfo: str) -> None:
    async with await psycopg.AsyncConnection.connect(conninfo) as conn:
        cursor = await conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_name IN (%s, %s) ORDER BY table_name, ordinal_position",
            (f"{store.table_prefix}_messages", f"{store.table_prefix}_session_state"),
        )
        columns = [
            (table.removeprefix(store.table_prefix), column, kind)
            for table, column, kind in await cursor.fetchall()
        ]
        cursor = await conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass",
            (f"{store.table_prefix}_messages",),
        )
        constraints = [row[0] for row in await cursor.fetchall()]
    assert columns == [
        ("_messages", "session_id", "text"),
        ("_messages", "seq", "integer"),
        ("_messages", "message", "json"),
        ("_session_state", "session_id", "text"),
        ("_session_state", "state", "json"),
    ]
    assert constraints == ["PRIMARY KEY (session_id, seq)"]


async def test_table_prefixes_keep_stores_apart(conninfo: str, store: PostgresStore) -> None:
    sid = new_id()
    other_prefix = f"foxagent_test_{uuid.uuid4().hex[:12]}"
    try:
        async with PostgresStore(conninfo, table_prefix=other_prefix) as other:
            await other.append(sid, [{"content": "other"}])
            assert await store.load(sid) == []
            assert await other.load(sid) == [{"content": "other"}]
    finally:
        drop_tables(conninfo, other_prefix)


async def test_the_password_is_never_shown(conninfo: str, prefix: str) -> None:
    password = password_of(conninfo)
    store = PostgresStore(conninfo, table_prefix=prefix)
    assert password not in repr(store) and password not in str(store)
    assert "password=***" in repr(store)
    await store.aclose()

    wrong = "wrong-密碼-" + uuid.uuid4().hex
    for bad in (
        psycopg.conninfo.make_conninfo(conninfo, password=wrong),  # key=value form
        conninfo.replace(password, wrong),  # URL form, as given
    ):
        assert wrong in bad
        store = PostgresStore(bad, table_prefix=prefix)
        assert wrong not in repr(store)
        with pytest.raises(psycopg.OperationalError) as caught:
            await store.load("s")  # opens on first use
        printed = "".join(traceback.format_exception(caught.value))
        assert "password authentication failed" in printed
        assert wrong not in printed and wrong not in repr(caught.value)
        await store.aclose()


async def test_an_error_that_quotes_the_password_is_masked(conninfo: str, prefix: str) -> None:
    # libpq does not quote passwords today; the store masks them should any error ever do.
    password = password_of(conninfo)
    async with PostgresStore(conninfo, table_prefix=prefix) as store:
        with pytest.raises(psycopg.OperationalError) as caught:
            async with store._connection():
                raise psycopg.OperationalError(f"could not use {conninfo} (password {password})")
    printed = "".join(traceback.format_exception(caught.value))
    assert password not in printed and "password ***" in printed


def test_a_malformed_conninfo_is_refused_without_quoting_it() -> None:
    # A password with a space, unquoted. Made here, so the printed source lines cannot hold it.
    secret = f"{uuid.uuid4().hex} {uuid.uuid4().hex}"
    malformed = f"host=localhost password={secret}"
    with pytest.raises(psycopg.ProgrammingError, match=secret.split()[1]):
        psycopg.conninfo.conninfo_to_dict(malformed)  # libpq quotes the text after the space
    with pytest.raises(UserError, match="not a valid libpq connection string") as caught:
        PostgresStore(malformed)
    printed = "".join(traceback.format_exception(caught.value))
    assert all(part not in printed for part in secret.split())
    assert caught.value.__suppress_context__  # libpq's message is not printed as the context


@pytest.mark.parametrize(
    "bad", ["", "Foxagent", "1st", "fox-agent", "x; DROP TABLE users", "a" * 50, "ünï"]
)
def test_a_table_prefix_must_be_a_plain_identifier(bad: str) -> None:
    with pytest.raises(UserError, match="table_prefix"):
        PostgresStore("host=localhost", table_prefix=bad)


async def test_opens_on_first_use_and_refuses_use_after_close(conninfo: str, prefix: str) -> None:
    store = PostgresStore(conninfo, table_prefix=prefix)  # no open(): opens on first use
    sid = new_id()
    try:
        # Concurrent first uses share one pool.
        await asyncio.gather(*(store.append(sid, [{"content": str(i)}]) for i in range(5)))
        assert len(await store.load(sid)) == 5
    finally:
        await store.aclose()
    await store.aclose()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        await store.load(sid)


async def test_nan_is_refused_before_writing(store: PostgresStore) -> None:
    sid = new_id()
    with pytest.raises(ValueError, match="JSON"):
        await store.append(sid, [{"content": "ok"}, {"score": float("nan")}])
    assert await store.load(sid) == []


async def test_an_agent_conversation_continues_across_runs(
    store: PostgresStore, fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    sid = new_id()
    fake_server.add(CALL, ANSWER, "<answer>新竹 21°C</answer>")
    async with make_agent(model_options={"max_retries": 0}) as agent:
        first = await agent.arun("台北幾度？", session=Session(store, sid))
        second = await agent.arun("那新竹呢？", session=Session(store, sid))
    stored = await store.load(sid)
    roles = [m["role"] for m in stored]
    assert roles == ["system", "user", "assistant", "tool", "assistant", "user", "assistant"]
    assert stored == second.messages and first.messages == stored[:5]
    # The second request replayed the whole first exchange from PostgreSQL.
    sent = fake_server.requests[-1]["messages"]
    assert sent[:5] == json.loads(json.dumps(stored[:5]))
    assert sent[5] == {"role": "user", "content": "那新竹呢？"}
    assert (first.answer, second.answer) == ("台北 23°C", "新竹 21°C")


async def test_state_updates_from_two_pools_never_overwrite_each_other(
    store: PostgresStore, conninfo: str, prefix: str
) -> None:
    # Two stores are two pools, as two machines would have: 2 x 40 read-change-write cycles on
    # one session's state must all count.
    session_id = new_id()
    async with PostgresStore(conninfo, table_prefix=prefix) as other:

        def bump(state: dict[str, Any]) -> dict[str, Any]:
            return {"count": state.get("count", 0) + 1}

        await asyncio.gather(
            *(s.update_state(session_id, bump) for s in (store, other) for _ in range(40))
        )
    assert await store.get_state(session_id) == {"count": 80}
