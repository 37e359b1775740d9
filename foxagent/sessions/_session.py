"""Conversations that outlive a run: ``Session`` and the ``SessionStore`` interface.

A service keeps one session per user conversation: ``await agent.arun(question,
session=Session(store, "user-42"))``. The run starts from the stored history and commits its
messages as they become final, so a process that dies mid-run loses at most the step in
progress:

* the question (and the system prompt, for a new conversation) when the run starts;
* each assistant tool call together with its ``role: "tool"`` result, once the tools finished
  (never a call without its result: the Llama 3.1 template matches results to calls by order);
* the final answer.

A stored history is therefore always valid for the template. A run that died before its answer
leaves its question (and maybe some call/result pairs) at the end; the next run continues after
them.

Stores: `MemoryStore` (tests, one process), ``SQLiteStore`` (``foxagent.sessions``; the embedded
default, one file, several processes), ``PostgresStore`` (several machines). They keep each
session's messages in order and a small JSON state (the pending approval of a stopped run).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import Any

from foxagent._approval import Decision, PausedRun, PendingCall
from foxagent._exceptions import FoxagentError, SessionStoreError, UserError
from foxagent._messages import Message
from foxagent.sessions._lease import SessionLease

__all__ = [
    "MemoryStore",
    "PendingCall",
    "Session",
    "SessionStore",
    "compact_history",
    "store_errors",
]

_PAUSED = "pending"  # the state key a paused run is kept under


class SessionStore(ABC):
    """Where sessions live. Every method is atomic for its session."""

    @abstractmethod
    async def load(self, session_id: str) -> list[Message]:
        """The session's messages in order (``[]`` for a new session)."""

    @abstractmethod
    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        """Add ``messages`` after the stored ones, all or none."""

    @abstractmethod
    async def replace(self, session_id: str, messages: Sequence[Message]) -> None:
        """Make ``messages`` the session's whole history (compaction), all or none."""

    @abstractmethod
    async def get_state(self, session_id: str) -> dict[str, Any]:
        """The session's JSON state (``{}`` when none was saved)."""

    @abstractmethod
    async def set_state(self, session_id: str, state: dict[str, Any]) -> None:
        """Save the session's JSON state, replacing the old one."""

    async def update_state(
        self, session_id: str, change: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> dict[str, Any]:
        """Read the state, apply ``change`` and save its result as one step; return it.

        Stores that several processes share override this with one transaction, so two
        decisions on one paused run never overwrite each other. ``change`` may raise to abort.
        """
        state = change(await self.get_state(session_id))
        await self.set_state(session_id, state)
        return state

    async def aclose(self) -> None:  # noqa: B027 - optional: stores without resources hold none
        """Release connections or files."""


class MemoryStore(SessionStore):
    """Sessions in this process's memory (tests, demos, single-process tools)."""

    def __init__(self) -> None:
        self._messages: dict[str, list[Message]] = {}
        self._states: dict[str, dict[str, Any]] = {}

    async def load(self, session_id: str) -> list[Message]:
        return copy.deepcopy(self._messages.get(session_id, []))

    async def append(self, session_id: str, messages: Sequence[Message]) -> None:
        stored = self._messages.setdefault(session_id, [])
        stored.extend(copy.deepcopy(list(messages)))

    async def replace(self, session_id: str, messages: Sequence[Message]) -> None:
        self._messages[session_id] = copy.deepcopy(list(messages))

    async def get_state(self, session_id: str) -> dict[str, Any]:
        return copy.deepcopy(self._states.get(session_id, {}))

    async def set_state(self, session_id: str, state: dict[str, Any]) -> None:
        self._states[session_id] = copy.deepcopy(state)


class Session:
    """One conversation in a store.

    Args:
        store: where the conversation is kept.
        session_id: the conversation's key (a user id, a chat id...).
        compact_at: when the stored history reaches this many tokens (counted by the model's
            server, e.g. vLLM's ``/tokenize``, or estimated), the oldest exchanges are dropped
            until it is about half that, before the next run starts. Set it below the
            server's ``max_model_len`` minus room for tools and the answer. ``None``: never.

        busy_timeout: seconds a run waits for another run of this session (in any process
            sharing the store) to finish, before ``SessionBusyError``.
        lease_ttl: seconds a run's hold on the session lasts unless renewed (it is renewed while
            the run goes on): how long a crashed process can keep others waiting.

    Runs of one session never overlap, whichever process or machine makes them: each holds the
    session's lease (``foxagent.sessions._lease``) from its first read to its last write.
    Different sessions run concurrently.
    """

    def __init__(
        self,
        store: SessionStore,
        session_id: str,
        *,
        compact_at: int | None = None,
        busy_timeout: float = 30.0,
        lease_ttl: float = 30.0,
    ) -> None:
        if not session_id:
            raise UserError("Session(session_id=...) must not be empty.")
        if lease_ttl <= 0 or busy_timeout < 0:
            raise UserError(
                f"Session needs lease_ttl > 0 and busy_timeout >= 0, got lease_ttl={lease_ttl}, "
                f"busy_timeout={busy_timeout}."
            )
        self.store = store
        self.session_id = session_id
        self.compact_at = compact_at
        self.busy_timeout = busy_timeout
        self.lease_ttl = lease_ttl
        self.lock = asyncio.Lock()

    def __repr__(self) -> str:
        return f"Session({self.session_id!r}, store={type(self.store).__name__})"

    async def messages(self) -> list[Message]:
        """The stored history, as a run would continue it."""
        with store_errors(self, "load the history"):
            return await self.store.load(self.session_id)

    async def compacted(
        self,
        count_tokens: Callable[[list[Message], list[dict[str, Any]]], Awaitable[int]],
        tools: list[dict[str, Any]],
    ) -> list[Message]:
        """The stored history, compacted first (and stored so) when it passed `compact_at`
        tokens, as ``count_tokens`` (the model's) counts them with ``tools``."""
        history = await self.messages()
        if self.compact_at is None or not history:
            return history
        tokens = await count_tokens(history, tools)
        if tokens <= self.compact_at:
            return history
        compacted = compact_history(history, tokens, target=self.compact_at // 2)
        await self.replace(compacted)
        return compacted

    async def append(self, messages: Sequence[Message]) -> None:
        """Commit ``messages`` (the agent does this as a run goes)."""
        if messages:
            with store_errors(self, "store the run's messages"):
                await self.store.append(self.session_id, messages)

    async def replace(self, messages: Sequence[Message]) -> None:
        """Replace the whole history (compaction)."""
        with store_errors(self, "replace the history"):
            await self.store.replace(self.session_id, messages)

    async def pending(self) -> list[PendingCall]:
        """The calls a paused run waits on (``[]`` when no run is paused)."""
        paused = await self.paused()
        return list(paused.calls) if paused is not None else []

    async def paused(self) -> PausedRun | None:
        """The run waiting for approval, if any."""
        with store_errors(self, "read the session state"):
            data = (await self.store.get_state(self.session_id)).get(_PAUSED)
        return PausedRun.from_json(data) if data else None

    async def set_paused(self, paused: PausedRun | None) -> None:
        """Keep ``paused`` as the session's waiting run (``None``: nothing waits)."""
        data = paused.to_json() if paused is not None else None
        with store_errors(self, "save the paused run"):
            await self.store.update_state(self.session_id, lambda state: {**state, _PAUSED: data})

    async def claim_paused(self) -> PausedRun:
        """Take the paused run out of the session, in one atomic step, to run its calls.

        Whoever claims it runs the approved calls; a second claim (another ``resume``, in any
        process) finds nothing, so an approved call runs at most once.

        Raises:
            UserError: no run is paused, or a call still waits for a decision (then nothing
                changes).
        """
        claimed: list[PausedRun] = []

        def take(state: dict[str, Any]) -> dict[str, Any]:
            data = state.get(_PAUSED)
            if not data:
                raise UserError(f"Session {self.session_id!r} has no run waiting for approval.")
            paused = PausedRun.from_json(data)
            if paused.undecided:
                raise UserError(
                    f"Session {self.session_id!r}: {', '.join(paused.undecided)} still wait "
                    "for a decision (session.approve(call_id) or session.deny(call_id, reason))."
                )
            claimed.append(paused)
            return {**state, _PAUSED: None}

        with store_errors(self, "claim the paused run"):
            await self.store.update_state(self.session_id, take)
        return claimed[0]

    def lease(self) -> SessionLease:
        """The right to run this session now (``async with session.lease():``), across
        processes; see `busy_timeout` and `lease_ttl`."""
        return SessionLease(self, ttl=self.lease_ttl, wait=self.busy_timeout)

    async def approve(self, call_id: str) -> None:
        """Let the paused call ``call_id`` run when the run is resumed (any process may)."""
        await self._decide(call_id, Decision(approved=True))

    async def deny(self, call_id: str, reason: str = "") -> None:
        """Refuse the paused call ``call_id``; ``reason`` is passed on to the model."""
        await self._decide(call_id, Decision(approved=False, reason=reason))

    async def _decide(self, call_id: str, decision: Decision) -> None:
        def record(state: dict[str, Any]) -> dict[str, Any]:
            data = state.get(_PAUSED)
            paused = PausedRun.from_json(data) if data else PausedRun(step=0, text="", calls=())
            paused.decide(call_id, decision, session_id=self.session_id)
            return {**state, _PAUSED: paused.to_json()}

        with store_errors(self, "record the decision"):
            await self.store.update_state(self.session_id, record)


@contextlib.contextmanager
def store_errors(session: Session, action: str) -> Iterator[None]:
    """Turn a store's own failure (sqlite3, psycopg, OSError...) into ``SessionStoreError``.

    foxagent's own errors (a refused decision, a busy session) pass through unchanged.
    """
    try:
        yield
    except FoxagentError:
        raise
    except Exception as error:
        store = type(session.store).__name__
        raise SessionStoreError(
            f"Session {session.session_id!r}: {store} could not {action}: "
            f"{type(error).__name__}: {error}"
        ) from error


def compact_history(history: Sequence[Message], tokens: int, *, target: int) -> list[Message]:
    """Drop the oldest whole exchanges of ``history`` (``tokens`` long) to about ``target``.

    An exchange runs from a user message to the next one, so calls stay with their results;
    leading system messages and the last exchange are always kept. The share of each exchange is
    estimated from its characters, scaled to the counted total.
    """
    head = 0
    while head < len(history) and history[head].get("role") == "system":
        head += 1
    starts = [i for i in range(head, len(history)) if history[i].get("role") == "user"]
    if len(starts) < 2:
        return list(history)
    sizes = [len(json.dumps(message, ensure_ascii=False)) for message in history]
    per_char = tokens / max(1, sum(sizes))
    cut = starts[0]
    remaining = tokens
    for start, next_start in itertools.pairwise(starts):
        if remaining <= target:
            break
        remaining -= int(sum(sizes[start:next_start]) * per_char)
        cut = next_start
    return [*history[:head], *history[cut:]]
