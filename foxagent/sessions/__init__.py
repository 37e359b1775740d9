"""Conversations that outlive a run, for services (the rules: ``foxagent.sessions._session``).

    from foxagent.sessions import Session, SQLiteStore

    store = SQLiteStore("conversations.db")
    result = await agent.arun("台北幾度？", session=Session(store, "user-42"))

Stores: `MemoryStore`, `SQLiteStore` (stdlib sqlite3, the embedded default) and `PostgresStore`
(``pip install foxagent[postgres]``; psycopg is imported only when it is used). A session
keeps a run paused for approval as a `PausedRun` of `PendingCall`s and their `Decision`s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from foxagent._facade import lazy_exports

if TYPE_CHECKING:
    from foxagent._approval import (
        Decision as Decision,
        PausedRun as PausedRun,
        PendingCall as PendingCall,
    )
    from foxagent.sessions._postgres import PostgresStore as PostgresStore
    from foxagent.sessions._session import (
        MemoryStore as MemoryStore,
        Session as Session,
        SessionStore as SessionStore,
    )
    from foxagent.sessions._sqlite import SQLiteStore as SQLiteStore

__all__ = [
    "Decision",
    "MemoryStore",
    "PausedRun",
    "PendingCall",
    "PostgresStore",
    "SQLiteStore",
    "Session",
    "SessionStore",
]

_EXPORTS = {
    "Decision": "foxagent._approval",
    "MemoryStore": "foxagent.sessions._session",
    "PausedRun": "foxagent._approval",
    "PendingCall": "foxagent._approval",
    "PostgresStore": "foxagent.sessions._postgres",
    "SQLiteStore": "foxagent.sessions._sqlite",
    "Session": "foxagent.sessions._session",
    "SessionStore": "foxagent.sessions._session",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
