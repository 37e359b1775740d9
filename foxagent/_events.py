"""The typed events a run reports as it advances.

``Agent.iter(question)`` yields them; ``Agent.arun(question, on_event=callback)`` calls the
callback with each. In order, for one step: `StepStarted` (a model request is about to go out),
`ModelRetry` for each retried request, the reply's `TextDelta` and `ToolCallDelta` pieces (as
they stream, or the whole text at once), then for each call the reply holds `ToolCallDetected`,
`ToolStarted` and `ToolFinished` (whose record says ``ok``, ``error``, ``timeout`` or
``rejected`` or ``denied``); the run ends with `FinalAnswer`, `ApprovalRequired` when it
pauses for a person's decision, or `RunCancelled` when its task is cancelled.
A service can forward them as server-sent events: every event is a frozen dataclass with a
``kind`` string.

`ModelRetry` is defined with the other values backends produce (``foxagent._messages``): a
backend reports it through ``foxagent.models.report_retry`` and never imports this module.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from foxagent._approval import PendingCall
from foxagent._messages import Message, ModelRetry, StreamEnd, StreamEvent
from foxagent._run import RunResult, ToolCallRecord

__all__ = [
    "ApprovalRequired",
    "FinalAnswer",
    "ModelRetry",
    "RunCancelled",
    "RunEvent",
    "RunWarning",
    "StepStarted",
    "ToolCallDetected",
    "ToolFinished",
    "ToolStarted",
    "event_payload",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class StepStarted:
    """A model request is about to be sent (``step`` counts from 1)."""

    kind: Literal["step"] = "step"
    step: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolCallDetected:
    """The model's reply holds a valid call that will run (refused ones go to `ToolFinished`)."""

    kind: Literal["tool_call_detected"] = "tool_call_detected"
    id: str
    name: str
    arguments: dict[str, Any]
    step: int
    repairs: tuple[str, ...] = ()  # how the call was recovered (RecoveredCall.repairs)


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolStarted:
    """A tool starts running."""

    kind: Literal["tool_started"] = "tool_started"
    id: str
    name: str
    arguments: dict[str, Any]
    step: int


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolFinished:
    """A tool call finished, failed, timed out or was refused."""

    kind: Literal["tool_finished"] = "tool_finished"
    record: ToolCallRecord


@dataclass(frozen=True, kw_only=True, slots=True)
class RunWarning:
    """Something the run got past that an operator should know about.

    ``code`` says what: ``tool_abandoned`` (a sync tool passed its timeout; its thread cannot
    be stopped and may still be running, holding one of the tool threads), ``cut_generation``
    (a reply was cut at ``max_tokens``, so a call in it was refused), ``reasked_raw`` (the
    server's tool parser dropped generated text, so the request was sent again with it off).
    """

    kind: Literal["warning"] = "warning"
    code: str
    message: str


@dataclass(frozen=True, kw_only=True, slots=True)
class FinalAnswer:
    """The run is over: ``result`` is what ``arun`` returns."""

    kind: Literal["final_answer"] = "final_answer"
    result: RunResult


@dataclass(frozen=True, kw_only=True, slots=True)
class ApprovalRequired:
    """The run paused: ``calls`` wait for a person's decision (``RunResult.pending``)."""

    kind: Literal["approval_required"] = "approval_required"
    calls: tuple[PendingCall, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class RunCancelled:
    """The run's task was cancelled: its model request and tools were stopped, and
    ``messages`` is the transcript up to that point (pass it as ``history`` to go on)."""

    kind: Literal["cancelled"] = "cancelled"
    messages: list[Message]


RunEvent = (
    StreamEvent
    | StepStarted
    | ModelRetry
    | ToolCallDetected
    | ToolStarted
    | ToolFinished
    | RunWarning
    | FinalAnswer
    | ApprovalRequired
    | RunCancelled
)


def event_payload(event: RunEvent) -> dict[str, Any]:
    """``event`` as a JSON-ready dict, e.g. the ``data`` of a server-sent event.

    `FinalAnswer` carries the answer, steps and calls rather than the whole result (whose
    transcript the client already has); other events are their fields.
    """
    if isinstance(event, FinalAnswer):
        result = event.result
        calls = [asdict(call) for call in result.tool_calls]
        return {"kind": event.kind, "answer": result.answer, "steps": result.steps, "calls": calls}
    if isinstance(event, StreamEnd):
        return {"kind": event.kind}  # the reply is in the deltas before it
    return asdict(event)
