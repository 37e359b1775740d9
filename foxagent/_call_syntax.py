"""Finding tool-call candidates inside the text of a model reply.

This module only *finds and decodes*; it never decides whether a call may run (that is
:mod:`foxagent._recovery`'s gate). Each finder claims a span of the text; spans never overlap,
and the first finder to claim text wins, in this order:

1. ReAct: ``Action: NAME`` + ``Action Input: {json}`` or plain text.
2. Meta's function tag: ``<function=NAME>{json}</function>``.
3. Pythonic calls: ``[f(a=1), g(b="x")]`` anywhere, ``name.call(...)`` anywhere, and ``f(a=1)``
   after ``<|python_tag|>`` or as the whole reply.
4. JSON objects whose first key is a call key (``name``, ``function``, ``tool_calls``, ``type``,
   ``tool``, ``action``, ...), in any number and with any separator, including OpenAI-style
   wrappers. Objects with other first keys (LaTeX ``\\frac{a}{b}``, sets, answers like
   ``{"city": ...}``) are skipped without affecting the others.

JSON is repaired only inside a candidate's own span: first strict ``json.loads``; then with
full-width ``｛｝［］：，`` outside string literals made ASCII; then ``json_repair``. An object the
text ends inside of (cut at ``max_tokens``, or a forgotten brace) is marked ``closed=False``; it is
completed only when nothing but closing brackets is missing.

Wrappers around a claimed span (code fences, ``<tool_call>`` tags, ``<|python_tag|>``, list
brackets and separators between calls) are absorbed into the span so that removing the spans
leaves the reply's prose intact and free of call debris.
"""

from __future__ import annotations

import ast
import itertools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import json_repair

__all__ = ["Candidate", "find_candidates", "loads_repaired", "strip_special_tokens"]

_SPECIAL_TOKEN = re.compile(
    r"<\|start_header_id\|>[^<]{0,40}<\|end_header_id\|>|<\|[a-z_]{2,40}\|>"
)
_NAME_KEYS = ("name", "function", "tool", "tool_name", "action", "function_name")
_ARG_KEYS = ("arguments", "parameters", "args", "params", "tool_input", "action_input", "input")
_CALL_START = re.compile(
    r"[{｛]\s*[\"'“]?(?:name|function|tool_calls|type|id|tool|tool_name|action|function_name|"
    r"arguments|parameters)[\"'”]?\s*[:：]"
)
_CALL_HINT = re.compile(r"name|function|tool|action")
_WRITTEN_NAME = re.compile(r"[\"']name[\"']\s*[:：]\s*[\"'“]([^\"'”]{1,64})[\"'”]")
_FULLWIDTH_STRUCTURE = str.maketrans("｛｝［］：，", "{}[]:,")
_REACT = re.compile(
    r"^[ \t]*Action[ \t]*:[ \t]*(?P<name>[^\n]+?)[ \t]*\n\s*Action[ \t]*Input[ \t]*:[ \t]*"
    r"(?P<input>.*?)(?=\n[ \t]*(?:Observation|Thought|Action|Final Answer)[ \t]*:|\Z)",
    re.MULTILINE | re.DOTALL,
)
_FUNCTION_TAG = re.compile(r"<function=([A-Za-z_][\w.\-]*)>\s*")
_FUNCTION_TAG_END = re.compile(r"\s*</function>")
_PYTHONIC_LIST = re.compile(r"\[\s*[A-Za-z_][\w.]*\s*\(")
_DOT_CALL = re.compile(r"\b[A-Za-z_]\w*\.call\s*\(")
_BARE_CALL = re.compile(r"[A-Za-z_][\w.]*\s*\(")
_PYTHON_TAG = "<|python_tag|>"
_WRAP_BEFORE = re.compile(
    r"(?:<\|python_tag\|>|<tool_call>|```[a-zA-Z]*[ \t]*\n?|\[|Action[ \t]*Input[ \t]*:)\s*\Z"
)
_WRAP_AFTER = re.compile(r"\s*(?:</tool_call>|<\|eom_id\|>|<\|eot_id\|>|\n?```|\])")
_SEPARATOR_ONLY = re.compile(r"[\s,;，；]*\Z")
_EXAMPLE_CUES = (
    "example",
    "e.g.",
    "for instance",
    "such as",
    "like this",
    "looks like",
    "format",
    "schema",
    "syntax",
    "例如",
    "範例",
    "比如",
    "舉例",
    "格式",
    "像這樣",
)
_EXAMPLE_WINDOW = 150


@dataclass(slots=True)
class Candidate:
    """Something in the text that looks like a tool call.

    Attributes:
        start: where its span starts (after absorbing wrappers).
        end: where its span ends (exclusive).
        name: the tool name as written, or ``None`` when there is none.
        arguments: the decoded arguments as written: a dict, a JSON string, ``None``, or text.
        positional: positional arguments of a pythonic call.
        syntax: which finder found it (``json``, ``function_tag``, ``pythonic``, ``react``).
        repaired: the JSON needed repair to decode.
        closed: the text did not end inside it.
        completed: it was unclosed and was completed by adding closing brackets only.
        error: why it could not be decoded, if it could not.
        example: it sits after an example cue in prose, so it is not a call.
    """

    start: int
    end: int
    name: str | None
    arguments: Any = None
    positional: tuple[Any, ...] = ()
    syntax: str = "json"
    repaired: bool = False
    closed: bool = True
    completed: bool = False
    error: str | None = None
    example: bool = False
    raw: str = field(default="", repr=False)


def strip_special_tokens(text: str) -> str:
    """Remove Llama special tokens (and header blocks) from text."""
    return _SPECIAL_TOKEN.sub("", text) if "<|" in text else text


def find_candidates(text: str) -> list[Candidate]:
    """Every call candidate in ``text``, in order of position, with wrapper-absorbed spans."""
    found: list[Candidate] = []
    taken: list[tuple[int, int]] = []
    for finder in (_find_react, _find_function_tags, _find_pythonic, _find_json):
        for candidate in finder(text, taken):
            found.append(candidate)
            taken.append((candidate.start, candidate.end))
    found.sort(key=lambda c: c.start)
    for candidate in found:
        candidate.example = _follows_example_cue(text, candidate.start)
    _absorb_wrappers(text, found)
    return found


def _free(position: int, taken: list[tuple[int, int]]) -> bool:
    return all(not (start <= position < end) for start, end in taken)


# --- ReAct -----------------------------------------------------------------------------------


def _find_react(text: str, taken: list[tuple[int, int]]) -> list[Candidate]:
    if "Action" not in text:
        return []
    found = []
    for match in _REACT.finditer(text):
        name = match.group("name").strip().strip("`'\"*")
        raw_input = match.group("input").strip()
        candidate = Candidate(match.start(), match.end(), name, syntax="react", raw=match.group())
        body = _strip_fence(raw_input)
        if body.startswith(("{", "｛")):
            _decode_json_object(body, candidate, arguments_only=True)
        else:
            candidate.arguments = body.strip().strip("\"'")
        found.append(candidate)
    return found


def _strip_fence(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()


# --- <function=NAME>{...}</function> -----------------------------------------------------------


def _find_function_tags(text: str, taken: list[tuple[int, int]]) -> list[Candidate]:
    if "<function=" not in text:
        return []
    found = []
    for match in _FUNCTION_TAG.finditer(text):
        if not _free(match.start(), taken):
            continue
        body_start = match.end()
        end, closed = (
            _match_brackets(text, body_start)
            if text[body_start : body_start + 1]
            in (
                "{",
                "｛",
            )
            else (body_start, True)
        )
        candidate = Candidate(match.start(), end, match.group(1), syntax="function_tag")
        if end > body_start:
            _decode_json_object(text[body_start:end], candidate, arguments_only=True, closed=closed)
        else:
            candidate.arguments = {}
        tail = _FUNCTION_TAG_END.match(text, end)
        candidate.end = tail.end() if tail else end
        candidate.raw = text[candidate.start : candidate.end]
        found.append(candidate)
    return found


# --- pythonic --------------------------------------------------------------------------------


def _find_pythonic(text: str, taken: list[tuple[int, int]]) -> list[Candidate]:
    if "(" not in text:
        return []
    found: list[Candidate] = []
    starts = [m.start() for m in _PYTHONIC_LIST.finditer(text)]
    starts += [m.start() for m in _DOT_CALL.finditer(text)]
    tag = text.find(_PYTHON_TAG)
    if tag >= 0:
        after = tag + len(_PYTHON_TAG)
        starts += [m.start() for m in _BARE_CALL.finditer(text, after) if m.start() >= after]
    stripped = strip_special_tokens(text).strip()
    if _BARE_CALL.match(stripped) and stripped.endswith(")"):
        starts.append(text.find(stripped[:8]))  # the whole reply is one call
    claimed: list[tuple[int, int]] = list(taken)
    for start in sorted(set(starts)):
        if start < 0 or not _free(start, claimed):
            continue
        candidates = _decode_pythonic(text, start)
        for candidate in candidates:
            claimed.append((candidate.start, candidate.end))
        found.extend(candidates)
    return found


def _decode_pythonic(text: str, start: int) -> list[Candidate]:
    end, closed = _match_brackets(text, start, python=True)
    source = text[start:end]
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except (SyntaxError, ValueError):
        name = _BARE_CALL.match(source.lstrip("[ \t\n"))
        called = name.group().rstrip("( \t") if name else None
        candidate = Candidate(start, end, called, syntax="pythonic", closed=closed, raw=source)
        if closed:
            candidate.error = "it is not a valid call expression"
        return [candidate]
    calls = tree.elts if isinstance(tree, ast.List) else [tree]
    if not calls or not all(isinstance(c, ast.Call) for c in calls):
        return []
    return [_pythonic_candidate(c, start, end, source) for c in calls if isinstance(c, ast.Call)]


def _pythonic_candidate(call: ast.Call, start: int, end: int, source: str) -> Candidate:
    candidate = Candidate(start, end, _dotted_name(call.func), syntax="pythonic", raw=source)
    try:
        candidate.positional = tuple(ast.literal_eval(a) for a in call.args)
        candidate.arguments = {
            k.arg: ast.literal_eval(k.value) for k in call.keywords if k.arg is not None
        }
    except (ValueError, TypeError, SyntaxError, RecursionError):
        candidate.error = "its arguments are not literal values"
    return candidate


def _dotted_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        if node.attr == "call":  # Meta's built-in tool style: brave_search.call(query=...)
            return _dotted_name(node.value)
        base = _dotted_name(node.value)
        return f"{base}.{node.attr}" if base else None
    return None


# --- JSON objects ----------------------------------------------------------------------------


def _find_json(text: str, taken: list[tuple[int, int]]) -> list[Candidate]:
    if not _CALL_HINT.search(text):
        return []
    found: list[Candidate] = []
    position = 0
    while True:
        match = _CALL_START.search(text, position)
        if match is None:
            return found
        start = match.start()
        if not _free(start, taken):
            position = start + 1
            continue
        end, closed = _match_brackets(text, start)
        candidate = Candidate(start, end, None, raw=text[start:end])
        _decode_json_object(text[start:end], candidate, arguments_only=False, closed=closed)
        found.extend(_expand_wrappers(candidate))
        position = end if candidate.error is None or not closed else start + 1
        if not closed:
            return found


def _expand_wrappers(candidate: Candidate) -> list[Candidate]:
    """Turn a decoded object into calls: plain, OpenAI-wrapped, or a ``tool_calls`` list."""
    value = candidate.arguments
    candidate.arguments = None
    if candidate.error is not None or not isinstance(value, dict):
        candidate.error = candidate.error or "it is not a JSON object"
        return [candidate]
    if not _call_shaped(value):
        return []
    if isinstance(value.get("tool_calls"), list):
        items = [item for item in value["tool_calls"] if isinstance(item, dict)]
        return [_call_from_object(item, candidate) for item in items] or [candidate]
    return [_call_from_object(value, candidate)]


_CALL_KEYS = frozenset({*_NAME_KEYS, *_ARG_KEYS, "type", "id", "tool_calls", "index"})


def _call_shaped(value: dict[str, Any]) -> bool:
    """A call has arguments, or nothing but call keys: ``{"name": "x", "version": 1}`` is data."""
    if any(key in value for key in _ARG_KEYS) or "tool_calls" in value:
        return True
    if isinstance(value.get("function"), dict):
        return True
    return all(key in _CALL_KEYS for key in value)


def _call_from_object(value: dict[str, Any], origin: Candidate) -> Candidate:
    candidate = Candidate(
        origin.start,
        origin.end,
        None,
        syntax=origin.syntax,
        repaired=origin.repaired,
        closed=origin.closed,
        completed=origin.completed,
        raw=origin.raw,
    )
    inner = value.get("function")
    if isinstance(inner, dict):  # {"type": "function", "function": {"name": ..., "arguments": ...}}
        value = inner
    for key in _NAME_KEYS:
        if isinstance(value.get(key), str):
            candidate.name = value[key]
            break
    present = [key for key in _ARG_KEYS if key in value]
    # vLLM prefers `arguments` over `parameters`; an empty one loses to a filled one.
    filled = [key for key in present if value[key] not in (None, "", {})]
    chosen = (filled or present)[:1]
    candidate.arguments = value.get(chosen[0]) if chosen else None
    if candidate.name is None:
        candidate.error = "it has no tool name"
    return candidate


def _decode_json_object(
    source: str, candidate: Candidate, *, arguments_only: bool, closed: bool = True
) -> None:
    """Decode ``source`` into ``candidate.arguments`` (or set ``candidate.error``)."""
    candidate.closed = closed
    text = source
    if not closed:
        completion = _completion(source)
        if completion is None:
            candidate.error = "it is cut off"
            _name_from_text(candidate, source)
            return
        text = source + completion
        candidate.completed = True
    value, repaired = loads_repaired(text)
    candidate.repaired = repaired or not closed
    if value is None:
        candidate.error = "its JSON cannot be repaired"
        _name_from_text(candidate, source)
    elif arguments_only:
        candidate.arguments = value
    else:
        candidate.arguments = value  # unpacked into name/arguments by _expand_wrappers


def _name_from_text(candidate: Candidate, source: str) -> None:
    """Name the tool of an undecodable object, so the refusal can say which call it was."""
    if candidate.name is None:
        written = _WRITTEN_NAME.search(source)
        candidate.name = written.group(1) if written else None


def loads_repaired(text: str) -> tuple[Any, bool]:
    """Decode JSON strictly, else repaired; ``(value or None, whether it needed repair)``."""
    try:
        return json.loads(text), False
    except ValueError:
        pass
    ascii_structure = _ascii_structure(text)
    try:
        return json.loads(ascii_structure), True
    except ValueError:
        pass
    try:
        value = json_repair.loads(ascii_structure)
    except Exception:  # json_repair is third-party: any failure just means "cannot repair"
        return None, True
    if not isinstance(value, (dict, list)) or not value or _lost_content(text, value):
        return None, True
    return value, True


_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _lost_content(source: str, value: Any) -> bool:
    """Whether repair dropped letters or digits (``3 + 4 * 2`` silently becoming ``3``)."""
    decoded = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), source)
    before = sum(ch.isalnum() for ch in decoded)
    after = sum(ch.isalnum() for ch in json.dumps(value, ensure_ascii=False))
    return after < before


def _string_states(text: str) -> Iterator[tuple[str, bool]]:
    """Each character with whether a double-quoted JSON string is open after it."""
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        yield ch, in_string


def _ascii_structure(text: str) -> str:
    """Full-width braces, brackets, colons and commas outside string literals made ASCII."""
    if text.isascii():
        return text
    return "".join(
        ch if quoted else ch.translate(_FULLWIDTH_STRUCTURE) for ch, quoted in _string_states(text)
    )


def _completion(source: str) -> str | None:
    """The closing brackets that complete ``source``, or ``None`` if more than that is missing."""
    stack: list[str] = []
    in_string = False
    for ch, in_string in _string_states(_ascii_structure(source)):
        if in_string:
            continue
        if ch in "{[":
            stack.append("}" if ch == "{" else "]")
        elif ch in "}]" and stack:
            stack.pop()
    if in_string or not stack or source.rstrip()[-1:] in (":", ",", "：", "，"):
        return None
    completion = "".join(reversed(stack))
    try:
        json.loads(_ascii_structure(source) + completion)
    except ValueError:
        return None
    return completion


def _match_brackets(text: str, start: int, *, python: bool = False) -> tuple[int, bool]:
    """End (exclusive) of the bracketed expression at ``start``, and whether it closed.

    String-aware: brackets inside double-quoted strings (and single-quoted ones in Python
    mode) do not count. Full-width brackets count as ASCII ones.
    """
    depth = 0
    quote = ""
    escaped = False
    quotes = "\"'" if python else '"'
    for index in range(start, len(text)):
        ch = text[index]
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == quote:
                quote = ""
            continue
        if ch in quotes:
            quote = ch
        elif ch in "{[(｛［（":
            depth += 1
        elif ch in "}])｝］）":
            depth -= 1
            if depth == 0:
                return index + 1, True
    return len(text), False


# --- context ---------------------------------------------------------------------------------


def _follows_example_cue(text: str, start: int) -> bool:
    window = text[max(0, start - _EXAMPLE_WINDOW) : start]
    window = window.rsplit("\n\n", 1)[-1].lower()
    return any(cue in window for cue in _EXAMPLE_CUES)


def _absorb_wrappers(text: str, candidates: list[Candidate]) -> None:
    """Grow spans over call markup around them, and over separators between adjacent calls."""
    for candidate in candidates:
        if candidate.example:
            continue
        while True:
            before = _WRAP_BEFORE.search(text, max(0, candidate.start - 40), candidate.start)
            after = _WRAP_AFTER.match(text, candidate.end)
            if before is None and after is None:
                break
            if before is not None:
                candidate.start = before.start()
            if after is not None:
                candidate.end = after.end()
    ordered = [c for c in candidates if not c.example]
    for left, right in itertools.pairwise(ordered):
        if left.end <= right.start and _SEPARATOR_ONLY.match(text, left.end, right.start):
            left.end = right.start
