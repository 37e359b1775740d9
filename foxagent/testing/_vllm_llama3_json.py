"""Exact, non-streaming emulation of vLLM's ``llama3_json`` tool-call parser.

vLLM started with ``--enable-auto-tool-choice --tool-call-parser llama3_json``
turns the model's raw text into an assistant message. Three generations of
``Llama3JsonToolParser.extract_tool_calls`` disagree on many real outputs, so
tests (and the scripted server in ``foxagent.testing``) need all three:

``"prefix"`` (G1, v0.6.3 to v0.9.2)
    Tool mode only when the text *starts* with ``<|python_tag|>`` or ``{``.
    Objects are decoded back to back with ``JSONDecoder.raw_decode`` (which
    does not skip whitespace) and the cursor then jumps exactly two characters
    (``len("; ")``). Any exception turns the whole text into content. A quirk
    that follows: up to two characters after the last object are tolerated,
    and a text that is exactly ``<|python_tag|>`` reports ``tools_called``
    with no calls at all.
``"regex"`` (G2, v0.10.0 to v0.11.1, vLLM PR #19024)
    Quick check (``<|python_tag|>`` or ``{`` anywhere), then the FIRST match of
    a regex for "brace object with at most one nested level, optionally joined
    to more by ``;``". The match is split on every ``;`` (even inside strings)
    and each piece goes through ``json.loads``. Text around it is discarded.
``"brace"`` (G3, vLLM PR #27701, late 2025 to vLLM 0.33.0)
    Quick check as in G2, then ``raw_decode`` at every ``{`` that lies beyond
    the end of the previous decoded object. The bound check is
    ``start <= end`` with an exclusive ``end``, so a ``{`` right after a ``}``
    is skipped. Any decode error or missing key anywhere makes the whole text
    content, even when earlier calls decoded.

``"next"`` (G4, vLLM main after PR #51577, not released up to 0.33.0)
    Emulated in ``foxagent.testing._vllm_llama3_next`` (see there): prose before the first
    call is content next to the calls, non-call braces are content, truncated arguments are
    closed into valid JSON and coerced to the tool's schema. The rest of this docstring is
    about the first three generations.

In every generation the object needs ``name`` and ``arguments`` or
``parameters`` (``arguments`` wins); the chosen value, whatever its JSON type,
is re-serialised with ``json.dumps``. ``name`` must be a string (vLLM's
pydantic ``FunctionCall`` rejects anything else, which the parser's blanket
``except`` turns into plain content).

ASCII escaping of the dumped arguments (``ensure_ascii``) by default:

* ``prefix``: True. vLLM 0.6.6 (the version foxagent's seed pins) dumps with
  the default ``ensure_ascii=True``; PR #17704 (released in v0.9.1) turned it
  off, so pass ``ensure_ascii=False`` to emulate v0.9.1/v0.9.2.
* ``regex``: True. The first G2 code (commit 02de3de76e3d, v0.10.0/v0.10.1 era)
  still dumps non-streaming arguments with the default; later G2 code
  (commit 500932bbc320, up to v0.11.1) passes ``ensure_ascii=False``.
* ``brace``: False.

Not emulated: the ``regex`` module's 1 s timeout in G3 (same outcome as a
failure: plain content), and the minor differences between the ``regex``
module's ``\\s`` and the standard library's in G2.

Example:
    >>> out = extract_tool_calls('{"name": "f", "parameters": {"a": 1}}')
    >>> out.tool_calls[0].arguments
    '{"a": 1}'
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "BOT_TOKEN",
    "Generation",
    "ParserOutput",
    "ServerToolCall",
    "extract_tool_calls",
    "new_tool_call_id",
    "old_tool_call_id",
    "random_uuid",
    "server_message",
    "tool_call_id_factory",
]

Generation = Literal["prefix", "regex", "brace", "next"]

#: ``<|python_tag|>``: the token Llama 3.1 puts before a tool call or code.
BOT_TOKEN = "<|python_tag|>"

_DEFAULT_ENSURE_ASCII: dict[str, bool] = {"prefix": True, "regex": True, "brace": False}
_LOW_64_BITS = (1 << 64) - 1

# G2's pattern (PR #19024), verbatim in meaning: an object with at most one
# level of nested braces, optionally followed by more of them joined by ";".
_G2_OBJECT = r"{[^{}]*(?:{[^{}]*}[^{}]*)*}"
_G2_REGEX = re.compile(_G2_OBJECT + r"(?:\s*;\s*" + _G2_OBJECT + r")*", re.DOTALL)


@dataclass(frozen=True, kw_only=True, slots=True)
class ServerToolCall:
    """One call as vLLM reports it: ``arguments`` is the ``json.dumps`` text."""

    name: str
    arguments: str


@dataclass(frozen=True, kw_only=True, slots=True)
class ParserOutput:
    """What ``Llama3JsonToolParser.extract_tool_calls`` returns."""

    tools_called: bool
    tool_calls: tuple[ServerToolCall, ...]
    content: str | None


class _NotACall(Exception):
    """Stands in for the KeyError/TypeError/ValidationError vLLM catches."""


def _to_call(obj: Any, ensure_ascii: bool) -> ServerToolCall:
    """Build a call the way vLLM does, raising where vLLM would raise."""
    try:
        name = obj["name"]
        chosen = obj["arguments"] if "arguments" in obj else obj["parameters"]
    except (KeyError, TypeError, IndexError) as exc:
        raise _NotACall(repr(exc)) from exc
    if not isinstance(name, str):
        # pydantic's FunctionCall(name: str) refuses ints, lists, null, ...
        raise _NotACall(f"name is {type(name).__name__}, not str")
    return ServerToolCall(name=name, arguments=json.dumps(chosen, ensure_ascii=ensure_ascii))


def _plain(text: str) -> ParserOutput:
    return ParserOutput(tools_called=False, tool_calls=(), content=text)


def _called(calls: list[ServerToolCall]) -> ParserOutput:
    return ParserOutput(tools_called=True, tool_calls=tuple(calls), content=None)


def _extract_prefix(text: str, ensure_ascii: bool) -> ParserOutput:
    if not (text.startswith(BOT_TOKEN) or text.startswith("{")):
        return _plain(text)
    decoder = json.JSONDecoder()
    objects: list[Any] = []
    start = len(BOT_TOKEN) if text.startswith(BOT_TOKEN) else 0
    try:
        while start < len(text):
            obj, end = decoder.raw_decode(text[start:])
            start += end + len("; ")
            objects.append(obj)
        calls = [_to_call(obj, ensure_ascii) for obj in objects]
    except Exception:  # vLLM: `except Exception` -> the whole text is content
        return _plain(text)
    return _called(calls)


def _extract_regex(text: str, ensure_ascii: bool) -> ParserOutput:
    if not (BOT_TOKEN in text or "{" in text):
        return _plain(text)
    match = _G2_REGEX.search(text)
    if match is None:
        return _plain(text)
    calls: list[ServerToolCall] = []
    try:
        for piece in (part.strip() for part in match.group(0).split(";")):
            if piece:
                calls.append(_to_call(json.loads(piece), ensure_ascii))
    except Exception:  # vLLM: `except Exception` -> the whole text is content
        return _plain(text)
    return _called(calls)


def _extract_brace(text: str, ensure_ascii: bool) -> ParserOutput:
    if not (BOT_TOKEN in text or "{" in text):
        return _plain(text)
    decoder = json.JSONDecoder()
    end_index = -1
    calls: list[ServerToolCall] = []
    start = text.find("{")
    while start != -1:
        if start > end_index:  # vLLM skips when start <= end_index (off by one)
            try:
                obj, length = decoder.raw_decode(text[start:])
                end_index = start + length
                calls.append(_to_call(obj, ensure_ascii))
            except Exception:  # vLLM: any error at any brace -> plain content
                return _plain(text)
        start = text.find("{", start + 1)
    return _called(calls) if calls else _plain(text)


_EXTRACTORS: dict[str, Callable[[str, bool], ParserOutput]] = {
    "prefix": _extract_prefix,
    "regex": _extract_regex,
    "brace": _extract_brace,
}


def extract_tool_calls(
    text: str, generation: Generation = "brace", *, ensure_ascii: bool | None = None
) -> ParserOutput:
    """Run one generation of vLLM's llama3_json ``extract_tool_calls`` on ``text``.

    Args:
        text: The detokenised model output, as the server hands it to the parser.
        generation: ``"prefix"`` (G1), ``"regex"`` (G2), ``"brace"`` (G3) or ``"next"`` (G4,
            without a tool schema, so no coercion).
        ensure_ascii: ASCII-escape the dumped arguments; ``None`` picks the
            generation's default (see the module docstring). Ignored by ``"next"``.

    Returns:
        The parser's verdict. On failure ``content`` is the full ``text``.
    """
    if generation == "next":
        from foxagent.testing._vllm_llama3_next import extract_next  # imports this module

        content, calls = extract_next(text)
        return ParserOutput(tools_called=bool(calls), tool_calls=tuple(calls), content=content)
    if generation not in _EXTRACTORS:
        raise ValueError(f"unknown generation {generation!r}; expected prefix, regex or brace")
    escape = _DEFAULT_ENSURE_ASCII[generation] if ensure_ascii is None else ensure_ascii
    return _EXTRACTORS[generation](text, escape)


def new_tool_call_id() -> str:
    """A current vLLM tool-call id: ``chatcmpl-tool-`` and 16 hex digits.

    vLLM 0.32.0's ``random_uuid`` keeps the low 64 bits of a uuid4 (checked in the conformance
    suite); earlier releases sent all 32 hex digits, see `old_tool_call_id`.
    """
    return f"chatcmpl-tool-{random_uuid()}"


def random_uuid() -> str:
    """vLLM 0.32.0's ``random_uuid``: the low 64 bits of a uuid4, as 16 hex digits."""
    return f"{uuid.uuid4().int & _LOW_64_BITS:016x}"


def old_tool_call_id() -> str:
    """A tool-call id as vLLM up to v0.11 sent it: ``chatcmpl-tool-`` and 32 hex digits."""
    return f"chatcmpl-tool-{uuid.uuid4().hex}"


def tool_call_id_factory(generation: Generation) -> Callable[[], str]:
    """The id maker of a parser generation's vLLM releases."""
    return new_tool_call_id if generation in ("brace", "next") else old_tool_call_id


def server_message(
    text: str,
    *,
    generation: Generation = "brace",
    engine_finish_reason: str = "stop",
    id_factory: Callable[[], str] | None = None,
    ensure_ascii: bool | None = None,
    tools: Iterable[Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """The non-streaming assistant message and finish_reason vLLM would send.

    Args:
        text: The detokenised model output.
        generation: Parser generation, as in `extract_tool_calls`.
        engine_finish_reason: Why the engine stopped (``"stop"`` or ``"length"``).
        id_factory: Makes each tool-call id (server-side, unrelated to the text); ``None``
            picks the generation's (`tool_call_id_factory`).
        ensure_ascii: As in `extract_tool_calls`.
        tools: The request's tools; only ``"next"`` reads them (to coerce arguments).

    Returns:
        ``(message, finish_reason)``. ``message`` has ``role``, ``content``
        (``None`` when tools were called, else the full text) and
        ``tool_calls``: ``[]`` when none, except in ``"brace"``, where vLLM 0.32.0's
        ``ChatMessage`` serializer leaves an empty list out. ``finish_reason`` is
        ``"tool_calls"`` whenever the parser reported a call, else the engine's. In ``"next"``,
        ``content`` is the text around the calls (stripped, ``None`` when empty).
    """
    if generation == "next":
        from foxagent.testing._vllm_llama3_next import server_message_next  # imports this module

        return server_message_next(
            text, engine_finish_reason=engine_finish_reason, id_factory=id_factory, tools=tools
        )
    out = extract_tool_calls(text, generation, ensure_ascii=ensure_ascii)
    make_id = id_factory or tool_call_id_factory(generation)
    tool_calls = [
        {
            "id": make_id(),
            "type": "function",
            "function": {"name": call.name, "arguments": call.arguments},
        }
        for call in out.tool_calls
    ]
    message: dict[str, Any] = {
        "role": "assistant",
        "content": out.content if out.tools_called else text,
        "tool_calls": tool_calls,
    }
    if not tool_calls and generation == "brace":
        del message["tool_calls"]
    finish_reason = "tool_calls" if out.tools_called else (engine_finish_reason or "stop")
    return message, finish_reason
