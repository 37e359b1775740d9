"""Human approval of tool calls: what a paused run waits for, and how decisions are kept.

A tool made with ``@tool(requires_approval=True)`` never runs unasked. When a reply calls one:

* with ``Agent(approver=...)``, the approver is asked there and then (the CLI asks on the
  terminal);
* otherwise, in a run with a session, the run stops: ``RunResult.pending`` lists the reply's
  calls and the session's state keeps them, so any process can ``approve`` or ``deny`` them
  through the session later, and ``Agent.resume(session)`` runs the approved ones, tells the
  model about the denied ones and goes on;
* with neither, the call is refused and the model is told that nobody could approve it.

The session state holds ``{"pending": {"step", "text", "calls": [...], "decisions": {...}}}``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Any

from foxagent.sessions._session import PendingCall

__all__ = ["Approver", "ask", "pending_state"]


#: Called with each call that needs approval; returns (or resolves to) True to let it run.
Approver = Callable[[PendingCall], "bool | Awaitable[bool]"]


async def ask(approver: Approver, call: PendingCall) -> bool:
    """The approver's decision on ``call`` (sync or async approvers alike)."""
    decision = approver(call)
    if inspect.isawaitable(decision):
        decision = await decision
    return bool(decision)


def pending_state(calls: list[PendingCall], text: str, step: int) -> dict[str, Any]:
    """What the session keeps for a paused run."""
    return {"step": step, "text": text, "calls": [asdict(c) for c in calls], "decisions": {}}
