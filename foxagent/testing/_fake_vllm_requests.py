"""FakeVLLMServer's reading of a request: vLLM's checks (pydantic validators,
``_postprocess_messages``, the chat template) and how ``tool_choice`` decides what the output
becomes (no parsing, the llama3_json parser, or a constrained call)."""

from __future__ import annotations

import json
from typing import Any, Literal, TypeAlias

from foxagent._tokens import estimate_tokens
from foxagent.testing._vllm_llama3_json import Generation, old_tool_call_id, server_message

# vLLM 0.32.0's server shapes; "next" differs in its parser only.
CURRENT: tuple[Generation, ...] = ("brace", "next")


def _tool_call(name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": old_tool_call_id(),
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    }


# --- request checks (pydantic validators, _postprocess_messages, the chat template) ----------

_AUTO_TOOLS_DISABLED = (
    '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
)
_NAMED_USAGE = 'Correct usage: `{"type": "function", "function": {"name": "my_function"}}`'


def _tools_problem(body: dict[str, Any]) -> str | None:
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        return "tools: Input should be a valid list"
    for i, tool in enumerate(tools or []):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            return f"tools[{i}]: expected {{'type': 'function', 'function': {{'name': ...}}}}"
    if "tool_choice" not in body or body["tool_choice"] in (None, "none"):
        return None
    choice = body["tool_choice"]
    if tools is None:
        return "When using `tool_choice`, `tools` must be set."
    if choice in ("auto", "required"):
        return None
    if not isinstance(choice, dict):
        return (
            f"Invalid value for `tool_choice`: {choice}! "
            'Only named tools, "none", "auto" or "required" are supported.'
        )
    function = choice.get("function")
    if not isinstance(function, dict):
        return f"Invalid value for `function`: `{function}` in `tool_choice`! {_NAMED_USAGE}"
    if "name" not in function:
        return f"Expected field `name` in `function` in `tool_choice`! {_NAMED_USAGE}"
    name = function["name"]
    if not isinstance(name, str) or not name:
        return f"Invalid `name` in `function`: `{name}` in `tool_choice`! {_NAMED_USAGE}"
    if not any(tool["function"]["name"] == name for tool in tools):
        return "The tool specified in `tool_choice` does not match any of the specified `tools`"
    return None


def _arguments_problem(message: dict[str, Any], generation: Generation) -> str | None:
    # _postprocess_messages json.loads every assistant tool call's arguments before templating.
    for call in message["tool_calls"]:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            return "each assistant tool call needs a 'function' object"
        arguments = function.get("arguments")
        if arguments in (None, "") and generation in CURRENT:
            continue  # newer vLLM maps an empty or missing arguments string to {}
        if not isinstance(arguments, str):
            return f"function.arguments must be a string of JSON, not {type(arguments).__name__}"
        try:
            json.loads(arguments)
        except ValueError as exc:
            return str(exc)  # vLLM passes json's message on as the 400's message
    return None


def _history_problem(messages: list[Any], tools: bool, generation: Generation) -> str | None:
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            return f"messages[{i}]: a message must be an object with a 'role'"
    with_calls = [
        m for m in messages if m["role"] == "assistant" and isinstance(m.get("tool_calls"), list)
    ]
    for message in with_calls:
        if (problem := _arguments_problem(message, generation)) is not None:
            return problem
    if any(len(message["tool_calls"]) > 1 for message in with_calls):
        return "This model only supports single tool-calls at once!"
    after_system = messages[1:] if messages and messages[0]["role"] == "system" else messages
    if tools and not after_system:
        return "Cannot put tools in the first user message when there's no first user message!"
    if not any(message["role"] == "user" for message in messages):
        # Stricter than vLLM, which would template whatever comes first as the user turn.
        return "messages has no user message; the Llama 3.1 JSON chat template needs one"
    return None


def _request_problem(body: Any, model: str, generation: Generation) -> tuple[int, str] | None:
    """The HTTP status and message vLLM would refuse ``body`` with, if any."""
    if not isinstance(body, dict):
        return 400, "the request body must be a JSON object"
    if body.get("model") not in (None, model):
        return 404, f"The model `{body['model']}` does not exist."
    messages = body.get("messages")
    if messages is None:
        return 400, "messages: Field required"
    if not isinstance(messages, list):
        return 400, "messages: Input should be a valid list"
    if body.get("stream_options") is not None and not body.get("stream"):
        return 400, "Stream options can only be defined when stream is true."
    problem = _tools_problem(body) or _history_problem(
        messages, bool(body.get("tools")), generation
    )
    return None if problem is None else (400, problem)


ToolMode: TypeAlias = Literal["plain", "auto", "required", "named"]


def _tool_mode(body: dict[str, Any], *, stream: bool) -> tuple[ToolMode, str]:
    """How vLLM treats the output: no parsing, llama3_json, or a constrained call."""
    tools = body.get("tools") or []
    choice = body.get("tool_choice", "auto" if tools else "none")
    if isinstance(choice, dict):
        return "named", choice["function"]["name"]
    if not tools:
        return "plain", ""  # "required" with an empty tools list behaves like "none"
    if choice == "required":
        return "required", ""
    # An explicit null tool_choice streams through the parser, but the non-streaming path
    # tests `not request.tool_choice` first and returns plain text.
    if choice == "auto" or (choice is None and stream):
        return "auto", ""
    return "plain", ""


def _required_calls(text: str) -> list[dict[str, Any]]:
    """vLLM's ``TypeAdapter(list[FunctionDefinition]).validate_json`` on constrained output."""
    try:
        items = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"tool_choice required: the output is not JSON: {exc}") from None
    if not isinstance(items, list) or not items:
        raise ValueError("tool_choice required: the output must be a non-empty JSON list")
    calls = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise ValueError(f"tool_choice required: item {i} has no string 'name'")
        parameters = item.get("parameters")
        if parameters is not None and not isinstance(parameters, dict):
            raise ValueError(f"tool_choice required: item {i} 'parameters' is not an object")
        calls.append(_tool_call(item["name"], json.dumps(parameters, ensure_ascii=False)))
    return calls


def _explicit_null_choice(body: dict[str, Any]) -> bool:
    return bool(body.get("tools")) and "tool_choice" in body and body["tool_choice"] is None


def _constrained_v032(text: str) -> tuple[str, list[dict[str, Any]]]:
    """vLLM 0.32.0, ``tool_choice`` required or named: the llama3_json parser has a structural
    tag, so the model was constrained to ``{"name": ..., "parameters": ...}`` and the output is
    parsed as in auto mode; the message's content is never null."""
    message, _ = server_message(text, generation="brace")
    calls = message.get("tool_calls", [])
    if calls or not text.strip():
        return "", calls
    return text, []


def _prompt_tokens(body: dict[str, Any]) -> int:
    text = json.dumps(body.get("messages"), ensure_ascii=False)
    if body.get("tools"):
        text += json.dumps(body["tools"], ensure_ascii=False)
    return estimate_tokens(text)


def _include_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage", True) is not False
