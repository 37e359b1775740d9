"""Conversations that outlive a run, for services (the rules: ``foxagent.sessions._session``).

    from foxagent.sessions import Session, SQLiteStore

    store = SQLiteStore("conversations.db")
    result = await agent.arun("台北幾度？", session=Session(store, "user-42"))

Stores: `MemoryStore`, `SQLiteStore` (stdlib sqlite3, the embedded default) and `PostgresStore`
(``pip install foxagent[postgres]``; imported on first use).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from foxagent.sessions._session import MemoryStore, PendingCall, Session, SessionStore
from foxagent.sessions._sqlite import SQLiteStore

if TYPE_CHECKING:
    from foxagent.sessions._postgres import PostgresStore

__all__ = [
    "MemoryStore",
    "PendingCall",
    "PostgresStore",
    "SQLiteStore",
    "Session",
    "SessionStore",
]


def __getattr__(name: str) -> Any:
    # psycopg is optional: only `PostgresStore` needs it, so only it imports it.
    if name == "PostgresStore":
        from foxagent.sessions._postgres import PostgresStore

        return PostgresStore
    raise AttributeError(f"module 'foxagent.sessions' has no attribute {name!r}")
