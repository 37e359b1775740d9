"""The events a run reports (``Agent.iter``, ``Agent.arun(on_event=...)``), in one place.

``RunEvent`` is their union, for annotating a handler::

    from foxagent.events import RunEvent, ToolFinished

    def on_event(event: RunEvent) -> None:
        if isinstance(event, ToolFinished):
            print(event.record.name, event.record.status)

The order they come in is described in ``foxagent._events``.
"""

from foxagent._events import (
    ApprovalRequired,
    FinalAnswer,
    ModelRetry,
    RunCancelled,
    RunEvent,
    StepStarted,
    ToolCallDetected,
    ToolFinished,
    ToolStarted,
    event_payload,
)
from foxagent._jsonl_trace import JsonlTrace
from foxagent._messages import StreamEnd, TextDelta, ToolCallDelta

__all__ = [
    "ApprovalRequired",
    "FinalAnswer",
    "JsonlTrace",
    "ModelRetry",
    "RunCancelled",
    "RunEvent",
    "StepStarted",
    "StreamEnd",
    "TextDelta",
    "ToolCallDelta",
    "ToolCallDetected",
    "ToolFinished",
    "ToolStarted",
    "event_payload",
]
