"""``foxagent run``: build an agent from settings, run it with a live view, print the answer."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TextIO

from foxagent._agent import Agent
from foxagent._approval import Approver
from foxagent._events import RunEvent
from foxagent._exceptions import (
    MCPServerError,
    ModelConnectionError,
    ModelError,
    ModelHTTPError,
    RunError,
    StepLimitError,
    UserError,
)
from foxagent._jsonl_trace import JsonlTrace
from foxagent._messages import ModelSettings
from foxagent._prompts import DEFAULT_SYSTEM_PROMPT
from foxagent._run import RunResult
from foxagent._toolset import Toolset
from foxagent.cli._config import RunConfig
from foxagent.cli._console import LiveView
from foxagent.cli._exit import ExitCode
from foxagent.cli._mcp_auth import client_headers
from foxagent.models._base import Model
from foxagent.models.vllm import DEFAULT_BASE_URL, VLLMModel
from foxagent.sessions._session import PendingCall

__all__ = ["run_command"]


def run_command(flags: Mapping[str, Any], *, out: TextIO, err: TextIO) -> int:
    """Run ``foxagent run``: ask the question, show progress on ``err``, print the answer.

    Args:
        flags: the parsed flags of ``foxagent run`` (``None`` for a setting not given, so the
            environment and config files can supply it).
        out: where the answer goes (pretty, or one JSON object with ``json``).
        err: where the live view, approval prompts and errors go.

    Returns:
        ``OK`` answered; ``USAGE`` bad settings or tools; ``UNREACHABLE`` no server or MCP
        server; ``MODEL`` the server or model misbehaved; ``STEP_LIMIT`` no answer in time.
    """
    try:
        config = RunConfig.resolve(flags)
        agent = _build_agent(config, flags.get("model_file"), err)
    except UserError as error:
        err.write(f"foxagent run: {error}\n")
        return ExitCode.USAGE
    view = LiveView(err, echo_text=config.stream and not flags.get("json"))
    trace = JsonlTrace(flags["trace"]) if flags.get("trace") else None
    try:
        result = asyncio.run(_run(agent, str(flags["question"]), view, trace))
    except RunError as error:
        err.write(f"foxagent run: {_advice(error, config)}\n")
        return _exit_code(error)
    except UserError as error:  # e.g. two MCP servers offer tools of the same name
        err.write(f"foxagent run: {error}\n")
        return ExitCode.USAGE
    finally:
        view.close()
        if trace is not None:
            trace.close()
    if flags.get("json"):
        out.write(json.dumps(_as_json(result), ensure_ascii=False, default=str) + "\n")
    else:
        out.write((result.parsed.pretty() if result.parsed.tagged else result.answer) + "\n")
    return ExitCode.OK


async def _run(agent: Agent, question: str, view: LiveView, trace: JsonlTrace | None) -> RunResult:
    def on_event(event: RunEvent) -> None:
        view(event)
        if trace is not None:
            trace(event)

    async with agent:
        return await agent.arun(question, on_event=on_event)


def _build_agent(config: RunConfig, model_file: str | None, err: TextIO) -> Agent:
    if config.max_steps < 1:
        raise UserError(f"--max-steps must be at least 1, got {config.max_steps}.")
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
    if config.base_url is None or model_file is not None:
        model = _local_model(model_file, err)
        if config.system_prompt is None:
            system_prompt = None  # FoxBrain's tag format is beyond a 135M model; it gets its own
    elif request_timeout is None:
        model = VLLMModel(config.base_url, api_key=config.api_key, model_name=config.model)
    else:
        # The whole request, retries included: each attempt and the retry budget alike.
        model = VLLMModel(
            config.base_url,
            api_key=config.api_key,
            model_name=config.model,
            timeout=request_timeout,
            retry_budget=request_timeout,
        )
    return Agent(
        tools=tools,
        model=model,
        approver=_terminal_approver(err),
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


def _terminal_approver(err: TextIO) -> Approver:
    """Ask on the terminal before a tool that requires approval runs (anything but y: no)."""

    async def approve(call: PendingCall) -> bool:
        arguments = json.dumps(call.arguments, ensure_ascii=False)
        err.write(f"  ? {call.name}({arguments}) needs your approval. Run it? [y/N] ")
        err.flush()
        answer = await asyncio.to_thread(sys.stdin.readline)  # the loop keeps running
        return answer.strip().lower() in ("y", "yes")

    return approve


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


def _local_model(model_file: str | None, err: TextIO) -> Model:
    """The embedded default: a small local GGUF model, when no server is configured."""
    from foxagent.models._gguf_cache import pull
    from foxagent.models.local import LocalGGUFModel

    if model_file is None:
        err.write(
            "foxagent run: no server configured (--base-url / FOXAGENT_BASE_URL); using the "
            "local model (SmolLM2-135M on llama.cpp).\n"
        )
        path = pull(progress=lambda message: err.write(f"  {message}\n"))
    else:
        path = Path(model_file)
        if not path.is_file():
            raise UserError(f"--model-file {path} does not exist.")
        err.write(f"foxagent run: using the local model file {path}.\n")
    return LocalGGUFModel(path)


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


def _advice(error: RunError, config: RunConfig) -> str:
    url = config.base_url or DEFAULT_BASE_URL
    if isinstance(error, ModelConnectionError):
        return (
            f"{error}. Is vLLM running at {url}? Start it (see the README) or point "
            "--base-url / FOXAGENT_BASE_URL at it."
        )
    if isinstance(error, ModelHTTPError) and error.status in (401, 403):
        return f"{error}. Check --api-key / FOXAGENT_API_KEY against the server's --api-key."
    if isinstance(error, ModelHTTPError) and error.status == 404:
        return f"{error}. Check --model / FOXAGENT_MODEL against the server's served model name."
    if isinstance(error, StepLimitError):
        return f"{error} Raise --max-steps, or ask a narrower question."
    if isinstance(error, ModelError):
        return f"{error}. The server's log says more."
    return f"{error}"


def _as_json(result: RunResult) -> dict[str, Any]:
    total = result.total_usage
    return {
        "answer": result.answer,
        "parsed": dataclasses.asdict(result.parsed),
        "tool_calls": [dataclasses.asdict(call) for call in result.tool_calls],
        "usage": {
            "requests": [dataclasses.asdict(u) for u in result.usage],
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
