"""The events a run reports (``Agent.iter``, ``Agent.arun(on_event=...)``): their one home.

``RunEvent`` is their union, for annotating a handler::

    from foxagent.events import RunEvent, ToolFinished

    def on_event(event: RunEvent) -> None:
        if isinstance(event, ToolFinished):
            print(event.record.name, event.record.status)

The order they come in is described in ``foxagent._events``. The most used are re-exported by
``foxagent`` too; they are the same objects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from foxagent._facade import lazy_exports

if TYPE_CHECKING:
    from foxagent._events import (
        ApprovalRequired as ApprovalRequired,
        FinalAnswer as FinalAnswer,
        RunCancelled as RunCancelled,
        RunEvent as RunEvent,
        RunWarning as RunWarning,
        StepStarted as StepStarted,
        ToolCallDetected as ToolCallDetected,
        ToolFinished as ToolFinished,
        ToolStarted as ToolStarted,
        event_payload as event_payload,
    )
    from foxagent._jsonl_trace import JsonlTrace as JsonlTrace
    from foxagent._messages import (
        ModelRetry as ModelRetry,
        StreamEnd as StreamEnd,
        TextDelta as TextDelta,
        ToolCallDelta as ToolCallDelta,
    )

__all__ = [
    "ApprovalRequired",
    "FinalAnswer",
    "JsonlTrace",
    "ModelRetry",
    "RunCancelled",
    "RunEvent",
    "RunWarning",
    "StepStarted",
    "StreamEnd",
    "TextDelta",
    "ToolCallDelta",
    "ToolCallDetected",
    "ToolFinished",
    "ToolStarted",
    "event_payload",
]

_EXPORTS = {
    "ApprovalRequired": "foxagent._events",
    "FinalAnswer": "foxagent._events",
    "JsonlTrace": "foxagent._jsonl_trace",
    "ModelRetry": "foxagent._messages",
    "RunCancelled": "foxagent._events",
    "RunEvent": "foxagent._events",
    "RunWarning": "foxagent._events",
    "StepStarted": "foxagent._events",
    "StreamEnd": "foxagent._messages",
    "TextDelta": "foxagent._messages",
    "ToolCallDelta": "foxagent._messages",
    "ToolCallDetected": "foxagent._events",
    "ToolFinished": "foxagent._events",
    "ToolStarted": "foxagent._events",
    "event_payload": "foxagent._events",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
