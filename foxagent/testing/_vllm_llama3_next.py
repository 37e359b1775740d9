"""Emulation of the ``"next"`` llama3_json parser: vLLM main after PR #51577.

On vLLM main (not in any release up to 0.33.0) ``llama3_json``/``llama4_json`` moved to
``vllm/parser/llama_json.py`` (``LlamaJsonParser``, read at commit 5c0ce7c3f994; its tests in
``tests/parser/engine/test_llama_json.py`` at commit 165e02212f8c) on the streaming
``ParserEngine``, so streaming and non-streaming agree by construction. This module is written
from what that code does, in our own words:

* Content is scanned left to right. ``<|python_tag|>`` opens nothing and is dropped (it is in
  Llama 3.1's vocabulary); ``<|eot_id|>`` and ``<|begin_of_text|>`` (Llama 3.1's
  ``all_special_tokens``) are dropped everywhere. ``<|eom_id|>`` and Llama 4's
  ``<|python_start|>``/``<|python_end|>`` are not in those lists and stay text.
* Every ``{`` in content opens an envelope that closes when its braces and brackets balance
  (string-aware, ``{``/``[`` counted alike), or at the end of the text.
* An envelope is a call when it has a top-level string ``"name"`` (non-empty) AND a top-level
  ``"parameters"`` or ``"arguments"`` key; the first of those two keys in the text wins.
  Anything else (LaTeX, sets, JSON examples, ``{"name": "f"}``, a truncated envelope that never
  reached its arguments key) is put back as content, byte for byte, and scanning goes on.
* Content before the first call is kept; once a call has closed, all further text (and any
  further non-call envelope) is dropped, but later envelopes that are calls are still calls
  (parallel calls separated by anything).
* The arguments value is carved out verbatim and cut back to its longest prefix that can be
  closed with ``"``/``}``/``]`` (truncated or malformed arguments become VALID, shortened JSON:
  a ``max_tokens`` cut yields a call with cut values), then scalars whose JSON type the tool's
  schema does not allow are coerced in place (``"5"`` -> ``5`` for an integer).
* Tool names are not checked against the request's tools.
* Whitespace-only text right before a call is dropped; non-streaming strips the content around
  calls and sends ``null`` for empty content.

Streaming (`stream_next`) replays the text in engine steps: content is sent as it arrives
(an open envelope is held until it is known to be prose), the name goes out once with ``id``
and ``type`` as soon as the envelope has its name and an arguments key, and arguments stream
as the part of the final (coerced) arguments that is already decided.

Approximations: whitespace-only runs between content and a call are handled as in one
non-streaming batch (so streamed content can differ from vLLM's in trailing whitespace, which
the PR's own tests ignore too); the stream loop and finish reason follow vLLM 0.32.0's;
``tool_choice`` required/named are left to the ``"brace"`` emulation.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from foxagent._coercion import json_type
from foxagent.testing._vllm_llama3_json import ServerToolCall, new_tool_call_id
from foxagent.testing._vllm_llama3_stream import Delta, StreamedTurn, engine_steps

__all__ = ["NextParse", "parse_next", "server_message_next", "stream_next"]

PYTHON_TAG = "<|python_tag|>"
_DROPPED = ("<|eot_id|>", "<|begin_of_text|>")
_MARKERS = (PYTHON_TAG, *_DROPPED)
_WS = " \t\r\n"
_ARG_KEYS = ("arguments", "parameters")
# A JSON string (group 1 is its closing quote, empty while it is open), or a structural char.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*("?)|[{}\[\]:,]', re.DOTALL)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# The longest run of a string that is valid JSON so far (no raw control character, no bad or
# incomplete escape).
_VALID_STRING = re.compile(r'"(?:[^"\\\x00-\x1f]+|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*')
_SCALAR_END = re.compile(r"[,}\] \t\r\n]")
_CONTENT_STOP = re.compile(r"\{|<\|python_tag\|>")
_ALL_TYPES = frozenset({"null", "boolean", "integer", "number", "string", "array", "object"})

# --- JSON spans ------------------------------------------------------------------------------


def _string_end(raw: str, start: int) -> int | None:
    """Index after the string opening at ``raw[start]`` (escapes honoured), or None if open."""
    match = _STRING.match(raw, start)
    return match.end() if match else None


def _value_end(raw: str, start: int) -> int | None:
    """Index after the JSON value starting at ``raw[start]``, or None while it is unfinished.

    Containers count ``{``/``[`` and ``}``/``]`` alike; a bare scalar ends at ``,``, ``}``,
    ``]`` or whitespace.
    """
    first = raw[start]
    if first == '"':
        return _string_end(raw, start)
    if first in "{[":
        depth = 0
        for token in _TOKEN.finditer(raw, start):
            text = token.group()
            if text[0] == '"':
                if not token.group(1):
                    return None
            elif text in "{[":
                depth += 1
            elif text in "}]":
                depth -= 1
                if depth == 0:
                    return token.end()
        return None
    end = _SCALAR_END.search(raw, start)
    return end.start() if end else None


def _decode_key(raw: str) -> str:
    if "\\" not in raw:
        return raw
    try:
        return str(json.loads(f'"{raw}"'))
    except ValueError:
        return raw


def _top_level_keys(envelope: str) -> list[tuple[str, int]]:
    """``(key, value_start)`` of each top-level key followed by ``:``, in text order.

    ``value_start`` is ``len(envelope)`` when nothing follows the colon yet.
    """
    found: list[tuple[str, int]] = []
    depth, last = 0, None
    for token in _TOKEN.finditer(envelope):
        text = token.group()
        if text[0] == '"':
            if not token.group(1):
                break
            if depth == 1:
                last = _decode_key(text[1:-1])
        elif text == ":":
            if depth == 1 and last is not None:
                start = token.end()
                while start < len(envelope) and envelope[start] in _WS:
                    start += 1
                found.append((last, start))
            last = None
        elif text == ",":
            last = None
        else:
            depth += 1 if text in "{[" else -1
    return found


def _member_value(envelope: str, names: tuple[str, ...]) -> str | None:
    """The raw text of the first top-level member named in ``names`` (maybe unfinished)."""
    for key, start in _top_level_keys(envelope):
        if key in names:
            if start >= len(envelope):
                return None
            end = _value_end(envelope, start)
            return envelope[start:end]
    return None


def envelope_name(envelope: str) -> str | None:
    """The call's name when ``envelope`` is a call: a finished non-empty string ``"name"``
    and a ``parameters``/``arguments`` key at the top level; otherwise None (prose JSON)."""
    span = _member_value(envelope, ("name",))
    if not span or span[0] != '"' or _string_end(span, 0) != len(span):
        return None
    try:
        name = json.loads(span)
    except ValueError:
        return None
    keys = {key for key, _ in _top_level_keys(envelope)}
    if not isinstance(name, str) or not name or not keys & set(_ARG_KEYS):
        return None
    return name


# --- cutting arguments back to closable JSON ---------------------------------------------------


def _string_scan(raw: str, start: int) -> tuple[int, int]:
    """``(end, safe)`` for the string at ``raw[start]``: ``end`` after the closing quote (-1 if
    unterminated or broken by a bad escape or raw control character), ``safe`` the longest
    prefix a closing quote can be appended to."""
    stop = _VALID_STRING.match(raw, start).end()  # type: ignore[union-attr]
    if stop < len(raw) and raw[stop] == '"':
        return stop + 1, stop
    return -1, stop


def _number_scan(raw: str, start: int) -> tuple[int, int]:
    """``(token_end, complete_end)`` of the number at ``raw[start]``."""
    i = start + (raw[start] == "-")
    digits = i
    while i < len(raw) and raw[i].isascii() and raw[i].isdigit():
        i += 1
    if i == digits:
        return i, start
    if raw[digits] == "0" and i - digits > 1:
        return digits + 1, digits + 1  # a leading zero: only "0" is a number
    complete = i
    if i < len(raw) and raw[i] == ".":
        i += 1
        fraction = i
        while i < len(raw) and raw[i].isascii() and raw[i].isdigit():
            i += 1
        if i == fraction:
            return i, complete
        complete = i
    if i < len(raw) and raw[i] in "eE":
        i += 1
        if i < len(raw) and raw[i] in "+-":
            i += 1
        exponent = i
        while i < len(raw) and raw[i].isascii() and raw[i].isdigit():
            i += 1
        if i > exponent:
            complete = i
    return i, complete


def closable_prefix(raw: str) -> tuple[int, str]:
    """``(end, closers)``: the longest prefix of ``raw`` that is valid JSON once ``closers``
    (made of ``"``, ``}`` and ``]`` only) is appended; ``(0, "")`` when there is none."""
    stack: list[str] = []
    best, best_closers = 0, ""
    expect = "value"
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch in _WS:
            i += 1
            continue
        closers = "".join(reversed(stack))
        if expect == "colon":
            if ch != ":":
                break
            expect, i = "value", i + 1
        elif expect == "after":
            if ch == "," and stack:
                expect = "key" if stack[-1] == "}" else "value"
                i += 1
            elif stack and ch == stack[-1]:
                stack.pop()
                i += 1
                best, best_closers = i, "".join(reversed(stack))
            else:
                break
        elif expect in ("key", "key_or_close"):
            if ch == "}" and expect == "key_or_close":
                stack.pop()
                i += 1
                best, best_closers = i, "".join(reversed(stack))
                expect = "after"
                continue
            if ch != '"':
                break
            end, _ = _string_scan(raw, i)
            if end < 0:
                break
            expect, i = "colon", end
        elif ch == "]" and expect == "value_or_close":
            stack.pop()
            i += 1
            best, best_closers = i, "".join(reversed(stack))
            expect = "after"
        elif ch in "{[":
            stack.append("}" if ch == "{" else "]")
            i += 1
            best, best_closers = i, "".join(reversed(stack))
            expect = "key_or_close" if ch == "{" else "value_or_close"
        elif ch == '"':
            end, safe = _string_scan(raw, i)
            if end < 0:
                if safe > best:
                    best, best_closers = safe, '"' + closers
                break
            best, best_closers, expect, i = end, closers, "after", end
        elif ch == "-" or (ch.isascii() and ch.isdigit()):
            token_end, complete = _number_scan(raw, i)
            if complete > i:
                best, best_closers = complete, closers
            if complete != token_end:
                break
            expect, i = "after", token_end
        else:
            literal = next((w for w in ("true", "false", "null") if raw.startswith(w, i)), None)
            if literal is None:
                break
            i += len(literal)
            best, best_closers, expect = i, closers, "after"
    return best, best_closers


def final_arguments(envelope: str) -> str:
    """The arguments vLLM reports for a finished call: the first ``parameters``/``arguments``
    value, cut back and closed into valid JSON (``{}`` when there is nothing to keep)."""
    span = _member_value(envelope, _ARG_KEYS)
    if span is None:
        return "{}"
    end, closers = closable_prefix(span)
    return span[:end] + closers if end else "{}"


def _partial_arguments(envelope: str) -> str:
    span = _member_value(envelope, _ARG_KEYS)
    return "" if span is None else span[: closable_prefix(span)[0]]


# --- schema coercion ---------------------------------------------------------------------------


def _allowed_types(schema: Any) -> set[str]:
    """The JSON types a schema permits (no constraint: all; number admits integer)."""
    allowed = set(_ALL_TYPES)
    if not isinstance(schema, Mapping):
        return allowed

    def widened(types: set[str]) -> set[str]:
        return types | {"integer"} if "number" in types else types

    declared = schema.get("type")
    names = [declared] if isinstance(declared, str) else declared
    if isinstance(names, list) and (typed := {t for t in names if isinstance(t, str)}):
        allowed &= widened(typed)
    if isinstance(schema.get("enum"), list) and schema["enum"]:
        allowed &= widened({json_type(v) for v in schema["enum"]})
    if "const" in schema:
        allowed &= widened({json_type(schema["const"])})
    for field in ("anyOf", "oneOf"):
        if isinstance(schema.get(field), list) and schema[field]:
            allowed &= set().union(*(_allowed_types(c) for c in schema[field]))
    if isinstance(schema.get("allOf"), list):
        for choice in schema["allOf"]:
            allowed &= _allowed_types(choice)
    return allowed


def _schema_types(schema: Mapping[str, Any]) -> list[str]:
    """vLLM's ``extract_types_from_schema``: declared, enum and *Of types; string by default."""
    types: set[str] = set()
    declared = schema.get("type")
    if isinstance(declared, str):
        types.add(declared)
    elif isinstance(declared, list):
        types.update(t for t in declared if isinstance(t, str))
    if isinstance(schema.get("enum"), list):
        types.update(json_type(v) for v in schema["enum"])
    for field in ("anyOf", "oneOf", "allOf"):
        for choice in schema.get(field) or []:
            if isinstance(choice, Mapping):
                types.update(_schema_types(choice))
    return sorted(types) or ["string"]


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(_finite(v) for v in value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    return True


def _from_text(text: str, types: Iterable[str]) -> Any:
    """vLLM's ``coerce_to_schema_type``: the first type in priority order the text reads as."""
    wanted = {t.strip().lower() for t in types}
    for kind in ("null", "integer", "number", "boolean", "object", "array", "string"):
        if kind not in wanted:
            continue
        if kind == "string":
            return text
        if kind == "null" and text.lower() == "null":
            return None
        if kind == "integer":
            try:
                return int(text)
            except ValueError:
                continue
        if kind == "number":
            try:
                number = float(text)
            except ValueError:
                continue
            if math.isfinite(number):
                return int(number) if number == int(number) else number
        if kind == "boolean" and text.lower().strip() in ("true", "1", "false", "0"):
            return text.lower().strip() in ("true", "1")
        if kind in ("object", "array"):
            try:
                parsed = json.loads(text)
            except (ValueError, RecursionError):
                continue
            if _finite(parsed):
                return parsed
    try:
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        return text
    return parsed if _finite(parsed) else text


def _coerced_scalar(value: Any, schema: Mapping[str, Any]) -> tuple[Any, bool]:
    types = _schema_types(schema)
    if isinstance(value, str):
        coerced = _from_text(value, types)
        return coerced, coerced is not value
    coerced = _from_text(json.dumps(value, ensure_ascii=False), types)
    return coerced, type(coerced) is not type(value) or coerced != value


def _elements(raw: str, start: int, end: int, keyed: bool) -> list[tuple[str, int, int]]:
    """Complete members (``keyed``) or items of the container ``raw[start:end]``."""
    out: list[tuple[str, int, int]] = []
    i = start + 1
    while i < end:
        while i < end and (raw[i] in _WS or raw[i] == ","):
            i += 1
        if i >= end or raw[i] in "}]":
            break
        key = ""
        if keyed:
            key_end = _string_end(raw, i) if raw[i] == '"' else None
            if key_end is None or key_end > end:
                break
            key, i = _decode_key(raw[i + 1 : key_end - 1]), key_end
            while i < end and raw[i] in _WS:
                i += 1
            if i >= end or raw[i] != ":":
                break
            i += 1
            while i < end and raw[i] in _WS:
                i += 1
            if i >= end:
                break
        value_end = _value_end(raw, i)
        if value_end is None or value_end > end or value_end <= i:  # <= i: a stray closer
            break
        out.append((key, i, value_end))
        i = value_end
    return out


def _edits(raw: str, start: int, end: int, schema: Mapping[str, Any]) -> list[tuple[int, int, str]]:
    if raw[start] in "{[":
        nested = schema.get("properties") if raw[start] == "{" else schema.get("items")
        if not isinstance(nested, Mapping):
            return []
        found: list[tuple[int, int, str]] = []
        for key, value_start, value_end in _elements(raw, start, end, raw[start] == "{"):
            sub = nested.get(key) if raw[start] == "{" else nested
            if isinstance(sub, Mapping):
                found += _edits(raw, value_start, value_end, sub)
        return found
    try:
        value = json.loads(raw[start:end])
    except (ValueError, RecursionError):
        return []
    if json_type(value) in _allowed_types(schema):
        return []
    try:
        coerced, changed = _coerced_scalar(value, schema)
    except RecursionError:
        return []
    return [(start, end, json.dumps(coerced, ensure_ascii=False))] if changed else []


def _splice(raw: str, start: int, end: int, schema: Mapping[str, Any]) -> str:
    """``raw[start:end]`` with every wrongly typed scalar replaced in place, all else verbatim."""
    out, cursor = [], start
    for edit_start, edit_end, text in _edits(raw, start, end, schema):
        out += [raw[cursor:edit_start], text]
        cursor = edit_end
    return "".join(out) + raw[cursor:end]


def coerce_arguments(arguments: str, properties: Mapping[str, Any] | None) -> str:
    """Apply the tool's schema to finished arguments (objects only; no schema: unchanged)."""
    if not properties or not arguments.startswith("{"):
        return arguments
    return _splice(arguments, 0, len(arguments), {"properties": properties})


def _string_only(schema: Any) -> bool:
    return isinstance(schema, Mapping) and _schema_types(schema) == ["string"]


def _decided_prefix(partial: str, properties: Mapping[str, Any] | None) -> str:
    """The part of the final arguments already decided by ``partial``: finished members (with
    their values coerced), then an unfinished string value only when coercion cannot change it
    (no schema for its key, or a string-only schema)."""
    if not partial.startswith("{"):
        return ""
    props = properties or {}
    out: list[str] = []
    cursor, i = 0, 1
    while True:
        while i < len(partial) and (partial[i] in _WS or partial[i] == ","):
            i += 1
        if i >= len(partial) or partial[i] != '"':
            break
        key_end = _string_end(partial, i)
        if key_end is None:
            break
        key, j = _decode_key(partial[i + 1 : key_end - 1]), key_end
        while j < len(partial) and partial[j] in _WS:
            j += 1
        if j >= len(partial) or partial[j] != ":":
            break
        j += 1
        while j < len(partial) and partial[j] in _WS:
            j += 1
        if j >= len(partial):
            break
        schema = props.get(key)
        value_end = _value_end(partial, j)
        if value_end is None:
            if partial[j] == '"' and (not isinstance(schema, Mapping) or _string_only(schema)):
                return "".join(out) + partial[cursor:]
            return "".join(out) + partial[cursor:j]
        value = partial[j:value_end]
        if isinstance(schema, Mapping):
            value = _splice(partial, j, value_end, schema)
        out += [partial[cursor:j], value]
        cursor = i = value_end
    return "".join(out) + partial[cursor:]


# --- the scan ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class _Call:
    name: str
    envelope: str
    finished: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class NextParse:
    """What the parser has made of a text (or of the part of it seen so far).

    Attributes:
        content: The content in generation order, before the non-streaming strip.
        calls: The calls found, each with its envelope text (unfinished ones last).
    """

    content: str
    calls: tuple[_Call, ...]


def _envelope_at(text: str, start: int) -> tuple[str, int, bool]:
    """The envelope opening at ``text[start]``: its text, where it ends, and whether its
    braces balanced (string-aware)."""
    depth = 0
    for token in _TOKEN.finditer(text, start):
        value = token.group()
        if value[0] == '"':
            if not token.group(1):
                break
        elif value in "{[":
            depth += 1
        elif value in "}]":
            depth -= 1
            if depth == 0:
                return text[start : token.end()], token.end(), True
    return text[start:], len(text), False


def _partial_marker(run: str) -> int:
    """How many trailing characters of ``run`` could still become a special token."""
    for size in range(min(len(run), max(map(len, _MARKERS)) - 1), 0, -1):
        if any(m.startswith(run[-size:]) for m in _MARKERS):
            return size
    return 0


def parse_next(text: str, *, finished: bool = True) -> NextParse:
    """Run the next parser over ``text`` (all of it, or the part generated so far).

    Args:
        text: The model output (or a prefix of it when ``finished`` is False).
        finished: The generation is over: open envelopes are decided, held text flushed.
    """
    content: list[str] = []
    held: list[str] = []
    calls: list[_Call] = []
    closed_call = False

    def emit(piece: str) -> None:
        if closed_call or not piece:
            return
        if not piece.strip(_WS):
            held.append(piece)
            return
        content.extend(held)
        held.clear()
        content.append(piece)

    if not finished:  # a special token may still be arriving: keep its start back
        text = text[: len(text) - _partial_marker(text)]
    for marker in _DROPPED:
        text = text.replace(marker, "")
    i = 0
    while True:
        stop = _CONTENT_STOP.search(text, i)
        if stop is None:
            break
        emit(text[i : stop.start()])
        if stop.group() == PYTHON_TAG:
            i = stop.end()
            continue
        envelope, i, balanced = _envelope_at(text, stop.start())
        name = envelope_name(envelope)
        if not balanced and not finished:
            if name is not None:
                calls.append(_Call(name=name, envelope=envelope, finished=False))
            return NextParse(content="".join(content), calls=tuple(calls))
        if name is None:
            emit(envelope)
            continue
        calls.append(_Call(name=name, envelope=envelope, finished=True))
        closed_call = True
        held.clear()
    tail = text[i:]
    if not finished:
        if tail.strip(_WS):
            emit(tail)
        return NextParse(content="".join(content), calls=tuple(calls))
    emit(tail)
    if not closed_call:
        content.extend(held)
    return NextParse(content="".join(content), calls=tuple(calls))


def tool_properties(tools: Iterable[Any] | None) -> dict[str, Mapping[str, Any]]:
    """Each request tool's ``parameters.properties`` by function name."""
    found: dict[str, Mapping[str, Any]] = {}
    for item in tools or ():
        function = item.get("function") if isinstance(item, Mapping) else None
        if not isinstance(function, Mapping) or not isinstance(function.get("name"), str):
            continue
        parameters = function.get("parameters")
        properties = parameters.get("properties") if isinstance(parameters, Mapping) else None
        if isinstance(properties, Mapping) and function["name"] not in found:
            found[function["name"]] = properties
    return found


def extract_next(
    text: str, tools: Iterable[Any] | None = None
) -> tuple[str | None, list[ServerToolCall]]:
    """Non-streaming result: ``(content, calls)``; content stripped around calls, None if empty."""
    parsed = parse_next(text)
    schemas = tool_properties(tools)
    calls = [
        ServerToolCall(
            name=call.name,
            arguments=coerce_arguments(final_arguments(call.envelope), schemas.get(call.name)),
        )
        for call in parsed.calls
    ]
    content = parsed.content.strip(_WS) if calls else parsed.content
    return content or None, calls


def server_message_next(
    text: str,
    *,
    engine_finish_reason: str = "stop",
    id_factory: Callable[[], str] | None = None,
    tools: Iterable[Any] | None = None,
) -> tuple[dict[str, Any], str]:
    """The non-streaming message and finish reason (as ``server_message`` for ``"next"``)."""
    content, calls = extract_next(text, tools)
    make_id = id_factory or new_tool_call_id
    message: dict[str, Any] = {"role": "assistant", "content": content}
    if calls:
        message["tool_calls"] = [
            {
                "id": make_id(),
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments},
            }
            for c in calls
        ]
    return message, "tool_calls" if calls else (engine_finish_reason or "stop")


# --- streaming ---------------------------------------------------------------------------------


def stream_next(
    text: str,
    *,
    engine_finish_reason: str = "stop",
    id_factory: Callable[[], str] | None = None,
    tools: Iterable[Any] | None = None,
    named: bool = False,
) -> StreamedTurn:
    """Stream ``text`` through the next parser, one engine step at a time."""
    make_id = id_factory or new_tool_call_id
    schemas = tool_properties(tools)
    sent_content = ""
    sent_args: list[str] = []
    deltas: list[Delta] = []
    tools_streamed = False
    current = ""
    for piece, finish in engine_steps(text, engine_finish_reason):
        current += piece
        parsed = parse_next(current, finished=finish is not None)
        delta: Delta = {}
        if parsed.content.startswith(sent_content) and len(parsed.content) > len(sent_content):
            delta["content"] = parsed.content[len(sent_content) :]
            sent_content = parsed.content
        updates: list[Delta] = []
        for index, call in enumerate(parsed.calls):
            properties = schemas.get(call.name)
            if call.finished:
                args = coerce_arguments(final_arguments(call.envelope), properties)
            else:
                args = _decided_prefix(_partial_arguments(call.envelope), properties)
            function: dict[str, Any] = {}
            update: Delta = {"index": index}
            if index == len(sent_args):
                sent_args.append("")
                update |= {"id": make_id(), "type": "function"}
                function["name"] = call.name
            if args.startswith(sent_args[index]) and len(args) > len(sent_args[index]):
                function["arguments"] = args[len(sent_args[index]) :]
                sent_args[index] = args
            if function:
                updates.append(update | {"function": function})
        if updates:
            delta["tool_calls"] = updates
            tools_streamed = True
        if delta or finish is not None:
            deltas.append(delta)
    upgrade = tools_streamed and not named and engine_finish_reason == "stop"
    return StreamedTurn(
        deltas=tuple(deltas), finish_reason="tool_calls" if upgrade else engine_finish_reason
    )
