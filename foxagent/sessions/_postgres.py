"""``PostgresStore``: sessions in PostgreSQL, shared by every process and machine of a service.

    async with PostgresStore("postgresql://app:secret@db/app") as store:
        result = await agent.arun("台北幾度？", session=Session(store, "user-42"))

Why this design:

* One ``psycopg_pool.AsyncConnectionPool`` per store: a service's many concurrent runs share a
  few connections per process instead of opening one each, and a connection broken by a server
  restart or a failover is noticed (``check``) and replaced before it is handed out.
* Every write is one transaction. ``append`` and ``replace`` first take a transaction-scoped
  advisory lock on the session (``pg_advisory_xact_lock``), then read ``MAX(seq)`` and insert
  after it: writers of one session take turns, whichever process or machine they run on, so
  seq numbers never collide, while other sessions are not held up. This relies on READ
  COMMITTED, where each statement sees every transaction committed before it started, so the
  ``MAX(seq)`` read after the lock includes the previous holder's rows; the pool pins that
  level, since a server or role default of REPEATABLE READ would take the snapshot before the
  lock is granted.
* ``json`` columns, not ``jsonb``: ``json`` keeps the text as written, so a message comes back
  exactly as it was stored (like ``SQLiteStore``): ``jsonb`` would reorder keys, turn ``1e16``
  into an integer and refuse ``"\\u0000"``, which a tool's output can contain.
* ``open()`` creates the tables only when they are missing, and under an advisory lock: two
  processes starting at once would otherwise race on ``CREATE TABLE IF NOT EXISTS`` (it can
  fail with a duplicate-key error), and a role without the CREATE privilege (the default on
  the ``public`` schema since PostgreSQL 15) can still use tables that an administrator made.
* The conninfo may hold a password: ``repr()`` masks it, and an error raised through the store
  whose text contains it is raised again with the password replaced by ``***``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from types import TracebackType
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from foxagent._exceptions import UserError
from foxagent._json_text import utf8_json
from foxagent._messages import Message
from foxagent.sessions._session import SessionStore

__all__ = ["PostgresStore"]

_Connection = psycopg.AsyncConnection[TupleRow]

# Lowercase, so the tables can be named unquoted in psql; at most 49 characters, so
# "<prefix>_session_state" fits PostgreSQL's 63-byte identifiers instead of being cut.
_PREFIX = re.compile(r"[a-z_][a-z0-9_]{0,48}")
# Connection parameters that are secrets (``sslpassword`` unlocks the client's key).
_SECRET_KEYS = ("password", "sslpassword")
_MASK = "***"


class PostgresStore(SessionStore):
    """Sessions in a PostgreSQL database, for services on one or several machines.

    Args:
        conninfo: a libpq connection string, as a URL (``postgresql://user:password@host/db``)
            or ``key=value`` pairs. The password never appears in ``repr()`` or in errors.
        min_size: connections the pool keeps open.
        max_size: connections the pool opens at most; more concurrent calls wait for one.
        table_prefix: the tables are ``<prefix>_messages`` and ``<prefix>_session_state``
            (lowercase letters, digits and ``_``); several apps can share a database.

    ``async with PostgresStore(...) as store:`` opens and closes it; otherwise it opens on first
    use (or ``await store.open()``) and ``await store.aclose()`` releases the connections. A
    closed store cannot be opened again. The tables are created when missing.

    Messages and states are stored as JSON text: values that are not JSON become strings (like
    `SQLiteStore`), and NaN or infinite floats raise ``ValueError`` (PostgreSQL's ``json``
    refuses them).
    """

    def __init__(
        self,
        conninfo: str,
        *,
        min_size: int = 1,
        max_size: int = 10,
        table_prefix: str = "foxagent",
    ) -> None:
        if not _PREFIX.fullmatch(table_prefix):
            raise UserError(
                f"table_prefix must be 1 to 49 lowercase letters, digits or '_' and not start "
                f"with a digit, got {table_prefix!r}"
            )
        if min_size < 0 or max_size < max(1, min_size):
            raise UserError(
                f"need 0 <= min_size <= max_size and max_size >= 1, got "
                f"min_size={min_size}, max_size={max_size}"
            )
        try:
            params = conninfo_to_dict(conninfo)
        except psycopg.Error:
            # libpq's parse errors quote the text around the mistake, which may be the password.
            raise UserError(
                "PostgresStore: the conninfo is not a valid libpq connection string "
                "(not shown: it may hold a password)"
            ) from None
        self.table_prefix = table_prefix
        self.min_size = min_size
        self.max_size = max_size
        self._conninfo = conninfo
        secrets = [str(params[key]) for key in _SECRET_KEYS if params.get(key)]
        # The longest first, so the whole conninfo is masked before a password inside it; URL
        # conninfos hold the password percent-encoded.
        self._secrets = sorted(
            {text for s in [conninfo, *secrets] for text in (s, quote(s, safe="")) if text},
            key=len,
            reverse=True,
        )
        self._shown = make_conninfo(
            "", **{key: _MASK if key in _SECRET_KEYS else value for key, value in params.items()}
        )
        self._messages = sql.Identifier(f"{table_prefix}_messages")
        self._states = sql.Identifier(f"{table_prefix}_session_state")
        self._pool: AsyncConnectionPool[_Connection] | None = None
        self._guard: asyncio.Task[None] | None = None
        self._closed = False
        self._opening = asyncio.Lock()  # concurrent first uses open one pool

    def __repr__(self) -> str:
        return f"PostgresStore({self._shown!r}, table_prefix={self.table_prefix!r})"

    async def __aenter__(self) -> PostgresStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def open(self) -> None:
        """Create the tables if missing and open the pool (again: nothing to do)."""
        await self._opened()

    async def aclose(self) -> None:
        """Close the pool's connections; the store cannot be used afterwards."""
        self._closed = True
        pool, self._pool = self._pool, None
        guard, self._guard = self._guard, None
        if pool is not None:
            await pool.close()
        if guard is not None:
            guard.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await guard

    async def load(self, session_id: str) -> list[Message]:
        query = sql.SQL("SELECT message FROM {} WHERE session_id = %s ORDER BY seq").format(
            self._messages
        )
        async with self._connection() as conn:
            cursor = await conn.execute(query, (session_id,))
            rows = await cursor.fetchall()
        return [row[0] for row in rows]

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        encoded = [_dumps(message) for message in messages]  # bad values fail before any I/O
        if not encoded:
            return
        last_seq = sql.SQL("SELECT COALESCE(MAX(seq), -1) FROM {} WHERE session_id = %s").format(
            self._messages
        )
        async with self._connection() as conn, conn.transaction():
            await self._lock_session(conn, session_id)
            cursor = await conn.execute(last_seq, (session_id,))
            row = await cursor.fetchone()
            assert row is not None  # an aggregate always returns one row
            await self._insert(conn, session_id, int(row[0]) + 1, encoded)

    async def replace(self, session_id: str, messages: Sequence[Message]) -> None:
        encoded = [_dumps(message) for message in messages]
        delete = sql.SQL("DELETE FROM {} WHERE session_id = %s").format(self._messages)
        async with self._connection() as conn, conn.transaction():
            # The same lock as append: an append cannot slip between the delete and the insert.
            await self._lock_session(conn, session_id)
            await conn.execute(delete, (session_id,))
            await self._insert(conn, session_id, 0, encoded)

    async def get_state(self, session_id: str) -> dict[str, Any]:
        query = sql.SQL("SELECT state FROM {} WHERE session_id = %s").format(self._states)
        async with self._connection() as conn:
            cursor = await conn.execute(query, (session_id,))
            row = await cursor.fetchone()
        return {} if row is None else dict(row[0])

    async def set_state(self, session_id: str, state: dict[str, Any]) -> None:
        text = _dumps(state)
        upsert = sql.SQL(
            "INSERT INTO {} (session_id, state) VALUES (%s, %s::json) "
            "ON CONFLICT (session_id) DO UPDATE SET state = excluded.state"
        ).format(self._states)
        async with self._connection() as conn:
            await conn.execute(upsert, (session_id, text))  # one statement: atomic alone

    async def update_state(
        self, session_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        query = sql.SQL("SELECT state FROM {} WHERE session_id = %s").format(self._states)
        upsert = sql.SQL(
            "INSERT INTO {} (session_id, state) VALUES (%s, %s::json) "
            "ON CONFLICT (session_id) DO UPDATE SET state = excluded.state"
        ).format(self._states)
        async with self._connection() as conn, conn.transaction():
            # The session's lock (the one appends take) also orders read-change-write cycles.
            await self._lock_session(conn, session_id)
            cursor = await conn.execute(query, (session_id,))
            row = await cursor.fetchone()
            state = change({} if row is None else dict(row[0]))
            await conn.execute(upsert, (session_id, _dumps(state)))
        return state

    async def _opened(self) -> AsyncConnectionPool[_Connection]:
        async with self._opening:
            if self._closed:
                raise RuntimeError(f"{self!r} is closed")
            if self._pool is not None:
                return self._pool
            with self._redacting():
                await self._create_tables()
                pool: AsyncConnectionPool[_Connection] = AsyncConnectionPool(
                    self._conninfo,
                    min_size=self.min_size,
                    max_size=self.max_size,
                    open=False,
                    kwargs={"autocommit": True},  # writes use explicit transaction() blocks
                    configure=_configure,
                    check=AsyncConnectionPool.check_connection,
                    name=f"foxagent-{self.table_prefix}",
                )
                try:
                    await pool.open(wait=True)
                except BaseException:
                    await pool.close()
                    raise
            self._pool = pool
            self._guard = asyncio.create_task(
                _close_when_cancelled(pool), name=f"{pool.name}-closer"
            )
            return pool

    async def _create_tables(self) -> None:
        # A connection of its own, outside the pool: a wrong password or host fails here at
        # once with libpq's message, where the pool would retry until its timeout.
        messages, states = (f"{self.table_prefix}_{name}" for name in ("messages", "session_state"))
        schema = [
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (session_id TEXT NOT NULL, seq INTEGER NOT NULL, "
                "message JSON NOT NULL, PRIMARY KEY (session_id, seq))"
            ).format(self._messages),
            sql.SQL(
                "CREATE TABLE IF NOT EXISTS {} (session_id TEXT PRIMARY KEY, state JSON NOT NULL)"
            ).format(self._states),
        ]
        async with await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True) as conn:
            # The prefix is lowercase, so the unquoted names resolve like the quoted ones.
            cursor = await conn.execute(
                "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                (messages, states),
            )
            row = await cursor.fetchone()
            if row is not None and row[0]:
                return
            async with conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._key("\x01schema"),))
                for statement in schema:
                    await conn.execute(statement)

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[_Connection]:
        pool = self._pool if self._pool is not None else await self._opened()
        with self._redacting():
            async with pool.connection() as conn:
                yield conn

    async def _lock_session(self, conn: _Connection, session_id: str) -> None:
        # Released by the transaction's end, commit or rollback: a crash never leaves it held.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (self._key("\x00" + session_id),))

    async def _insert(
        self, conn: _Connection, session_id: str, first_seq: int, encoded: list[str]
    ) -> None:
        insert = sql.SQL(
            "INSERT INTO {} (session_id, seq, message) VALUES (%s, %s, %s::json)"
        ).format(self._messages)
        async with conn.cursor() as cursor:
            # psycopg sends the rows in one pipeline: one round trip, not one per message.
            await cursor.executemany(
                insert, [(session_id, first_seq + i, text) for i, text in enumerate(encoded)]
            )

    def _key(self, name: str) -> int:
        """A 64-bit advisory lock key for ``name`` in this store's tables.

        Hashed in Python, not with PostgreSQL's undocumented ``hashtext``; 64 bits make it
        unlikely that two sessions, or another application's locks, ever share a key (and a
        shared key would only make their writes take turns).
        """
        digest = hashlib.blake2b(
            f"{self.table_prefix}{name}".encode("utf-8", "surrogatepass"), digest_size=8
        ).digest()
        return int.from_bytes(digest, "big", signed=True)

    @contextmanager
    def _redacting(self) -> Iterator[None]:
        """Raise errors whose text holds the password again, with it masked."""
        try:
            yield
        except Exception as error:
            text = str(error)
            clean = self._redact(text)
            if clean == text:
                raise
            try:
                masked = type(error)(clean)
            except Exception:  # an exception class whose constructor takes other arguments
                masked = RuntimeError(f"{type(error).__name__}: {clean}")
            # `from None`: the original, with the password, must not be printed as the cause.
            raise masked from None

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, _MASK)
        return text


async def _close_when_cancelled(pool: AsyncConnectionPool[_Connection]) -> None:
    """Close ``pool`` when the event loop shuts down with the store still open.

    ``asyncio.run`` cancels every task when its main coroutine ends, e.g. on a crash. A pool
    worker that is opening a connection at that moment swallows its cancellation
    (psycopg_pool 3.3.3 catches CancelledError in its workers) and waits for its next job
    forever, so the program hangs instead of exiting. This task is cancelled at the same
    time, and closing the pool hands that worker its stop signal.
    """
    try:
        await asyncio.Event().wait()  # until cancelled
    finally:
        await pool.close()


async def _configure(conn: _Connection) -> None:
    # See the module's docstring: append's MAX(seq) must see the previous lock holder's rows.
    await conn.set_isolation_level(psycopg.IsolationLevel.READ_COMMITTED)


def _dumps(value: Any) -> str:
    # Chinese text is stored as itself (readable in psql, a third the size); NaN is refused.
    return utf8_json(value, default=str, allow_nan=False).decode()
