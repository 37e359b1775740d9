"""``Agent``: drives FoxBrain until it answers, running the tools it calls.

One run is a few named steps over an explicit `RunState`:

1. ``_ask``: send the transcript and the tool schemas to the model.
2. ``recover_tool_calls`` on the reply (the server's ``tool_calls`` are only a hint).
3. No call attempted → ``_finish``: parse FoxBrain's tags into the `RunResult`.
4. Otherwise ``_run_calls``: run the safe calls concurrently (each with a timeout), turn
   exceptions, refusals and unknown tools into ``role: "tool"`` messages that say precisely what
   went wrong, and append the turns to the transcript in the shape the Llama 3.1 template
   accepts: one call per assistant message, each followed by its result, arguments re-serialised
   as a JSON object, never an empty ``tool_calls`` list.
5. Repeat until an answer, ``max_steps`` (``StepLimitError``) or a tool failing past its retry
   budget (``ToolRetryError``). Every ``RunError`` carries the transcript so far.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from random import getrandbits
from typing import Any

from foxagent import _execution as execution, _tracing as tracing
from foxagent._affinity import run_affinity
from foxagent._answer import FoxBrainAnswer, parse_answer
from foxagent._approval import Approver, PausedRun
from foxagent._events import (
    ApprovalRequired,
    FinalAnswer,
    RunCancelled,
    RunEvent,
    RunWarning,
    StepStarted,
)
from foxagent._exceptions import (
    ModelConnectionError,
    ModelHTTPError,
    ModelResponseError,
    RunError,
    RunTimeoutError,
    StepLimitError,
    UserError,
)
from foxagent._history import clean_history
from foxagent._messages import (
    Message,
    ModelResponse,
    ModelRetry,
    ModelSettings,
    StreamEnd,
    TextDelta,
)
from foxagent._offload import off_the_loop_if_long
from foxagent._prompts import DEFAULT_SYSTEM_PROMPT
from foxagent._reask import Settled, decide_calls, reaskable, settle
from foxagent._run import RunResult, RunState
from foxagent._timeouts import within
from foxagent._toolset import Toolset
from foxagent.models._base import Model
from foxagent.models._retry import reporting_retries
from foxagent.sessions._session import Session

__all__ = ["Agent"]

_STREAM_RESTARTS = 2  # a stream broken after its first chunk is asked again this often


class Agent:
    """A FoxBrain agent: a model, tools, a system prompt and limits.

    Example:
        >>> agent = Agent(tools=[get_weather], base_url="http://127.0.0.1:8883/v1", api_key="...")
        >>> result = agent.run("台北現在幾度？")  # doctest: +SKIP
        >>> print(result.answer)  # doctest: +SKIP

    Args:
        tools: ``@tool`` functions, plain functions, or a ``Toolset``.
        model: the backend; by default a `VLLMModel` built from
            ``base_url``, ``api_key`` and ``model_name`` (or the environment).
        system_prompt: FoxBrain's prompt by default; ``None`` or ``""`` sends none.
        max_steps: model requests a run may make before ``StepLimitError``.
        settings: sampling settings (the FoxBrain guide's by default).
        tool_timeout: seconds a tool may run, unless the tool sets its own ``timeout``.
        max_retries: failed calls to one tool in a row that the model may fix before the run
            stops with ``ToolRetryError``.
        stream: stream each model request (text arrives as it is generated; FoxBrain's calls,
            which vLLM cannot detect while streaming, are recovered from the streamed text).
        base_url: the vLLM server's ``/v1`` URL, when ``model`` is not given.
        api_key: the server's API key, when ``model`` is not given.
        model_name: the served model's name; ``None`` asks the server.
        run_timeout: seconds a whole run may take (``arun(timeout=...)`` overrides it); past it
            the model request or tools in progress are stopped and ``RunTimeoutError`` carries
            the transcript. ``None``: no deadline.
        approver: asked about each call to a tool made with ``requires_approval=True`` (sync or
            async, returns True to let it run). Without one, a run with a session pauses
            instead (``RunResult.pending``, then ``resume``), and a run without refuses the call.
        max_tool_result_chars: a tool result longer than this is cut, with a note saying so,
            before it goes back to the model (the run's records keep it whole); ``None``: no cap.
        reset_tool_choice: once a tool call was made, send ``tool_choice: "auto"`` instead of a
            forcing one (``"required"`` or a named function) from ``settings``; otherwise every
            reply must be a call and the run can only end at ``max_steps``.
    """

    def __init__(
        self,
        tools: Iterable[Any] = (),
        model: Model | None = None,
        *,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        max_steps: int = 8,
        settings: ModelSettings | None = None,
        tool_timeout: float = 60.0,
        max_retries: int = 2,
        stream: bool = False,
        base_url: str | None = None,
        api_key: str | None = None,
        model_name: str | None = None,
        run_timeout: float | None = None,
        max_tool_result_chars: int | None = 16_000,
        approver: Approver | None = None,
        reset_tool_choice: bool = True,
    ) -> None:
        if max_steps < 1:
            raise UserError(f"max_steps must be at least 1, got {max_steps}.")
        self.toolset = tools if isinstance(tools, Toolset) else Toolset(tools)
        if model is None:
            from foxagent.models.vllm import VLLMModel

            model = VLLMModel(base_url=base_url, api_key=api_key, model_name=model_name)
        self.model = model
        self.system_prompt = system_prompt or None
        self.max_steps = max_steps
        self.settings = settings or ModelSettings()
        forcing = self.settings.tool_choice not in ("auto", "none")
        self._settings_after_calls = (
            replace(self.settings, tool_choice="auto")
            if forcing and reset_tool_choice
            else self.settings
        )
        self.tool_timeout = tool_timeout
        self.run_timeout = run_timeout
        self.max_tool_result_chars = max_tool_result_chars
        self.approver = approver
        self.max_retries = max_retries
        self.stream = stream
        self._server = tracing.server_attributes(getattr(model, "base_url", None))

    def __repr__(self) -> str:
        return f"Agent(tools={self.toolset.names!r}, model={self.model!r})"

    def run(
        self, question: str, *, history: Sequence[Message] | None = None, deps: Any = None
    ) -> RunResult:
        """Synchronous `arun` (not for use inside a running event loop)."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run_and_close(question, history, deps))
        raise UserError("Agent.run() was called inside an event loop; use `await agent.arun()`.")

    async def _run_and_close(
        self, question: str, history: Sequence[Message] | None, deps: Any
    ) -> RunResult:
        async with self:  # its connections (model, MCP servers) belong to this short-lived loop
            return await self.arun(question, history=history, deps=deps)

    async def arun(
        self,
        question: str,
        *,
        history: Sequence[Message] | None = None,
        deps: Any = None,
        on_event: Callable[[RunEvent], Any] | None = None,
        timeout: float | None = None,
        session: Session | None = None,
    ) -> RunResult:
        """Ask ``question`` (continuing ``history``, e.g. an earlier result's ``messages``).

        ``on_event`` receives the run's progress as typed events (see `foxagent.events`):
        ``StepStarted`` before each model request, ``ModelRetry`` for retried requests, each
        text or server tool-call delta as it arrives (with ``stream=True``; otherwise each reply
        arrives as one text delta), ``ToolCallDetected``, ``ToolStarted`` and ``ToolFinished``
        for each call, and ``FinalAnswer`` last.

        ``session`` continues a stored conversation instead of ``history`` and commits the
        run's messages to it as they become final (see `foxagent.sessions`).

        ``timeout`` is this run's deadline in seconds (default: the agent's ``run_timeout``).
        When the run's task is cancelled, its model request and tools are stopped and
        ``on_event`` gets ``RunCancelled`` with the transcript before the cancellation goes on.

        Raises:
            RunError: the server failed, the step limit or the deadline was reached, or a tool
                kept failing; ``error.messages`` holds the transcript so far.
        """
        if session is None:
            state = self._state(self._opening(question, history), 0, deps, on_event, None)
            with run_affinity(state.run_id):  # every request of the run: one replica
                return await self._run(state, timeout)
        if history is not None:
            raise UserError("Pass either history or session to arun, not both.")
        # Runs of one session take turns: in this process (the lock) and across processes
        # and machines sharing the store (the lease).
        async with session.lock, session.lease():
            if waiting := await session.pending():
                ids = ", ".join(call.id for call in waiting if call.needs_approval)
                raise UserError(
                    f"Session {session.session_id!r} has a run waiting for approval of {ids}: "
                    "approve or deny through the session, then call agent.resume(session)."
                )
            stored = await session.compacted(self.model.count_tokens, self.toolset.schemas)
            # A stored conversation keeps the system prompt it started with.
            opening = self._opening(question, stored) if not stored else clean_history(stored)
            if stored:
                opening.append({"role": "user", "content": question})
            state = self._state(opening, len(stored), deps, on_event, session)
            with run_affinity(state.run_id, session.session_id):  # every run of the session
                return await self._run(state, timeout)

    async def resume(
        self,
        session: Session,
        *,
        deps: Any = None,
        on_event: Callable[[RunEvent], Any] | None = None,
        timeout: float | None = None,
    ) -> RunResult:
        """Continue the session's paused run once every call it waits on was decided.

        Approved calls run, denied ones go back to the model as errors (with the reason),
        then the run goes on as ``arun`` would. Any process holding the session may call it;
        the paused calls are claimed atomically first, so however many resumes race, each
        approved call runs at most once.

        Raises:
            UserError: nothing is paused, or a call still waits for a decision.
            SessionBusyError: another run held the session past its ``busy_timeout``.
            RunError: as for ``arun``.
        """
        async with session.lock, session.lease():
            # Claimed before anything runs: a second resume, anywhere, finds nothing to run.
            paused = await session.claim_paused()
            history = await session.messages()
            state = self._state(history, len(history), deps, on_event, session)
            with run_affinity(state.run_id, session.session_id):
                return await self._run(state, timeout, paused)

    def _state(
        self,
        messages: list[Message],
        committed: int,
        deps: Any,
        on_event: Callable[[RunEvent], Any] | None,
        session: Session | None,
    ) -> RunState:
        return RunState(
            run_id=f"{getrandbits(128):032x}",  # a name, not a secret (new_call_id)
            messages=messages,
            deps=deps,
            on_event=on_event,
            session=session,
            committed=committed,
        )

    async def _run(
        self, state: RunState, timeout: float | None, paused: PausedRun | None = None
    ) -> RunResult:
        on_event = state.on_event
        started = time.perf_counter()
        deadline = self.run_timeout if timeout is None else timeout
        conversation = state.session.session_id if state.session is not None else None
        state.traced = tracing.recording()  # once per run, not per span
        run_span = tracing.run_span(state.run_id, conversation, traced=state.traced)
        with reporting_retries(on_event), run_span as span:
            try:
                await self._commit(state)  # the question, before anything can fail
                work = self._steps(state) if paused is None else self._resumed(state, paused)
                result = await within(deadline, work)
            except RunError as error:
                if not error.messages:
                    error.messages = list(state.messages)
                raise
            except asyncio.TimeoutError:
                # Tool and model timeouts are turned into their own errors further in, so a
                # TimeoutError reaching this point is the run's deadline.
                raise RunTimeoutError(
                    f"The run did not finish within {deadline:g} s (run_timeout).",
                    messages=list(state.messages),
                ) from None
            except asyncio.CancelledError:
                if on_event is not None:
                    on_event(RunCancelled(messages=list(state.messages)))
                raise
            finally:
                state.timings.total = time.perf_counter() - started
            if state.traced:
                span.set({"foxagent.steps": result.steps, "foxagent.pending": len(result.pending)})
            if on_event is not None and result.pending:
                on_event(ApprovalRequired(calls=result.pending))
            elif on_event is not None:
                on_event(FinalAnswer(result=result))
        return result

    async def iter(
        self,
        question: str,
        *,
        history: Sequence[Message] | None = None,
        deps: Any = None,
        session: Session | None = None,
        timeout: float | None = None,
    ) -> AsyncIterator[RunEvent]:
        """Run ``question`` and yield its events as they happen, `FinalAnswer` last.

        For a service that pushes progress to its users (e.g. as server-sent events)::

            async for event in agent.iter("台北現在幾度？"):
                await send(event.kind, event)

        A failed run raises its ``RunError`` after the events that led to it. Leaving the loop
        early (``break``, or the consumer's task being cancelled) cancels the run: its model
        request and tool tasks are stopped.
        """
        queue: asyncio.Queue[RunEvent | None] = asyncio.Queue()
        run = asyncio.ensure_future(
            self.arun(
                question,
                history=history,
                deps=deps,
                on_event=queue.put_nowait,
                session=session,
                timeout=timeout,
            )
        )
        run.add_done_callback(lambda _: queue.put_nowait(None))  # None: no more events
        try:
            while (event := await queue.get()) is not None:
                yield event
            run.result()  # re-raises the run's error, if it failed
        finally:
            if not run.done():
                run.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await run

    async def _resumed(self, state: RunState, paused: PausedRun) -> RunResult:
        """Run a paused reply's calls as decided, then go on with the next step."""
        records = await execution.run_decided(self, state, paused)
        await self._commit(state)
        execution.check_budget(self, state, records)
        return await self._steps(state, first_step=paused.step + 1)

    async def _steps(self, state: RunState, first_step: int = 1) -> RunResult:
        for step in range(first_step, self.max_steps + 1):
            if state.on_event is not None:
                state.on_event(StepStarted(step=step))
            settled = await self._ask(state)
            response = settled.response
            recovery = await decide_calls(settled, self.toolset.index, self.settings)
            attempts = [r for r in recovery.rejected if r.kind != "example"]
            if not recovery.calls and not attempts:
                parsed = await off_the_loop_if_long(len(recovery.text), parse_answer, recovery.text)
                result = self._finish(state, response, parsed, step)
                await self._commit(state)
                return result
            paused = await execution.run_reply(self, state, recovery, attempts, step)
            await self._commit(state)
            if paused is not None:
                return await self._pause(state, paused)
        raise StepLimitError(
            f"No final answer after {self.max_steps} model requests (max_steps).",
            messages=state.messages,
        )

    async def _commit(self, state: RunState) -> None:
        """Store the messages that became final since the last commit (with a session)."""
        if state.session is not None and state.committed < len(state.messages):
            await state.session.append(state.messages[state.committed :])
            state.committed = len(state.messages)

    async def _reask(self, state: RunState, reason: str) -> ModelResponse:
        """The same request with ``tool_choice: "none"``: the raw text, decided by foxagent."""
        if state.on_event is not None:
            message = f"{reason}; asked again with the server's tool parser off"
            state.on_event(RunWarning(code="reasked_raw", message=message))
        return await self._request(state, replace(self.settings, tool_choice="none"))

    def _opening(self, question: str, history: Sequence[Message] | None) -> list[Message]:
        messages = clean_history(history or ())
        if self.system_prompt and not any(m.get("role") == "system" for m in messages):
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        messages.append({"role": "user", "content": question})
        return messages

    async def _ask(self, state: RunState) -> Settled:
        """The reply to decide from (the server's, rebuilt from its tokens, or asked again)."""
        settings = self._settings_after_calls if state.records else self.settings
        tools = bool(self.toolset.schemas)
        model_name = getattr(self.model, "model_name", None)
        with tracing.chat_span(model_name, settings, self._server, traced=state.traced) as span:
            try:
                response = await self._request(state, settings)
            except ModelHTTPError as error:  # a server-side parse failure discards the reply
                if error.status < 500 or not reaskable(settings, tools=tools):
                    raise
                reply = await self._reask(state, f"the server failed: {error}")
                return Settled(reply, "reasked_raw")
            if state.traced:
                if model_name is None:  # the backend learnt the served model's name on the way
                    model_name = getattr(self.model, "model_name", None)
                    span.rename(f"chat {model_name}")
                span.set(tracing.response_attributes(model_name, response))
        reask = functools.partial(self._reask, state)
        return await settle(response, settings, self.toolset.index, reask, tools=tools)

    async def _request(self, state: RunState, settings: ModelSettings) -> ModelResponse:
        started = time.perf_counter()
        try:
            if self.stream:
                response = await self._ask_streaming(state, settings)
            else:
                response = await self.model.request(state.messages, self.toolset.schemas, settings)
                if state.on_event is not None:
                    content = response.message.get("content")
                    if isinstance(content, str) and content:
                        state.on_event(TextDelta(text=content))
        finally:
            state.timings.model += time.perf_counter() - started
        state.usage.append(response.usage)
        return response

    async def _ask_streaming(self, state: RunState, settings: ModelSettings) -> ModelResponse:
        # A stream that broke after its first chunk (mid_stream) is asked again from the start;
        # the ModelRetry event tells listeners to drop the text they were shown.
        stream = self.model.stream
        for restart in range(_STREAM_RESTARTS + 1):
            try:
                async for event in stream(state.messages, self.toolset.schemas, settings):
                    if isinstance(event, StreamEnd):
                        return event.response
                    if state.on_event is not None:
                        state.on_event(event)
            except ModelConnectionError as error:
                if not error.mid_stream or restart == _STREAM_RESTARTS:
                    raise
                reason = f"{error}; the reply is asked again from the start (drop its text)"
                if state.on_event is not None:
                    state.on_event(ModelRetry(attempt=restart + 1, delay=0.0, reason=reason))
                continue
            break
        raise ModelResponseError("The model's stream ended without a final message")

    def _finish(
        self, state: RunState, response: ModelResponse, parsed: FoxBrainAnswer, step: int
    ) -> RunResult:
        content = response.message.get("content")
        state.messages.append({"role": "assistant", "content": content if content else ""})
        return RunResult(
            answer=parsed.answer or parsed.final_text,
            parsed=parsed,
            messages=state.messages,
            tool_calls=state.records,
            usage=state.usage,
            timings=state.timings,
            steps=step,
        )

    async def _pause(self, state: RunState, paused: PausedRun) -> RunResult:
        assert state.session is not None  # only runs with a session pause
        await state.session.set_paused(paused)
        return RunResult(
            answer="",
            parsed=parse_answer(""),
            messages=state.messages,
            tool_calls=state.records,
            usage=state.usage,
            timings=state.timings,
            steps=paused.step,
            pending=paused.calls,
        )

    async def aclose(self) -> None:
        """Close the model's connections and the toolset's sources (MCP servers)."""
        try:
            await self.toolset.aclose()
        finally:
            await self.model.aclose()

    async def __aenter__(self) -> Agent:
        await self.toolset.aopen()  # MCP servers connect and list their tools
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
