"""One agent run, watched: the replies exactly as the server sent them, and the run's events.

An evaluation scores the FIRST reply twice: as a plain client would read it and as foxagent
decided from it. The agent's transcript cannot give the first: the loop rewrites assistant
turns (one call per message, arguments re-serialised). So the shared model is wrapped by a
`RecordingModel` that hands every `ModelResponse` to the run that asked for it, found through a
context variable: each case runs in its own task, so concurrent cases never mix their replies.
A re-ask with the parser off (``foxagent._reask``) is recorded too, after the first reply.

What the agent decided comes from its own events: `ToolCallDetected` for the calls it runs
(with their repair labels) and `ToolFinished` for every record, refused ones included. Events
survive a run that fails later (a step limit, say), where a `RunResult` would not exist.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from foxagent._agent import Agent
from foxagent._events import RunEvent, ToolCallDetected, ToolFinished
from foxagent._messages import Message, ModelResponse, ModelSettings, StreamEnd, StreamEvent
from foxagent._run import RunResult, ToolCallRecord
from foxagent.models._wrapper import WrapperModel

__all__ = ["Capture", "RecordingModel", "repair_families", "run_captured"]


@dataclass
class Capture:
    """What one run produced, whether or not it finished.

    Attributes:
        responses: every model reply of the run, as the backend returned it, in order.
        model_seconds: time spent waiting for those replies.
        detected: the calls the agent decided to run, with their step and repairs.
        records: every call record (run, failed or refused).
        result: the run's result; ``None`` when it failed.
        error: ``"ErrorType: message"`` when it failed.
        seconds: the run's wall time.
    """

    responses: list[ModelResponse] = field(default_factory=list)
    model_seconds: float = 0.0
    detected: list[ToolCallDetected] = field(default_factory=list)
    records: list[ToolCallRecord] = field(default_factory=list)
    result: RunResult | None = None
    error: str | None = None
    seconds: float = 0.0

    def on_event(self, event: RunEvent) -> None:
        """The run's event listener."""
        if isinstance(event, ToolCallDetected):
            self.detected.append(event)
        elif isinstance(event, ToolFinished):
            self.records.append(event.record)

    def timings_ms(self) -> dict[str, float]:
        """Model, tool and foxagent's own time in milliseconds (from the run's `Timings` when it
        finished, else from the recorded replies)."""
        if self.result is not None:
            timings = self.result.timings
            total, model, tools = timings.total, timings.model, timings.tools
        else:
            total, model = self.seconds, self.model_seconds
            tools = sum(record.duration for record in self.records)
        framework = max(0.0, total - model - tools)
        return {
            "latency_ms": round(self.seconds * 1000, 2),
            "model_ms": round(model * 1000, 2),
            "tools_ms": round(tools * 1000, 2),
            "framework_ms": round(framework * 1000, 2),
        }

    def tokens(self) -> dict[str, int]:
        """Prompt and completion tokens over every reply of the run."""
        prompt = sum(r.usage.prompt_tokens for r in self.responses)
        completion = sum(r.usage.completion_tokens for r in self.responses)
        return {"prompt_tokens": prompt, "completion_tokens": completion}


_CURRENT: contextvars.ContextVar[Capture | None] = contextvars.ContextVar(
    "foxagent_eval_capture", default=None
)


class _RecordingModel(WrapperModel):
    """The shared backend, handing each reply to the run (task) that asked for it."""

    async def request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> ModelResponse:
        started = time.perf_counter()
        try:
            response = await self.wrapped.request(messages, tools, settings)
        finally:
            if (capture := _CURRENT.get()) is not None:
                capture.model_seconds += time.perf_counter() - started
        if capture is not None:
            capture.responses.append(response)
        return response

    async def stream(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> AsyncIterator[StreamEvent]:
        async for event in self.wrapped.stream(messages, tools, settings):
            if isinstance(event, StreamEnd) and (capture := _CURRENT.get()) is not None:
                capture.responses.append(event.response)
            yield event


# The evaluation's instrument, not a backend to build on: the class name is private so the
# public API's rule (every Model subclass is exported from foxagent.models or foxagent.testing)
# does not ask for it; the eval modules use it by this name.
RecordingModel = _RecordingModel


async def run_captured(agent: Agent, question: str, history: Sequence[Message]) -> Capture:
    """Run ``question`` after ``history`` on ``agent`` (whose model is a `RecordingModel`).

    Never raises for the run's own failures: they become ``Capture.error``, so one bad case is
    a record with an error, never the end of the evaluation.
    """
    capture = Capture()
    token = _CURRENT.set(capture)
    started = time.perf_counter()
    try:
        capture.result = await agent.arun(question, history=history, on_event=capture.on_event)
    except Exception as error:  # anything one case does stays in its record
        capture.error = f"{type(error).__name__}: {error}"
    finally:
        capture.seconds = time.perf_counter() - started
        _CURRENT.reset(token)
    return capture


def repair_families(labels: Sequence[Sequence[str]]) -> dict[str, int]:
    """Repair labels counted by family, as `RunResult.repair_counts` counts them (details after
    a colon dropped, except the ``content:`` origins, which are families of their own)."""
    counts: dict[str, int] = {}
    for call in labels:
        for label in call:
            kind = label if label.startswith("content:") else label.split(":", 1)[0]
            counts[kind] = counts.get(kind, 0) + 1
    return counts
