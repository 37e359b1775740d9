"""A small GGUF model on this machine's CPU: llama.cpp's server through ``xllamacpp``.

Meant for trying foxagent and testing agents end to end without FoxBrain or a GPU. The default
model is Qwen2.5-Coder-0.5B-Instruct (Q4_K_M, 491 MB; ``model="smollm2-135m"`` or
``"qwen2.5-coder-1.5b"`` for the others), fetched once into the cache by
`foxagent.models._gguf_cache.pull`. ``pip install 'foxagent[local]'`` installs ``xllamacpp``, a
prebuilt llama.cpp; it is imported on first use only. The choice and every step below were
measured on the local suite (``benchmarks/local_models.py``; the numbers are in
``benchmarks/results/local_models.md``).

How a small model is made to call tools, in three parts:

1. **The first reply in the model's own format.** When the model's chat template takes tools
   (Qwen2.5's does; llama.cpp's ``/props`` says so) and ``tool_choice`` is ``"auto"``, the user's
   question goes out with the tools in that template, greedily. Its answer is the reply; when it
   calls a tool instead (Qwen2.5-Coder writes the call as bare or fenced JSON), only the tool's
   name is kept and its arguments are asked for through the schema (2.). Asked this way,
   Qwen2.5-Coder-0.5B chose right far more often than inside the schema, where it answered every
   arithmetic question itself.
2. **The schema.** Every other reply with tools carries a JSON schema (llama.cpp's
   ``response_format``) that allows exactly these replies, narrowed by ``tool_choice``::

       {"name": "<one of the tools>", "parameters": {...that tool's parameters...}}
       {"answer": "<text>"}

   with a short system message listing the tools. A call comes back as its JSON text in
   ``content`` (the shape of a llama3_json call, which the agent loop's recovery turns into a
   tool call); an answer comes back as its text. SmolLM2's template has no tools, so it gets
   the schema for every reply.
3. **An answer grounded in the result.** After a tool result only an answer is allowed (see
   ``answer_after_tool``); the result goes back as a user message that repeats the question
   (``Tool result for calculator: 391`` and "Using this result, answer my question ..."), and
   a short plain result must open the answer (a schema ``pattern``: ``391 ...``). Earlier calls
   go back as assistant text. FoxBrain's own system prompt (the agent's default) is written for
   a 70B reasoning model and is left out; any other system prompt is kept.

The server runs in this process on 127.0.0.1 (a free port), starts on the first request and
stops in `LocalGGUFModel.aclose` (or when the model is garbage-collected, or at exit).
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import os
import re
import threading
import urllib.request
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
You are a helpful assistant. You can call these tools:
{tools}

Reply with JSON only, in one of two forms:
- call a tool: {{"name": "<tool name>", "parameters": {{...}}}}
- answer the user: {{"answer": "<your answer>"}}

When the question asks for something one of the tools does, call that tool, even when you \
think you know the result: never compute, convert or guess yourself what a tool gives. \
Otherwise (greetings, thanks, jokes, general knowledge) answer directly, without a tool. \
Answer in the language of the user's question."""

_AFTER_RESULT = (
    'Using this result, answer my question "{question}" in one short sentence, in the '
    'language of the question, as {{"answer": "..."}}. Do not call the tool again.'
)
# The longest answer the schema allows (characters): a small model may otherwise write until
# max_tokens, which takes a minute on a 2-core machine.
_MAX_ANSWER = 600
# The system message of the reply in the model's own format, when the caller gives none.
_NATIVE_SYSTEM = "You are a helpful assistant. Always reply in the language the user wrote in."
# The longest first reply in the model's own format (tokens): a call takes under 100, and a
# small model caught in a loop ("水的化学式是水的化学式是...") stops within seconds.
_MAX_NATIVE_TOKENS = 400
# A tool result this short, of these characters only, must appear in the answer written after
# it (a schema pattern); the class keeps the pattern inside llama.cpp's regex dialect.
_GROUNDED = re.compile(r"[\w .,:%+-]{1,40}")


def _asks(messages: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the conversation ends with the user's message (the run's first step)."""
    return bool(messages) and messages[-1].get("role") == "user"


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
        self.native_tools = False  # the model's chat template takes tools
        self.lock = threading.Lock()

    def start(self, model_file: Path, threads: int, context: int, seed: int) -> str:
        with self.lock:
            if self.handle is None:
                self.handle = _launch(model_file, threads, context, seed)
                self.url = str(self.handle.listening_address).rstrip("/")
                self.native_tools = _template_takes_tools(self.url)
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
    params.use_jinja = True  # the model's own chat template, with its tools section if any
    try:
        return xllamacpp.Server(params)
    except Exception as error:  # xllamacpp raises plain RuntimeErrors
        raise ModelError(f"llama.cpp could not serve {model_file}: {error}") from None


def _template_takes_tools(url: str) -> bool:
    """Whether the served model's chat template renders tools (llama.cpp's ``/props``)."""
    try:
        with urllib.request.urlopen(url + "/props", timeout=10) as response:
            props = json.loads(response.read())
    except (OSError, ValueError):
        return False
    caps = props.get("chat_template_caps") if isinstance(props, dict) else None
    return bool(isinstance(caps, dict) and caps.get("supports_tools"))


class LocalGGUFModel(Model):
    """A GGUF model served by llama.cpp in this process, with tool calls forced by a JSON schema.

    Example:
        >>> from foxagent_tools.calculator import calculator
        >>> agent = Agent(tools=[calculator], model=LocalGGUFModel())  # doctest: +SKIP
        >>> agent.run("What is 17 * 23? Use the calculator.").answer  # doctest: +SKIP

    Args:
        model_file: the ``.gguf`` to serve; ``None`` serves ``model``.
        model: a known model's name (``"qwen2.5-coder-0.5b"``, see
            `foxagent.models._gguf_cache.MODELS`), fetched into the cache on first use (see
            `foxagent.models._gguf_cache.pull`); ``None``: the default model. Not together
            with ``model_file``.
        threads: CPU threads for llama.cpp (see `default_threads`).
        context: the context window in tokens.
        seed: the sampling seed when the settings give none.
        answer_after_tool: after a tool result that is not an error, allow only an answer (a
            small model otherwise calls the same tool again and again); ``False`` allows
            chains of calls.
        native_tools: when the model's chat template takes tools (Qwen2.5's does, SmolLM2's
            does not) and ``tool_choice`` is ``"auto"``, the reply to the user's question is
            the model's own, with the tools in its template: a call (as JSON text) or an
            answer; the JSON schema is used after a tool result, or to redo a call whose
            arguments were not JSON. ``False``: the schema for every reply.
    """

    def __init__(
        self,
        model_file: str | Path | None = None,
        *,
        model: str | None = None,
        threads: int | None = None,
        context: int = 4096,
        seed: int = 42,
        answer_after_tool: bool = True,
        native_tools: bool = True,
    ) -> None:
        self.model_file = Path(model_file) if model_file is not None else None
        if self.model_file is not None and not self.model_file.is_file():
            raise UserError(f"LocalGGUFModel: no model file at {self.model_file}")
        if self.model_file is not None and model is not None:
            raise UserError("LocalGGUFModel: give a model_file or a model name, not both.")
        self.spec = _gguf_cache.model_spec(model) if model is not None else None
        self.threads = threads if threads is not None else default_threads()
        if self.threads < 1:
            raise UserError(f"LocalGGUFModel: threads must be at least 1, got {self.threads}")
        self.context = context
        self.seed = seed
        self.answer_after_tool = answer_after_tool
        self.native_tools = native_tools
        self._server = _Server()
        self._transport: VLLMModel | None = None
        self._finalizer = weakref.finalize(self, self._server.stop)

    def __repr__(self) -> str:
        spec = self.spec or _gguf_cache.DEFAULT_MODEL
        name = self.model_file.name if self.model_file else spec.file_name
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
        native = self.native_tools and self._server.native_tools
        if native and tools and settings.tool_choice == "auto" and _asks(messages):
            # The model's own tool format decides; the schema only fixes a call it botched.
            reply, redo = await self._native(transport, messages, tools, settings)
            if reply is not None:
                return reply
            # A known tool: its call through the schema; a call to no tool there is: an answer.
            choice = {"type": "function", "function": {"name": redo}} if redo else "none"
            settings = dataclasses.replace(settings, tool_choice=choice)
        response = await transport.request(
            render_messages(messages, tools),
            (),
            self._settings(
                settings,
                tools,
                answer_only=answer_only,
                answer_text=grounded_answer(messages) if answer_only else None,
            ),
        )
        if not tools:
            return response
        return _decode(response)

    async def _native(
        self,
        transport: VLLMModel,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]],
        settings: ModelSettings,
    ) -> tuple[ModelResponse | None, str]:
        """The model's own reply, with the tools in its own chat template: its answer
        (``(reply, "")``), or ``(None, name)`` when it called a tool: the caller then asks
        for that call's arguments through the schema (measured on the local suite,
        a small model's own arguments are less often right: "5 miles * 1.609 kilometers")."""
        conversation = [
            dict(m)
            for m in messages
            if not (m.get("role") == "system" and m.get("content") == DEFAULT_SYSTEM_PROMPT)
        ]
        if not any(m.get("role") == "system" for m in conversation):
            conversation.insert(0, {"role": "system", "content": _NATIVE_SYSTEM})
        native = dataclasses.replace(
            settings,
            seed=settings.seed if settings.seed is not None else self.seed,
            temperature=0.0,  # the choice a small model is surest of
            max_tokens=min(settings.max_tokens or _MAX_NATIVE_TOKENS, _MAX_NATIVE_TOKENS),
            stop=(),
            generated_tokens=False,
            strict_tools=False,
        )
        response = await transport.request(conversation, tools, native)
        names = {t.get("function", t)["name"] for t in tools}
        name = _native_call(response.message, names)
        if name == "":
            return None, ""
        if name is None:
            text = _text(response.message.get("content")).strip()
            message = {"role": "assistant", "content": text}
            return dataclasses.replace(response, message=message), ""
        return None, name

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
        model_file = self.model_file or _gguf_cache.pull(spec=self.spec)
        return self._server.start(model_file, self.threads, self.context, self.seed)

    def _settings(
        self,
        settings: ModelSettings,
        tools: Sequence[Mapping[str, Any]],
        *,
        answer_only: bool,
        answer_text: Mapping[str, Any] | None = None,
    ) -> ModelSettings:
        seed = settings.seed if settings.seed is not None else self.seed
        if not tools:
            return dataclasses.replace(settings, seed=seed)
        schema = {
            "type": "json_schema",
            "json_schema": {
                "schema": _choice_schema(settings.tool_choice, tools, answer_only, answer_text)
            },
        }
        extra = {**settings.extra_body, "response_format": schema}
        # Stop strings could cut the JSON short; the schema ends the reply by itself.
        return dataclasses.replace(settings, seed=seed, stop=(), extra_body=extra)


def _choice_schema(
    choice: str | Mapping[str, Any],
    tools: Sequence[Mapping[str, Any]],
    answer_only: bool,
    answer_text: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The reply schema that honours ``tool_choice`` as a vLLM server would: ``"none"`` allows
    only an answer, ``"required"`` only a call, a named function only a call to it.
    ``answer_text``: the answer's string schema (`grounded_answer`)."""
    if choice == "none" or (answer_only and choice == "auto"):
        return reply_schema((), answer_text=answer_text)
    if isinstance(choice, Mapping):
        wanted = (choice.get("function") or {}).get("name")
        named = [t for t in tools if t.get("function", t).get("name") == wanted]
        if not named:
            raise UserError(f"tool_choice names {wanted!r}, which is not one of the tools.")
        return reply_schema(named, answer=False)
    return reply_schema(tools, answer=choice != "required", answer_text=answer_text)


def reply_schema(
    tools: Sequence[Mapping[str, Any]],
    *,
    answer: bool = True,
    answer_text: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON schema of a reply: a call to one of ``tools``, or ``{"answer": text}``.

    With no tools, only the answer; with ``answer=False`` (and tools), only a call.
    ``answer_text`` is the answer's string schema (default: at most `_MAX_ANSWER` characters).
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
        "properties": {"answer": answer_text or {"type": "string", "maxLength": _MAX_ANSWER}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    if not branches:
        return answer_schema
    return {"anyOf": [*branches, answer_schema] if answer else branches}


def render_messages(
    messages: Sequence[Mapping[str, Any]], tools: Sequence[Mapping[str, Any]]
) -> list[Message]:
    """The conversation in a shape any chat template takes (system, user, assistant only)."""
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
        question = _question(messages)
        rendered[-1]["content"] += "\n" + _AFTER_RESULT.format(question=question)
    return rendered


def _question(messages: Sequence[Mapping[str, Any]]) -> str:
    """The user's last message (empty when there is none)."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return _text(message.get("content"))
    return ""


def grounded_answer(messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The answer's string schema after the conversation's last tool result: a short plain
    result (``391``, ``12.5``) must open the answer (``391 is 17 times 23``); anything else
    only bounds the answer's length. A result that may appear anywhere let a small model write
    digits until the answer's end ("18372045...") and never reach it."""
    result = _text(messages[-1].get("content")).strip() if messages else ""
    if messages and messages[-1].get("role") == "tool" and _GROUNDED.fullmatch(result):
        # Each character in a class of its own: no escape is needed, whatever it is; the
        # text around it never holds a quote or a backslash, so the JSON stays valid.
        literal = "".join(f"[{c}]" if not c.isalnum() else c for c in result)
        return {"type": "string", "pattern": f'^{literal}[^"\\\\]{{0,300}}$'}
    return {"type": "string", "maxLength": _MAX_ANSWER}


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


_NAMED = re.compile(r'"name"\s*:\s*"([^"]+)"')


def _native_call(message: Mapping[str, Any], names: set[str]) -> str | None:
    """The tool a reply in the model's own format calls: the server's parsed ``tool_calls``,
    else a ``"name": "<tool>"`` in its text (Qwen2.5-Coder writes its calls as bare or fenced
    JSON, not inside ``<tool_call>`` tags). ``""``: a call to a tool that is not in
    ``names`` (``{"name": "hello", ...}``); ``None``: no call."""
    for call in message.get("tool_calls") or ():
        name = (call.get("function") or {}).get("name")
        return str(name) if name in names else ""
    text = _text(message.get("content")).strip().removeprefix("```json").lstrip()
    named = _NAMED.search(text)
    if named is None:
        return None
    if named.group(1) in names:
        return named.group(1)
    return "" if text.startswith("{") else None


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
