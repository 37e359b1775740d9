"""A run's state while it goes (`RunState`) and what it returns (`RunResult`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from foxagent._answer import FoxBrainAnswer
from foxagent._approval import PendingCall
from foxagent._messages import Message, Usage

if TYPE_CHECKING:  # type-only: events and sessions sit above this module
    from foxagent._events import RunEvent
    from foxagent.sessions._session import Session

__all__ = [
    "CallStatus",
    "RunResult",
    "RunState",
    "Timings",
    "ToolCallRecord",
    "result_document",
    "safe_str",
]

CallStatus = Literal["ok", "error", "rejected", "timeout", "denied"]


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolCallRecord:
    """One tool call of a run, as it was executed (or refused).

    Attributes:
        id: the call id used in the transcript.
        name: the tool name (as the model wrote it, for refused calls).
        arguments: the validated arguments (``{}`` for refused calls that had none readable).
        status: ``ok``, ``error`` (the tool raised), ``timeout``, ``rejected`` (never run: the
            call was invalid) or ``denied`` (never run: a person did not approve it).
        result: what the tool returned, for ``ok`` calls.
        error: the text sent back to the model otherwise.
        duration: seconds the tool ran.
        step: the model request (1-based) whose reply made the call.
        repairs: how the call was recovered and what was changed on the way
            (``RecoveredCall.repairs``); ``()`` for refused calls.
    """

    id: str
    name: str
    arguments: dict[str, Any]
    status: CallStatus
    result: Any = None
    error: str | None = None
    duration: float = 0.0
    step: int = 0
    repairs: tuple[str, ...] = ()


@dataclass(kw_only=True, slots=True)
class Timings:
    """Where a run's wall time went, in seconds.

    ``overhead`` is foxagent's own share: the run's wall time minus model and tool time.
    """

    total: float = 0.0
    model: float = 0.0
    tools: float = 0.0

    @property
    def overhead(self) -> float:
        return max(0.0, self.total - self.model - self.tools)


@dataclass(frozen=True, kw_only=True, slots=True)
class RunResult:
    """The outcome of ``Agent.run``/``Agent.arun``.

    Attributes:
        answer: the ``<answer>`` text, or the final reply's text when FoxBrain used no tags.
        parsed: the final reply's FoxBrain structure.
        messages: the whole transcript (pass it as ``history`` to continue the conversation).
        tool_calls: every call made or refused, in order.
        usage: tokens of each model request.
        timings: model, tool and foxagent time.
        steps: how many model requests the run made.
        pending: calls waiting for a person's approval; non-empty means the run paused (with a
            session) instead of answering: decide through the session, then
            ``Agent.resume(session)``.
    """

    answer: str
    parsed: FoxBrainAnswer
    messages: list[Message]
    tool_calls: list[ToolCallRecord] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    steps: int = 0
    pending: tuple[PendingCall, ...] = ()

    @property
    def repair_counts(self) -> dict[str, int]:
        """How often each kind of repair was needed for the calls of this run.

        Details after a colon are dropped (``coerced:unit`` counts as ``coerced``), so a service
        can sum the counts over runs per failure family.
        """
        counts: dict[str, int] = {}
        for record in self.tool_calls:
            for label in record.repairs:
                kind = label.split(":", 1)[0] if not label.startswith("content:") else label
                counts[kind] = counts.get(kind, 0) + 1
        return counts

    @property
    def total_usage(self) -> Usage:
        """Tokens of the whole run."""
        total = Usage()
        for usage in self.usage:
            total = total + usage
        return total


@dataclass(kw_only=True, slots=True)
class RunState:
    """Everything one run in progress keeps: the loop's steps and tool execution share it.

    Attributes:
        run_id: the run's id (``ToolContext.run_id``, spans).
        messages: the transcript so far.
        deps: what the application passed to the run, for the tools.
        on_event: the run's event listener, if any.
        records: every call made or refused so far.
        usage: tokens of each model request.
        timings: model, tool and total time.
        failures: failed calls in a row, per tool (the retry budget).
        tool_errors: the last error of each tool's own making (a bad argument, an exception,
            a timeout; not the repeat guard's note), for the message when the budget runs out.
        repeats: how often each (tool, arguments) pair ran (the repeat guard).
        session: the stored conversation the run commits to, if any.
        committed: ``messages[:committed]`` are stored in the session.
        traced: spans are recorded (a tracer provider was installed when the run started):
            decided once per run, not per span.
    """

    run_id: str
    messages: list[Message]
    deps: Any = None
    on_event: Callable[[RunEvent], Any] | None = None
    records: list[ToolCallRecord] = field(default_factory=list)
    usage: list[Usage] = field(default_factory=list)
    timings: Timings = field(default_factory=Timings)
    failures: dict[str, int] = field(default_factory=dict)
    tool_errors: dict[str, str] = field(default_factory=dict)
    repeats: dict[str | bytes, int] = field(default_factory=dict)
    session: Session | None = None
    committed: int = 0
    traced: bool = False


def safe_str(value: Any) -> str:
    """``str(value)``, or a description when the object's own ``__str__`` fails.

    Tool results are the tools' objects: one whose ``__str__`` raises must not end the run
    (or its trace) with an untyped error.
    """
    try:
        return str(value)
    except Exception as error:
        return f"<{type(value).__name__} object; str() failed: {type(error).__name__}: {error}>"


def result_document(result: RunResult) -> dict[str, Any]:
    """``result`` as one JSON-ready object: what ``foxagent run --json`` prints and each line of
    ``foxagent batch`` holds (answer, parsed, tool calls, usage per request and in total,
    timings, steps)."""
    total = result.total_usage
    return {
        "answer": result.answer,
        "parsed": dataclasses.asdict(result.parsed),
        "tool_calls": [dataclasses.asdict(call) for call in result.tool_calls],
        "usage": {
            "requests": [dataclasses.asdict(usage) for usage in result.usage],
            "total": {
                "prompt_tokens": total.prompt_tokens,
                "completion_tokens": total.completion_tokens,
                "total_tokens": total.total_tokens,
            },
        },
        "timings": {
            "total": result.timings.total,
            "model": result.timings.model,
            "tools": result.timings.tools,
            "overhead": result.timings.overhead,
        },
        "steps": result.steps,
    }
