"""Conversations that outlive a run, for services (see ``foxagent._session`` for the rules).

    from foxagent.sessions import Session, SQLiteStore

    store = SQLiteStore("conversations.db")
    result = await agent.arun("台北幾度？", session=Session(store, "user-42"))

Stores: `MemoryStore` and `SQLiteStore` (stdlib sqlite3, the embedded default).
"""

from __future__ import annotations

from foxagent._session import MemoryStore, PendingCall, Session, SessionStore
from foxagent._sqlite_store import SQLiteStore

__all__ = ["MemoryStore", "PendingCall", "SQLiteStore", "Session", "SessionStore"]
