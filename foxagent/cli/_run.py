"""``foxagent run``: build an agent from settings, run it with a live view, print the answer.

stdout carries the answer alone (or, with ``--json``, one JSON object: the result or
``{"error": ...}``); everything else (which model is used, the live view, approval prompts,
``--steps``' structured view, errors) goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import re
import sys
import threading
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from foxagent._agent import Agent
from foxagent._approval import Approver
from foxagent._environment import DEFAULT_BASE_URL
from foxagent._events import RunEvent
from foxagent._exceptions import (
    MCPServerError,
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    ModelTimeoutError,
    RunError,
    StepLimitError,
    UserError,
)
from foxagent._jsonl_trace import JsonlTrace
from foxagent._messages import ModelSettings
from foxagent._prompts import DEFAULT_SYSTEM_PROMPT
from foxagent._run import RunResult, result_document
from foxagent._toolset import Toolset
from foxagent.cli._backend import Backend, announce_backend, connect_problem
from foxagent.cli._config import RunConfig
from foxagent.cli._console import LiveView
from foxagent.cli._exit import ExitCode, json_error
from foxagent.cli._mcp_auth import client_headers
from foxagent.models._base import Model
from foxagent.models.vllm import VLLMModel
from foxagent.sessions._session import PendingCall

__all__ = ["run_command"]

# llama.cpp's refusal of a prompt longer than its context.
_CONTEXT_EXCEEDED = re.compile(
    r"request \((\d+) tokens\) exceeds the available context size \((\d+) tokens\)"
)


@dataclass(frozen=True)
class _Failure:
    """How a run ended when it did not answer: for stderr, and for ``--json``."""

    kind: str
    message: str
    code: ExitCode


def run_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    """Run ``foxagent run``: ask the question, show progress on ``err``, print the answer.

    Args:
        flags: the parsed flags of ``foxagent run`` (``None`` for a setting not given, so the
            environment and config files can supply it).
        out: where the answer goes (the answer text alone, or one JSON object with ``json``).
        err: where the backend line, the live view, approval prompts and errors go.

    Returns:
        ``OK`` answered; ``USAGE`` bad settings or tools; ``UNREACHABLE`` no server or MCP
        server; ``MODEL`` the server or model misbehaved; ``STEP_LIMIT`` no answer in time;
        ``INTERRUPTED`` Ctrl-C (one line on ``err``, no traceback).
    """
    as_json = bool(flags.get("json"))
    view = LiveView(err, out=out, echo_text=bool(flags.get("stream")) and not as_json)
    trace: JsonlTrace | None = None
    backend: Backend | None = None
    config: RunConfig | None = None
    failure: _Failure | None = None
    result: RunResult | None = None
    try:
        question = str(flags.get("question") or "")
        if not question.strip():
            raise UserError(
                "the question is empty. Usage: foxagent run [options] QUESTION "
                "(see foxagent run --help)."
            )
        config = RunConfig.resolve(flags)
        view.echo_text = config.stream and not as_json
        _check_numbers(config)
        backend = announce_backend("run", flags, config, err)
        agent = _build_agent(config, backend, view, err)
        trace = JsonlTrace(flags["trace"]) if flags.get("trace") else None
        result = asyncio.run(_run(agent, question, view, trace))
    except KeyboardInterrupt:
        failure = _Failure("Interrupted", "interrupted", ExitCode.INTERRUPTED)
    except RunError as error:
        message = _advice(error, config, backend)
        failure = _Failure(type(error).__name__, message, _exit_code(error))
    except UserError as error:  # bad settings, or e.g. two MCP servers offer the same tool name
        failure = _Failure("UserError", str(error), ExitCode.USAGE)
    finally:
        view.close()  # the spinner goes before anything else is written
        if trace is not None:
            trace.close()
    if failure is not None:
        err.write(f"foxagent run: {failure.message}\n")
        if as_json:
            out.write(json_error(failure.kind, failure.message, failure.code) + "\n")
        return failure.code
    assert result is not None
    if as_json:
        out.write(json.dumps(result_document(result), ensure_ascii=False, default=str) + "\n")
        return ExitCode.OK
    if flags.get("steps") and result.parsed.tagged:
        err.write(result.parsed.pretty() + "\n")
    view.show_answer(result.answer)
    return ExitCode.OK


async def _run(agent: Agent, question: str, view: LiveView, trace: JsonlTrace | None) -> RunResult:
    def on_event(event: RunEvent) -> None:
        view(event)
        if trace is not None:
            trace(event)

    try:
        async with agent:
            return await agent.arun(question, on_event=on_event)
    finally:
        view.close()  # its spinner is a task of this loop


def _check_numbers(config: RunConfig) -> None:
    """Refuse numbers no run can use, before any model is looked for or loaded."""
    if config.max_steps < 1:
        raise UserError(f"--max-steps must be at least 1, got {config.max_steps}.")
    tokens = config.max_tokens  # a config file may hold anything
    if tokens is not None and (type(tokens) is not int or tokens < 1):
        raise UserError(f"--max-tokens must be at least 1 (tokens per reply), got {tokens!r}.")
    _request_timeout(config.request_timeout)


def _build_agent(config: RunConfig, backend: Backend, view: LiveView, err: TextIO) -> Agent:
    request_timeout = _request_timeout(config.request_timeout)
    settings = ModelSettings()
    if config.temperature is not None:
        settings = dataclasses.replace(settings, temperature=config.temperature)
    if config.max_tokens is not None:
        settings = dataclasses.replace(settings, max_tokens=config.max_tokens)
    tools = Toolset.load(config.tools)
    for server in config.mcp:  # started (or reached) when the run begins
        # FOXAGENT_MCP_TOKEN, if set, goes to every MCP server URL (`foxagent mcp serve`'s token).
        tools = tools + Toolset.from_mcp(server, headers=client_headers(server))
    settings = dataclasses.replace(
        settings,
        tool_choice=_tool_choice(config.tool_choice, tools),
        strict_tools=config.strict_tools,
    )
    model: Model
    system_prompt = _system_prompt(config)
    if backend.url is None:
        model = _local_model(backend, err)
        if config.system_prompt is None:
            system_prompt = None  # FoxBrain's tag format is beyond a 135M model; it gets its own
    elif request_timeout is None:
        model = VLLMModel(backend.url, api_key=config.api_key, model_name=config.model)
    else:
        # The whole request, retries included: each attempt and the retry budget alike.
        model = VLLMModel(
            backend.url,
            api_key=config.api_key,
            model_name=config.model,
            timeout=request_timeout,
            retry_budget=request_timeout,
        )
    return Agent(
        tools=tools,
        model=model,
        approver=_terminal_approver(view),
        system_prompt=system_prompt,
        max_steps=config.max_steps,
        settings=settings,
        stream=config.stream,
    )


def _request_timeout(seconds: Any) -> float | None:
    """``--request-timeout`` checked (a config file may hold anything); ``None``: not set."""
    if seconds is None:
        return None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise UserError(
            "--request-timeout (FOXAGENT_REQUEST_TIMEOUT, request_timeout in a config file) "
            f"must be a positive number of seconds, got {seconds!r}."
        )
    return float(seconds)


def _terminal_approver(view: LiveView) -> Approver:
    """Ask on the terminal before a tool that requires approval runs (anything but y: no)."""

    async def approve(call: PendingCall) -> bool:
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        view.prompt(f"  ? {call.name}({arguments}) needs your approval. Run it? [y/N] ")
        stdin = sys.stdin
        answer = await _read_line(stdin)  # the loop keeps running
        view.answered(typed_on_terminal=_isatty(stdin))
        return answer.strip().lower() in ("y", "yes")

    return approve


async def _read_line(stdin: TextIO) -> str:
    """One line from ``stdin``, read in a daemon thread: after Ctrl-C the run ends at once,
    where a thread of the loop's executor would keep the process waiting for Enter."""
    loop = asyncio.get_running_loop()
    line: asyncio.Future[str] = loop.create_future()

    def settle(text: str) -> None:
        if not line.done():
            line.set_result(text)

    def read() -> None:
        try:
            text = stdin.readline()
        except (OSError, ValueError):
            text = ""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(settle, text)

    threading.Thread(target=read, name="foxagent-approval", daemon=True).start()
    return await line


def _isatty(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _tool_choice(choice: str, tools: Toolset) -> str | dict[str, Any]:
    """``--tool-choice`` as the request field: a mode, or a loaded tool's name to force it."""
    if choice in ("auto", "required", "none"):
        return choice
    if choice in tools.names or tools.sources:  # MCP tools are known only once connected
        return {"type": "function", "function": {"name": choice}}
    loaded = ", ".join(tools.names) or "none"
    raise UserError(
        f"--tool-choice {choice!r} is neither auto, required, none nor a loaded tool "
        f"(loaded: {loaded})."
    )


def _local_model(backend: Backend, err: TextIO) -> Model:
    """The embedded model: a small local GGUF model on llama.cpp, in this process."""
    from foxagent.models._gguf_cache import pull
    from foxagent.models.local import LocalGGUFModel

    if backend.model_file is None:
        path = pull(progress=lambda message: err.write(f"  {message}\n"))
    else:
        path = Path(backend.model_file)
        if not path.is_file():
            raise UserError(f"--model-file {path} does not exist.")
    if backend.context_size is None:
        return LocalGGUFModel(path)
    return LocalGGUFModel(path, context=backend.context_size)


def _system_prompt(config: RunConfig) -> str | None:
    if config.no_system_prompt:
        return None
    prompt = config.system_prompt
    if prompt is None:
        return DEFAULT_SYSTEM_PROMPT
    if prompt.startswith("@"):
        path = Path(prompt[1:])
        try:
            return path.read_text(encoding="utf-8")
        except OSError as error:
            raise UserError(
                f"Cannot read the system prompt file {path}: {error.strerror}"
            ) from None
    return prompt


def _exit_code(error: RunError) -> ExitCode:
    """The exit code for a run that ended in ``error``."""
    if isinstance(error, (ModelConnectionError, MCPServerError)):
        return ExitCode.UNREACHABLE
    if isinstance(error, StepLimitError):
        return ExitCode.STEP_LIMIT
    return ExitCode.MODEL


def _advice(error: RunError, config: RunConfig | None, backend: Backend | None) -> str:
    """What to tell the user about ``error``: what failed, named, and what to do."""
    if backend is not None and backend.local:
        return _local_advice(error, config)
    url = backend.url if backend is not None and backend.url else DEFAULT_BASE_URL
    if isinstance(error, ModelTimeoutError):
        return (
            f"{_said(error)}. Raise --request-timeout (FOXAGENT_REQUEST_TIMEOUT) or check the "
            "server's load."
        )
    if isinstance(error, ModelConnectionError):
        problem = connect_problem(url)
        if problem is None:  # it answers now: the connection broke on the way
            return (
                f"{_said(error)}. The server at {url} accepts connections now; its log says more."
            )
        return (
            f"cannot connect to {url}: {problem} — is the server running? Start one with "
            f"`foxagent serve MODEL_PATH` (it listens on {DEFAULT_BASE_URL}) or point "
            "--base-url / FOXAGENT_BASE_URL at yours."
        )
    if isinstance(error, ModelHTTPError) and error.status in (401, 403):
        return f"{_said(error)}. Check --api-key / FOXAGENT_API_KEY against the server's --api-key."
    if isinstance(error, ModelHTTPError) and error.status == 404:
        path = urllib.parse.urlsplit(url).path.rstrip("/")
        if not path.endswith("/v1"):
            return (
                f"{url} answered HTTP 404: the OpenAI API is not at that address. A vLLM base "
                f"URL ends in /v1: try --base-url {url.rstrip('/')}/v1."
            )
        return (
            f"{_said(error)}. Check --model / FOXAGENT_MODEL against the server's served model "
            "name."
        )
    if isinstance(error, StepLimitError):
        return f"{error} Raise --max-steps, or ask a narrower question."
    if isinstance(error, ModelError):
        return f"{_said(error)}. The server's log says more."
    return f"{error}"


def _said(error: BaseException) -> str:
    """An error's message, ready for a sentence to follow it."""
    return str(error).rstrip(". ")


def _local_advice(error: RunError, config: RunConfig | None) -> str:
    """Advice when the embedded model failed (its server runs in this process: no log)."""
    if isinstance(error, StepLimitError):
        return f"{error} Raise --max-steps, or ask a narrower question."
    if not isinstance(error, ModelError):
        return f"{error}"
    if isinstance(error, ModelHTTPError) and (found := _CONTEXT_EXCEEDED.search(error.body)):
        request, context = int(found.group(1)), int(found.group(2))
        max_tokens = config.max_tokens if config and config.max_tokens else None
        reply = max_tokens or ModelSettings().max_tokens or 0
        suggested = 1 << (request + reply - 1).bit_length()
        return (
            f"the question is too long for the embedded model: with the tools and instructions "
            f"it is {request} tokens, and the model's context is {context} tokens. Ask a shorter "
            f"question, or give the model a larger context with --context-size {suggested} "
            "(it costs memory and time)."
        )
    return f"the embedded model (llama.cpp in this process) failed: {error}"
