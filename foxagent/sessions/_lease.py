"""One run per session at a time, across processes and machines: a lease in the session state.

``Session.lock`` orders the runs one ``Session`` object makes. A service, though, builds a new
``Session`` per request, and several processes (or machines, with PostgreSQL) share one store.
So a run also holds a lease kept in the session's own state, ``{"lease": {"owner", "expires"}}``.
It is taken and given back with the store's atomic ``update_state``: SQLite does it in one
``BEGIN IMMEDIATE`` transaction, PostgreSQL under the session's advisory lock.

* **Taking it.** A lease that is absent, expired or already ours is taken. Otherwise the run
  waits (polling, 20 ms doubling to 0.5 s) up to ``wait`` seconds, then fails with
  ``SessionBusyError``.
* **Keeping it.** While the run goes on, a task renews it every ``ttl / 3`` seconds. A process
  that crashed therefore blocks its sessions for at most ``ttl`` seconds, not forever.
* **Giving it back.** The lease is released when the run ends, however it ends.

Expiry uses wall-clock time (``time.time()``): the machines sharing a PostgreSQL store need
clocks within a small fraction of ``ttl`` of each other (NTP gives milliseconds).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from types import TracebackType
from typing import TYPE_CHECKING, Any

from foxagent._exceptions import SessionBusyError

if TYPE_CHECKING:
    from foxagent.sessions._session import Session

# `store_errors` is imported where it is used: `_session` imports this module first.

__all__ = ["LEASE_KEY", "SessionLease"]

LEASE_KEY = "lease"


class _Held(Exception):
    """Raised inside ``update_state`` to leave the state as it is: another run holds it."""


class SessionLease:
    """The right to run ``session``: ``async with SessionLease(session, ttl=30, wait=30):``.

    Args:
        session: the conversation.
        ttl: seconds a lease lasts without renewal (what a crashed owner costs).
        wait: seconds to wait for another run's lease before ``SessionBusyError``.
    """

    def __init__(self, session: Session, *, ttl: float, wait: float) -> None:
        self.session = session
        self.ttl = ttl
        self.wait = wait
        self.owner = uuid.uuid4().hex
        self._renewer: asyncio.Task[None] | None = None

    async def __aenter__(self) -> SessionLease:
        deadline = time.monotonic() + self.wait
        delay = 0.02
        while not await self._take():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SessionBusyError(
                    f"Session {self.session.session_id!r} is in use by another run (another "
                    f"request, process or machine); waited {self.wait:g} s. Try again when it "
                    "has finished."
                )
            await asyncio.sleep(min(delay, remaining))
            delay = min(delay * 2, 0.5)
        self._renewer = asyncio.create_task(self._keep())
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        # Shielded: a cancelled run still gives its lease back instead of blocking for `ttl`.
        await asyncio.shield(self._give_back())

    async def _take(self) -> bool:
        from foxagent.sessions._session import store_errors

        def claim(state: dict[str, Any]) -> dict[str, Any]:
            lease = state.get(LEASE_KEY)
            now = time.time()
            if lease and lease.get("owner") != self.owner and float(lease["expires"]) > now:
                raise _Held
            return {**state, LEASE_KEY: {"owner": self.owner, "expires": now + self.ttl}}

        with store_errors(self.session, "take the session's lease"):
            try:
                await self.session.store.update_state(self.session.session_id, claim)
            except _Held:
                return False
        return True

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(self.ttl / 3)
            await self._take()  # ours: renewed (or taken back, if it lapsed while nobody wanted it)

    async def _give_back(self) -> None:
        from foxagent.sessions._session import store_errors

        def release(state: dict[str, Any]) -> dict[str, Any]:
            lease = state.get(LEASE_KEY)
            if not lease or lease.get("owner") != self.owner:
                raise _Held  # not ours (any more): leave it
            return {key: value for key, value in state.items() if key != LEASE_KEY}

        with (
            store_errors(self.session, "give the session's lease back"),
            contextlib.suppress(_Held),
        ):
            await self.session.store.update_state(self.session.session_id, release)
