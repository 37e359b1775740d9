"""Running one reply's calls: approvals, the repeat guard, timeouts, records and tool turns.

The loop (``_agent.py``) hands over the calls recovery accepted, already validated: each
`RecoveredCall` carries the tool's checked arguments, so a tool runs without a second
validation. This module then

1. asks for approval where a tool requires it (or, in a session run without an approver,
   returns the `PausedRun` the session keeps);
2. runs the calls concurrently, each within its timeout; a call repeated with the same
   arguments past `REPEAT_LIMIT` is refused instead; exceptions become error results;
3. appends the turns the Llama 3.1 template accepts: one call per assistant message, each
   followed by its ``role: "tool"`` result (cut to ``max_tool_result_chars``), arguments
   re-serialised as a JSON object;
4. counts failures per tool and stops the run with ``ToolRetryError`` past ``max_retries``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson

from foxagent import _tracing as tracing
from foxagent._approval import Approver, PausedRun, PendingCall, ask, denial_message
from foxagent._events import RunWarning, ToolCallDetected, ToolFinished, ToolStarted
from foxagent._exceptions import ToolCallError, ToolRetryError
from foxagent._messages import ModelSettings
from foxagent._recovery import RecoveredCall, Recovery, RejectedCall, new_call_id
from foxagent._run import CallStatus, RunState, ToolCallRecord, safe_str
from foxagent._slots import slot_builder
from foxagent._threads import tool_threads
from foxagent._timeouts import within
from foxagent._tools import ToolContext
from foxagent._toolset import Toolset

__all__ = [
    "REPEAT_LIMIT",
    "ExecutionSettings",
    "check_budget",
    "run_decided",
    "run_reply",
]

REPEAT_LIMIT = 2  # the same call with the same arguments runs at most this often per run


class ExecutionSettings(Protocol):
    """What execution reads from the agent, at the moment it runs (they may be changed)."""

    toolset: Toolset
    settings: ModelSettings
    tool_timeout: float
    max_retries: int
    max_tool_result_chars: int | None
    approver: Approver | None


async def run_reply(
    settings: ExecutionSettings,
    state: RunState,
    recovery: Recovery,
    rejected: Sequence[RejectedCall],
    step: int,
) -> PausedRun | None:
    """Run the calls of one reply and append their turns; refused attempts get turns too.

    Returns the `PausedRun` to keep when the reply calls a tool that needs approval in a
    session run without an approver (nothing runs then); otherwise ``None``.
    """
    if state.on_event is not None:
        for call in recovery.calls:
            state.on_event(
                ToolCallDetected(
                    id=call.id,
                    name=call.name,
                    arguments=call.arguments,
                    step=step,
                    repairs=call.repairs,
                )
            )
    refused = [_refused_record(r, step) for r in rejected]
    if state.on_event is not None and any(r.kind == "truncated" for r in rejected):
        limit = settings.settings.max_tokens
        state.on_event(
            RunWarning(
                code="cut_generation",
                message=f"The model's reply was cut at max_tokens ({limit}), so a call in it "
                "was not run; the model was asked to send it again. Raise ModelSettings"
                ".max_tokens if its calls are this long.",
            )
        )
    needing = {c.id for c in recovery.calls if _requires_approval(settings.toolset, c.name)}
    if needing and settings.approver is None and state.session is not None:
        # Pause: the refused attempts are final now; the calls wait for a decision.
        append_turns(settings, state, recovery.text, refused)
        pending = tuple(_pending(call, call.id in needing, step) for call in recovery.calls)
        return PausedRun(step=step, text="" if refused else recovery.text, calls=pending)
    denied: dict[str, str] = {}
    for call in recovery.calls:
        if call.id not in needing:
            continue
        if settings.approver is None:
            denied[call.id] = (
                f"Tool '{call.name}' needs a person's approval, and nobody can be asked "
                "in this run; do not call it again."
            )
        elif not (decision := await ask(settings.approver, _pending(call, True, step))).approved:
            denied[call.id] = denial_message(call.name, decision.reason)
    records = await _execute_all(settings, state, recovery.calls, denied, step)
    append_turns(settings, state, recovery.text, [*records, *refused])
    check_budget(settings, state, [*records, *refused])
    return None


async def run_decided(
    settings: ExecutionSettings, state: RunState, paused: PausedRun
) -> list[ToolCallRecord]:
    """Run a paused reply's calls as decided (denied ones are not run) and append the turns."""
    calls = [
        RecoveredCall(id=c.id, name=c.name, arguments=c.arguments, source="server")
        for c in paused.calls
    ]
    records = await _execute_all(settings, state, calls, paused.denials(), paused.step)
    append_turns(settings, state, paused.text, records)
    return records


def append_turns(
    settings: ExecutionSettings, state: RunState, text: str, records: Sequence[ToolCallRecord]
) -> None:
    """Append one assistant call turn and its tool result per record, and report them."""
    for position, record in enumerate(records):
        arguments = _ARGUMENTS_JSON(record.arguments)
        function = {"name": record.name, "arguments": arguments}
        call = {"id": record.id, "type": "function", "function": function}
        # The template drops content next to a call, but the transcript keeps the reasoning.
        content = text if position == 0 and text else None
        state.messages.append({"role": "assistant", "content": content, "tool_calls": [call]})
        state.messages.append(
            {
                "role": "tool",
                "tool_call_id": record.id,
                "name": record.name,
                "content": _capped(_result_text(record), settings.max_tool_result_chars),
            }
        )
        state.records.append(record)
        if state.on_event is not None:
            state.on_event(ToolFinished(record=record))


def check_budget(
    settings: ExecutionSettings, state: RunState, records: Sequence[ToolCallRecord]
) -> None:
    """Count failures per tool; raise ``ToolRetryError`` past ``max_retries`` in a row."""
    for record in records:
        if record.status == "denied":
            continue  # a person's decision, not the model's mistake
        if record.status == "ok":
            state.failures[record.name] = 0
            continue
        state.failures[record.name] = state.failures.get(record.name, 0) + 1
        repeated = state.repeats.get(_repeat_key(record.name, record.arguments), 0) > REPEAT_LIMIT
        if not repeated and record.error:
            state.tool_errors[record.name] = record.error
        if state.failures[record.name] > settings.max_retries:
            # The tool's own error says what to fix; the repeat guard's note ("use the results
            # above") was meant for the model.
            count, limit = state.failures[record.name], settings.max_retries
            said = f"Calls to tool '{record.name}' failed {count} times in a row "
            said += f"(max_retries={limit})"
            last = state.tool_errors.get(record.name)
            if last is None:  # the tool never failed: the model only kept repeating a call
                said += "; the model kept repeating a call that had already run "
                said += f"{REPEAT_LIMIT} times with the same arguments"
            else:
                said += f"; last error: {last}"
                said += " (then the model repeated the same call)" if repeated else ""
            raise ToolRetryError(said, messages=state.messages)


async def _execute_all(
    settings: ExecutionSettings,
    state: RunState,
    calls: Sequence[RecoveredCall],
    denied: dict[str, str],
    step: int,
) -> list[ToolCallRecord]:
    """Run ``calls`` concurrently, except the ``denied`` ones (id to the model's message)."""

    started = time.perf_counter()
    if len(calls) == 1:  # the common case: no task, no gather (measurable per run)
        records = [await _execute_or_deny(settings, state, calls[0], denied, step)]
    else:
        work = (_execute_or_deny(settings, state, call, denied, step) for call in calls)
        records = list(await asyncio.gather(*work))
    state.timings.tools += time.perf_counter() - started
    return records


async def _execute_or_deny(
    settings: ExecutionSettings,
    state: RunState,
    call: RecoveredCall,
    denied: dict[str, str],
    step: int,
) -> ToolCallRecord:
    if call.id in denied:
        return _record(call, step, "denied", error=denied[call.id])
    return await _execute(settings, state, call, step)


def _repeat_key(name: str, arguments: Mapping[str, Any]) -> str | bytes:
    """The same key for the same tool and arguments (in any key order); orjson when it can."""
    try:
        return name.encode() + b"\x00" + orjson.dumps(arguments, option=orjson.OPT_SORT_KEYS)
    except (orjson.JSONEncodeError, UnicodeEncodeError):  # a lone surrogate, a huge integer
        return name + "\x00" + json.dumps(arguments, sort_keys=True, ensure_ascii=False)


async def _execute(
    settings: ExecutionSettings, state: RunState, call: RecoveredCall, step: int
) -> ToolCallRecord:
    key = _repeat_key(call.name, call.arguments)
    state.repeats[key] = state.repeats.get(key, 0) + 1
    if state.repeats[key] > REPEAT_LIMIT:
        message = (
            f"Tool '{call.name}' was already called {REPEAT_LIMIT} times with these "
            "arguments; use the results above instead of calling it again."
        )
        return _record(call, step, "rejected", error=message)
    tool = settings.toolset[call.name]
    context = (
        ToolContext(
            run_id=state.run_id, tool_call_id=call.id, messages=state.messages, deps=state.deps
        )
        if getattr(tool, "wants_context", True)
        else None  # a @tool without a ToolContext parameter: none to build
    )
    timeout = tool.timeout if tool.timeout is not None else settings.tool_timeout
    if state.on_event is not None:
        state.on_event(ToolStarted(id=call.id, name=call.name, arguments=call.arguments, step=step))
    with tracing.tool_span(call.name, call.id, traced=state.traced) as span:
        if call.repairs and state.traced:
            span.set({"foxagent.tool.repairs": list(call.repairs)})
        record = await _invoke(call, step, tool, context, timeout)
        if record.status != "ok":
            span.fail(record.status)
    if record.status == "timeout" and _runs_in_a_thread(tool) and state.on_event is not None:
        state.on_event(
            RunWarning(
                code="tool_abandoned",
                message=f"{record.error} Its thread may still be running "
                f"({tool_threads.abandoned} abandoned of {tool_threads.size} tool threads).",
            )
        )
    return record


async def _invoke(
    call: RecoveredCall, step: int, tool: Any, context: ToolContext | None, timeout: float
) -> ToolCallRecord:
    started = time.perf_counter()
    if call.checked is not None and getattr(tool, "runs_inline", False):
        # A cheap sync tool (declared or measured, Tool.runs_inline): called right here, with
        # no thread and no timeout, which could not stop it anyway; same records as below.
        try:
            result = tool.call_inline(call.checked, context)
        except Exception as failure:  # a tool's bug must not kill the run: tell the model
            return _failed(call, step, failure, started)
        return _record(call, step, "ok", result=result, started=started)
    # Recovery validated the arguments; a call rebuilt from a stored paused run is checked here.
    work = (
        tool.run_checked(call.checked, context)
        if call.checked is not None
        else tool.invoke(call.arguments, context)
    )
    try:
        result = await within(timeout, work)
    except asyncio.TimeoutError:
        ending = "was abandoned" if _runs_in_a_thread(tool) else "was stopped"
        error = f"Tool '{call.name}' did not finish within {timeout:g} s and {ending}."
        return _record(call, step, "timeout", error=error, started=started)
    except Exception as failure:  # a tool's bug must not kill the run: tell the model
        return _failed(call, step, failure, started)
    return _record(call, step, "ok", result=result, started=started)


def _failed(call: RecoveredCall, step: int, failure: Exception, started: float) -> ToolCallRecord:
    """The record of a call whose tool raised: its own words for a ``ToolCallError`` (a message
    meant for the model), else the exception named."""
    if isinstance(failure, ToolCallError):
        return _record(call, step, "error", error=str(failure), started=started)
    error = f"Tool '{call.name}' failed: {type(failure).__name__}: {failure}"
    return _record(call, step, "error", error=error, started=started)


def _runs_in_a_thread(tool: Any) -> bool:
    """A sync ``@tool`` function: on timeout its thread is abandoned, not stopped."""
    return getattr(tool, "is_async", True) is False


def _requires_approval(toolset: Toolset, name: str) -> bool:
    return bool(getattr(toolset[name], "requires_approval", False))


def _record(
    call: RecoveredCall,
    step: int,
    status: CallStatus,
    *,
    result: Any = None,
    error: str | None = None,
    started: float | None = None,
) -> ToolCallRecord:
    duration = time.perf_counter() - started if started is not None else 0.0
    # ToolCallRecord(...) by slot_builder: about 0.5 µs less per call than its __init__.
    return _BUILD_RECORD(
        call.id, call.name, call.arguments, status, result, error, duration, step, call.repairs
    )


_BUILD_RECORD = slot_builder(ToolCallRecord)


def _refused_record(rejected: RejectedCall, step: int) -> ToolCallRecord:
    return ToolCallRecord(
        id=rejected.id or new_call_id(),
        name=rejected.name or "unknown",
        arguments={},
        status="rejected",
        error=rejected.reason,
        step=step,
    )


def _pending(call: RecoveredCall, needs_approval: bool, step: int) -> PendingCall:
    return PendingCall(
        id=call.id,
        name=call.name,
        arguments=call.arguments,
        needs_approval=needs_approval,
        step=step,
    )


def _capped(text: str, limit: int | None) -> str:
    """``text`` cut to ``limit`` characters, with a note the model can act on."""
    if limit is None or len(text) <= limit:
        return text
    return (
        text[:limit] + f"\n[foxagent: the tool result was cut to its first {limit} of "
        f"{len(text)} characters]"
    )


def _result_text(record: ToolCallRecord) -> str:
    if record.status != "ok":
        return f"Error: {record.error}"
    if isinstance(record.result, str):
        return record.result
    try:
        return _RESULT_JSON(record.result)
    except (TypeError, ValueError):  # e.g. a circular structure
        return safe_str(record.result)


# json.dumps(value, ensure_ascii=False[, default=safe_str]) builds its encoder on every call
# (about 1 µs); these are the same encoders, built once (encode keeps no state between calls).
_ARGUMENTS_JSON = json.JSONEncoder(ensure_ascii=False).encode
_RESULT_JSON = json.JSONEncoder(ensure_ascii=False, default=safe_str).encode
