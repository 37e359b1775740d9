"""A small GGUF model on this machine's CPU: llama.cpp's server through ``xllamacpp``.

Meant for trying foxagent and testing agents end to end without FoxBrain or a GPU. The default
model is SmolLM2-135M-Instruct (98 MB, fetched once into the cache by
`foxagent.models._gguf_cache.pull`). ``pip install 'foxagent[local]'`` installs
``xllamacpp``, a prebuilt llama.cpp; it is imported on first use only.

How a small model is made to call tools. SmolLM2's chat template has no tools and the model
never emits a call on its own, so when tools are offered each request carries a JSON schema
(llama.cpp's ``response_format``) that allows exactly two kinds of reply::

    {"name": "<one of the tools>", "parameters": {...that tool's parameters...}}
    {"answer": "<text>"}

and a short system message lists the tools and says when to use which. A call comes back as its
JSON text in ``content`` (the shape of a llama3_json call, which the agent loop's recovery turns
into a tool call); an answer comes back as its text. Tool results go back to the model as user
messages (``Tool result for calculator: 391``) and earlier calls as assistant text, since the
template knows neither ``tool`` messages nor ``tool_calls``. FoxBrain's own system prompt (the
agent's default) is written for a 70B reasoning model and is left out; any other system prompt is
kept.

The server runs in this process on 127.0.0.1 (a free port), starts on the first request and
stops in `LocalGGUFModel.aclose` (or when the model is garbage-collected, or at exit).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from foxagent._exceptions import ModelError, UserError
from foxagent._messages import Message, ModelResponse, ModelSettings
from foxagent._prompts import DEFAULT_SYSTEM_PROMPT
from foxagent.models import _gguf_cache
from foxagent.models._base import Model
from foxagent.models.vllm import VLLMModel

__all__ = ["LocalGGUFModel", "default_threads"]

_INSTALL_HINT = "pip install 'foxagent[local]'"

_TOOLS_PROMPT = """\
You are a helpful assistant with these tools:
{tools}

Reply with JSON only.
- If a tool is needed and its result is not in the conversation yet, call it: \
{{"name": "<tool name>", "parameters": {{...}}}}
- Otherwise answer the user: {{"answer": "<your answer>"}}"""

_AFTER_RESULT = (
    "The tool result is above. Do not call the tool again: answer the user's question with it, "
    'as {"answer": "..."}.'
)


def default_threads() -> int:
    """1 thread on machines with 2 cores or fewer (llama.cpp's spin-waiting threads fight the
    server's own there), else one less than the cores, at most 4."""
    cores = os.cpu_count() or 1
    return 1 if cores <= 2 else min(4, cores - 1)


class _Server:
    """llama.cpp's server in this process; dropping the ``xllamacpp.Server`` stops it."""

    def __init__(self) -> None:
        self.handle: Any = None
        self.url = ""
        self.lock = threading.Lock()

    def start(self, model_file: Path, threads: int, context: int, seed: int) -> str:
        with self.lock:
            if self.handle is None:
                self.handle = _launch(model_file, threads, context, seed)
                self.url = str(self.handle.listening_address).rstrip("/")
            return self.url

    def stop(self) -> None:
        with self.lock:
            self.handle = None  # xllamacpp's destructor stops the loop and frees the model
            self.url = ""


def _launch(model_file: Path, threads: int, context: int, seed: int) -> Any:
    try:
        xllamacpp: Any = importlib.import_module("xllamacpp")  # untyped: Any at the seam
    except ImportError:
        raise UserError(f"LocalGGUFModel needs the xllamacpp package: {_INSTALL_HINT}") from None
    params: Any = xllamacpp.CommonParams()
    params.model.path = str(model_file)
    params.n_ctx = context
    params.n_parallel = 1
    params.cpuparams.n_threads = threads
    params.cpuparams_batch.n_threads = threads
    params.sampling.seed = seed
    params.hostnames = ["127.0.0.1"]
    params.port = 0  # the OS picks a free port; listening_address reports it
    params.verbosity = -1
    try:
        return xllamacpp.Server(params)
    except Exception as error:  # xllamacpp raises plain RuntimeErrors
        raise ModelError(f"llama.cpp could not serve {model_file}: {error}") from None


class LocalGGUFModel(Model):
    """A GGUF model served by llama.cpp in this process, with tool calls forced by a JSON schema.

    Example:
        >>> from foxagent_tools.calculator import calculator
        >>> agent = Agent(tools=[calculator], model=LocalGGUFModel())  # doctest: +SKIP
        >>> agent.run("What is 17 * 23? Use the calculator.").answer  # doctest: +SKIP

    Args:
        model_file: the ``.gguf`` to serve; ``None`` fetches SmolLM2-135M-Instruct into the
            cache on first use (see `foxagent.models._gguf_cache.pull`).
        threads: CPU threads for llama.cpp (see `default_threads`).
        context: the context window in tokens.
        seed: the sampling seed when the settings give none.
        answer_after_tool: after a tool result that is not an error, allow only an answer (a
            small model otherwise calls the same tool again and again); ``False`` allows
            chains of calls.
    """

    def __init__(
        self,
        model_file: str | Path | None = None,
        *,
        threads: int | None = None,
        context: int = 4096,
        seed: int = 42,
        answer_after_tool: bool = True,
    ) -> None:
        self.model_file = Path(model_file) if model_file is not None else None
        if self.model_file is not None and not self.model_file.is_file():
            raise UserError(f"LocalGGUFModel: no model file at {self.model_file}")
        self.threads = threads if threads is not None else default_threads()
        if self.threads < 1:
            raise UserError(f"LocalGGUFModel: threads must be at least 1, got {self.threads}")
        self.context = context
        self.seed = seed
        self.answer_after_tool = answer_after_tool
        self._server = _Server()
        self._transport: VLLMModel | None = None
        self._finalizer = weakref.finalize(self, self._server.stop)

    def __repr__(self) -> str:
        name = self.model_file.name if self.model_file else _gguf_cache.DEFAULT_MODEL.file_name
        return f"LocalGGUFModel({name!r}, threads={self.threads}, context={self.context})"

    @property
    def base_url(self) -> str | None:
        """The running server's ``/v1`` URL, or ``None`` before the first request."""
        return self._server.url + "/v1" if self._server.url else None

    async def request(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> ModelResponse:
        transport = await self._start()
        answer_only = self.answer_after_tool and _after_result(messages)
        response = await transport.request(
            render_messages(messages, tools),
            (),
            self._settings(settings, tools, answer_only=answer_only),
        )
        if not tools:
            return response
        return _decode(response)

    async def aclose(self) -> None:
        """Close the HTTP session and stop the server (the next request starts it again)."""
        transport, self._transport = self._transport, None
        if transport is not None:
            await transport.aclose()
        await asyncio.to_thread(self._server.stop)

    async def _start(self) -> VLLMModel:
        if self._transport is None or not self._server.url:
            url = await asyncio.to_thread(self._launch)
            if self._transport is not None:
                await self._transport.aclose()
            self._transport = VLLMModel(url + "/v1", api_key="", model_name="local", max_retries=0)
        return self._transport

    def _launch(self) -> str:
        model_file = self.model_file or _gguf_cache.pull()
        return self._server.start(model_file, self.threads, self.context, self.seed)

    def _settings(
        self, settings: ModelSettings, tools: Sequence[Mapping[str, Any]], *, answer_only: bool
    ) -> ModelSettings:
        seed = settings.seed if settings.seed is not None else self.seed
        if not tools:
            return dataclasses.replace(settings, seed=seed)
        schema = {
            "type": "json_schema",
            "json_schema": {"schema": _choice_schema(settings.tool_choice, tools, answer_only)},
        }
        extra = {**settings.extra_body, "response_format": schema}
        # Stop strings could cut the JSON short; the schema ends the reply by itself.
        return dataclasses.replace(settings, seed=seed, stop=(), extra_body=extra)


def _choice_schema(
    choice: str | Mapping[str, Any], tools: Sequence[Mapping[str, Any]], answer_only: bool
) -> dict[str, Any]:
    """The reply schema that honours ``tool_choice`` as a vLLM server would: ``"none"`` allows
    only an answer, ``"required"`` only a call, a named function only a call to it."""
    if choice == "none" or (answer_only and choice == "auto"):
        return reply_schema(())
    if isinstance(choice, Mapping):
        wanted = (choice.get("function") or {}).get("name")
        named = [t for t in tools if t.get("function", t).get("name") == wanted]
        if not named:
            raise UserError(f"tool_choice names {wanted!r}, which is not one of the tools.")
        return reply_schema(named, answer=False)
    return reply_schema(tools, answer=choice != "required")


def reply_schema(tools: Sequence[Mapping[str, Any]], *, answer: bool = True) -> dict[str, Any]:
    """The JSON schema of a reply: a call to one of ``tools``, or ``{"answer": text}``.

    With no tools, only the answer; with ``answer=False`` (and tools), only a call.
    """
    branches: list[dict[str, Any]] = []
    for tool in tools:
        function = tool.get("function", tool)
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        branches.append(
            {
                "type": "object",
                "properties": {"name": {"const": function["name"]}, "parameters": parameters},
                "required": ["name", "parameters"],
                "additionalProperties": False,
            }
        )
    answer_schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    if not branches:
        return answer_schema
    return {"anyOf": [*branches, answer_schema] if answer else branches}


def render_messages(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> list[Message]:
    """The conversation in a shape SmolLM2's template takes (system, user, assistant only)."""
    rendered: list[Message] = []
    systems = [
        str(m.get("content") or "")
        for m in messages
        if m.get("role") == "system" and m.get("content") != DEFAULT_SYSTEM_PROMPT
    ]
    if tools:
        systems.insert(0, _TOOLS_PROMPT.format(tools=_describe(tools)))
    system = "\n\n".join(s for s in systems if s)
    if system:
        rendered.append({"role": "system", "content": system})
    for message in messages:
        role = message.get("role")
        if role == "system":
            continue
        if role == "tool":
            name = message.get("name") or "the tool"
            rendered.append(
                {"role": "user", "content": f"Tool result for {name}: {message.get('content')}"}
            )
        elif role == "assistant":
            rendered.append({"role": "assistant", "content": _assistant_text(message)})
        else:
            rendered.append({"role": str(role), "content": _text(message.get("content"))})
    if tools and messages and messages[-1].get("role") == "tool":
        rendered[-1]["content"] += "\n" + _AFTER_RESULT
    return rendered


def _after_result(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the conversation ends with a tool result that is not an error."""
    if not messages or messages[-1].get("role") != "tool":
        return False
    return not _text(messages[-1].get("content")).startswith("Error")


def _describe(tools: Sequence[Mapping[str, Any]]) -> str:
    lines = []
    for tool in tools:
        function = tool.get("function", tool)
        lines.append(f"- {function['name']}: {_summary(function.get('description'))}")
        properties = (function.get("parameters") or {}).get("properties") or {}
        for name, schema in properties.items():
            about = _summary(schema.get("description")) if isinstance(schema, Mapping) else ""
            lines.append(f"  - parameter {name}: {about}".rstrip(": "))
    return "\n".join(lines)


def _summary(description: Any) -> str:
    """The first paragraph of a description, on one line."""
    return " ".join(str(description or "").strip().split("\n\n")[0].split())


def _assistant_text(message: Mapping[str, Any]) -> str:
    calls = message.get("tool_calls") or []
    if not calls:
        return _text(message.get("content"))
    rendered = []
    for call in calls:
        function = call.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            parameters = json.loads(arguments) if isinstance(arguments, str) else arguments
        except ValueError:
            parameters = arguments
        rendered.append(
            json.dumps({"name": function.get("name"), "parameters": parameters}, ensure_ascii=False)
        )
    return "\n".join(rendered)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # OpenAI content parts
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, Mapping))
    return "" if content is None else str(content)


def _decode(response: ModelResponse) -> ModelResponse:
    """A schema-shaped reply → a call's JSON text, or the answer's text."""
    content = response.message.get("content")
    try:
        data = json.loads(content) if isinstance(content, str) else None
    except ValueError:
        data = None  # cut off at max_tokens: the loop's recovery sees the raw text
    if not isinstance(data, dict):
        return response
    if "answer" in data:
        text = str(data["answer"])
    elif "name" in data:
        call = {"name": data["name"], "parameters": data.get("parameters") or {}}
        text = json.dumps(call, ensure_ascii=False)
    else:
        return response
    message = {"role": "assistant", "content": text}
    return dataclasses.replace(response, message=message)
