"""``SQLiteStore``: sessions in one SQLite file (stdlib ``sqlite3``, WAL mode).

Why these settings:

* WAL journal: readers never block the writer, and several processes can share the file.
* ``synchronous=NORMAL``: in WAL mode a committed transaction survives the process dying at any
  moment (only a power cut can lose the last ones), at a fraction of ``FULL``'s fsyncs.
* ``BEGIN IMMEDIATE`` for every write: the write lock is taken up front, so two processes
  appending to the database never deadlock on a lock upgrade; ``busy_timeout`` makes the
  second one wait instead of failing.
* One connection per store, used from worker threads under a lock: sqlite3 calls block, and
  the event loop must not.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from foxagent._exceptions import SessionStoreError
from foxagent._json_text import utf8_json
from foxagent._messages import Message
from foxagent.sessions._session import SessionStore

__all__ = ["SQLiteStore"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS foxagent_messages (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS foxagent_session_state (
    session_id TEXT PRIMARY KEY,
    state TEXT NOT NULL
);
"""


_UPSERT_STATE = (
    "INSERT INTO foxagent_session_state (session_id, state) VALUES (?, ?) "
    "ON CONFLICT (session_id) DO UPDATE SET state = excluded.state"
)


class SQLiteStore(SessionStore):
    """Sessions in the SQLite file at ``path`` (created if missing).

    Args:
        path: the database file; several processes may open the same one.
        busy_timeout: seconds a write waits for another process's write to finish.
    """

    def __init__(self, path: str | Path, *, busy_timeout: float = 10.0) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        try:
            self._db = sqlite3.connect(
                self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as error:  # not a database, unreadable, a read-only directory...
            raise SessionStoreError(
                f"SQLiteStore cannot open {str(self.path)!r}: {type(error).__name__}: {error}"
            ) from error

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    async def load(self, session_id: str) -> list[Message]:
        rows = await self._run(
            lambda db: db.execute(
                "SELECT message FROM foxagent_messages WHERE session_id = ? ORDER BY seq",
                (session_id,),
            ).fetchall()
        )
        return [json.loads(row[0]) for row in rows]

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        encoded = [_dumps(message) for message in messages]

        def write(db: sqlite3.Connection) -> None:
            (last,) = db.execute(
                "SELECT COALESCE(MAX(seq), -1) FROM foxagent_messages WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            _insert(db, session_id, last + 1, encoded)

        await self._write(write)

    async def replace(self, session_id: str, messages: Sequence[Message]) -> None:
        encoded = [_dumps(message) for message in messages]

        def write(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM foxagent_messages WHERE session_id = ?", (session_id,))
            _insert(db, session_id, 0, encoded)

        await self._write(write)

    async def get_state(self, session_id: str) -> dict[str, Any]:
        row = await self._run(
            lambda db: db.execute(
                "SELECT state FROM foxagent_session_state WHERE session_id = ?", (session_id,)
            ).fetchone()
        )
        return {} if row is None else dict(json.loads(row[0]))

    async def set_state(self, session_id: str, state: dict[str, Any]) -> None:
        text = _dumps(state)
        await self._write(lambda db: db.execute(_UPSERT_STATE, (session_id, text)))

    async def update_state(
        self, session_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        result: dict[str, Any] = {}

        def write(db: sqlite3.Connection) -> None:
            # Inside BEGIN IMMEDIATE: no other process writes between the read and the write.
            row = db.execute(
                "SELECT state FROM foxagent_session_state WHERE session_id = ?", (session_id,)
            ).fetchone()
            result.update(change({} if row is None else dict(json.loads(row[0]))))
            db.execute(_UPSERT_STATE, (session_id, _dumps(result)))

        await self._write(write)
        return result

    async def aclose(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._db.close()

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        def locked() -> _T:
            with self._lock:
                return work(self._db)

        return await asyncio.to_thread(locked)

    async def _write(self, work: Callable[[sqlite3.Connection], object]) -> None:
        def transaction(db: sqlite3.Connection) -> None:
            db.execute("BEGIN IMMEDIATE")
            try:
                work(db)
            except BaseException:
                # SQLite has already rolled back after some errors (SQLITE_FULL, SQLITE_IOERR);
                # a second ROLLBACK would hide the real error behind "no transaction is active".
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

        await self._run(transaction)


def _insert(db: sqlite3.Connection, session_id: str, first_seq: int, encoded: list[str]) -> None:
    db.executemany(
        "INSERT INTO foxagent_messages (session_id, seq, message) VALUES (?, ?, ?)",
        [(session_id, first_seq + i, text) for i, text in enumerate(encoded)],
    )


def _dumps(value: Any) -> str:
    return utf8_json(value, default=str).decode()
