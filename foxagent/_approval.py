"""Human approval of tool calls: what a paused run waits for, and how decisions are kept.

A tool made with ``@tool(requires_approval=True)`` never runs unasked. When a reply calls one:

* with ``Agent(approver=...)``, the approver is asked there and then (the CLI asks on the
  terminal);
* otherwise, in a run with a session, the run stops: ``RunResult.pending`` lists the reply's
  calls and the session keeps a `PausedRun`, so any process can ``approve`` or ``deny`` them
  through the session later, and ``Agent.resume(session)`` runs the approved ones, tells the
  model about the denied ones and goes on;
* with neither, the call is refused and the model is told that nobody could approve it.

`PausedRun` is the one owner of its JSON form (kept under the session state's ``"pending"``
key): ``{"step", "text", "calls": [...], "decisions": {call_id: {"approved", "reason"}}}``.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from foxagent._exceptions import ApproverError, UserError

__all__ = ["Approver", "Decision", "PausedRun", "PendingCall", "ask", "denial_message"]


@dataclass(frozen=True, kw_only=True, slots=True)
class PendingCall:
    """A call of a paused run.

    Attributes:
        id: the call's id; decisions name it.
        name: the tool.
        arguments: the validated arguments it would run with.
        needs_approval: the tool requires approval (the reply's other calls wait with it).
        step: the model request whose reply made the call.
    """

    id: str
    name: str
    arguments: dict[str, Any]
    needs_approval: bool
    step: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Decision:
    """A person's decision on one paused call; ``reason`` goes to the model when denied."""

    approved: bool
    reason: str = ""


@dataclass(kw_only=True, slots=True)
class PausedRun:
    """A run stopped for approval: the reply's calls, its text and the decisions so far.

    Attributes:
        step: the model request whose reply made the calls.
        text: the reply's text, kept for the call turns of the transcript.
        calls: every call of the reply (those not needing approval wait with the others).
        decisions: call id to decision, filled in by ``Session.approve``/``Session.deny``.
    """

    step: int
    text: str
    calls: tuple[PendingCall, ...]
    decisions: dict[str, Decision] = field(default_factory=dict)

    @property
    def undecided(self) -> list[str]:
        """Ids of the calls that need approval and have no decision yet."""
        return [c.id for c in self.calls if c.needs_approval and c.id not in self.decisions]

    def decide(self, call_id: str, decision: Decision, *, session_id: str) -> None:
        """Record ``decision`` for ``call_id``, which must be a call waiting for approval."""
        waiting = [c.id for c in self.calls if c.needs_approval]
        if call_id not in waiting:
            raise UserError(
                f"Session {session_id!r} has no call {call_id!r} waiting for approval "
                f"(waiting: {', '.join(waiting) or 'none'})."
            )
        self.decisions[call_id] = decision

    def denials(self) -> dict[str, str]:
        """Call id to the message the model gets, for every denied call."""
        names = {c.id: c.name for c in self.calls}
        return {
            call_id: denial_message(names[call_id], decision.reason)
            for call_id, decision in self.decisions.items()
            if not decision.approved and call_id in names
        }

    def to_json(self) -> dict[str, Any]:
        """The JSON form a session store keeps."""
        return {
            "step": self.step,
            "text": self.text,
            "calls": [asdict(call) for call in self.calls],
            "decisions": {key: asdict(value) for key, value in self.decisions.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PausedRun:
        """Read what `to_json` wrote."""
        return cls(
            step=int(data["step"]),
            text=str(data["text"]),
            calls=tuple(PendingCall(**call) for call in data["calls"]),
            decisions={key: Decision(**value) for key, value in data["decisions"].items()},
        )


#: Called with each call that needs approval; returns (or resolves to) ``True`` to let it run,
#: ``False`` to refuse it, or a `Decision` (whose ``reason`` the model is told).
Approver = Callable[[PendingCall], "bool | Decision | Awaitable[bool | Decision]"]


async def ask(approver: Approver, call: PendingCall) -> Decision:
    """The approver's decision on ``call`` (sync or async approvers alike).

    Only ``True``, ``False`` or a `Decision` count: an approver that returns ``"no"``, ``1``
    or ``None`` is a bug that must not approve a call (``bool("no")`` is true).

    Raises:
        UserError: the approver returned anything else; names the tool and what came back.
        ApproverError: the approver raised (the run's error then carries the transcript).
    """
    try:
        decision = approver(call)
        if inspect.isawaitable(decision):
            decision = await decision
    except Exception as error:  # the approver's bug must not pass for a decision either way
        raise ApproverError(
            f"The approver raised {type(error).__name__}: {error} for the call to "
            f"'{call.name}'; the call did not run."
        ) from error
    if isinstance(decision, Decision):
        return decision
    if decision is True or decision is False:
        return Decision(approved=decision)
    raise UserError(
        f"The approver returned {decision!r} ({type(decision).__name__}) for the call to "
        f"'{call.name}'; return True, False or a foxagent.sessions.Decision."
    )


def denial_message(name: str, reason: str) -> str:
    """What the model is told about a call a person did not approve."""
    text = f"The user did not approve the call to '{name}'"
    return f"{text}: {reason}" if reason else f"{text}."
