"""Streaming emulation of vLLM's ``llama3_json`` tool parser and of the chat server's stream.

With ``stream: true`` vLLM feeds the detokenised text to
``Llama3JsonToolParser.extract_tool_calls_streaming`` one token at a time and turns what it
returns into ``chat.completion.chunk`` deltas (``serving_chat.py``,
``chat_completion_stream_generator``). This module replays that on a scripted text, split into
token-like pieces by `split_pieces`. Sources read (in vllm-project/vllm): the parser's
streaming method at commits 02de3de76e3d (G2) and 13e48c2bd449 (G3), the G1 copy with
``json.dumps`` ASCII escaping, ``tool_parsers/utils.py`` (``partial_json_loads``,
``is_complete_json``, ``find_common_prefix``), and the stream generator of ``serving_chat.py``
(commit 003fe5932dc9) and ``chat_completion/serving.py`` (commit 5e918640d7b6), and, for the
``"brace"`` generation, vLLM 0.32.0's ``Parser.parse_delta`` and stream generator, which the
conformance suite (``conformance/``) runs against this module on every corpus text. Cut JSON is
completed by partial-json-parser, the library vLLM itself calls.

What follows from that code, in every parser generation:

* Tool mode only when the accumulated text STARTS with ``<|python_tag|>`` or ``{``; otherwise
  every piece is forwarded as ``content`` (FoxBrain's prose-first ``<count>...`` replies).
* Objects are parsed back to back, the cursor skipping exactly two characters after each.
* The function name is sent once, complete, with ``id`` and ``type``: until it is sent, cut
  strings are dropped together with their key, so a half-written name never shows.
* Arguments are sent as diffs of ``json.dumps`` of the partially parsed argument object: the
  common prefix of the previous and current dumps, or the full rest once the object is complete.
  ``parameters`` is renamed ``arguments``; an object with both keys is skipped. Empty argument
  objects are never sent, and empty ``""`` fragments happen.

Stream loop, up to v0.11 (``prefix`` and ``regex``):

* The last engine step re-sends whatever the final auto-closed parse has not streamed yet, so a
  call cut by ``max_tokens`` arrives as valid JSON with cut values.
* ``finish_reason`` is ``tool_calls`` once the parser stored any object, even one without a
  name (whose text was swallowed).
* G1 (``prefix``) dumps streamed arguments with ASCII escaping while the server's final flush
  does not, so non-ASCII arguments come out twice (vLLM issue #17703).

Stream loop of vLLM 0.32.0 (``brace``; checked by ``conformance/``):

* The unstreamed rest of the last call is appended only when the final step's delta carries a
  tool call itself (a step without text usually carries an empty ``""`` argument fragment).
* ``finish_reason`` is ``tool_calls`` only when a tool-call delta was sent AND the engine
  stopped naturally: a call cut by ``max_tokens`` reports ``length``.
* ``tool_choice`` required and named are parsed by this same parser (see `stream_auto`), and a
  request without tool parsing sends an empty delta, not ``""`` content, on its last step.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeAlias

try:
    import partial_json_parser
    from partial_json_parser.core.options import Allow
except ImportError as _missing:
    raise ImportError(
        "foxagent.testing (FakeVLLMServer's vLLM emulation) needs the 'partial-json-parser' "
        f"package ({_missing}): pip install 'foxagent[testing]'",
        name=_missing.name,
    ) from _missing

from foxagent.testing._vllm_llama3_json import (
    BOT_TOKEN,
    Generation,
    new_tool_call_id,
    old_tool_call_id,
    tool_call_id_factory,
)

__all__ = [
    "Llama3JsonStreamParser",
    "StreamedTurn",
    "engine_steps",
    "partial_json_loads",
    "split_pieces",
    "stream_auto",
    "stream_named",
    "stream_plain",
    "stream_required",
]

Delta: TypeAlias = dict[str, Any]

# Streamed arguments: G1 used json.dumps' default ASCII escaping until PR #17704; the G2 and
# G3 streaming code passes ensure_ascii=False.
_STREAM_ENSURE_ASCII: dict[str, bool] = {"prefix": True, "regex": False, "brace": False}

# Llama 3 special tokens stay whole; each non-ASCII character is a token (as Chinese roughly
# is); ASCII runs go in pieces of up to four characters; whitespace sticks to what follows it.
_PIECE = re.compile(
    r"\s*<\|[a-z_]+\|>|\s*[^\s\x00-\x7f]|\s*[^\s\x80-\U0010ffff]{1,4}|\s+",
)


def split_pieces(text: str) -> list[str]:
    """Split ``text`` into deterministic token-like pieces that join back to ``text``.

    Example:
        >>> split_pieces('{"name": "天氣"}')
        ['{"na', 'me":', ' "', '天', '氣', '"}']
    """
    return _PIECE.findall(text)


def engine_steps(text: str, engine_finish_reason: str = "stop") -> list[tuple[str, str | None]]:
    """The engine's outputs for ``text``: ``(delta_text, finish_reason)`` per step.

    A ``max_tokens`` cut (``"length"``) ends on the last real piece. A natural stop ends with one
    more step whose text is empty: the EOS token, which the detokenizer drops.
    """
    pieces = split_pieces(text)
    if engine_finish_reason == "length" and pieces:
        return [(piece, None) for piece in pieces[:-1]] + [(pieces[-1], "length")]
    return [(piece, None) for piece in pieces] + [("", engine_finish_reason)]


# --- partial JSON: vLLM's tool_parsers/utils.py on the same library ------------------------

_ALL = Allow.ALL
_ALL_BUT_STRINGS = Allow.ALL & ~Allow.STR


def partial_json_loads(text: str, allow_partial_strings: bool = True) -> tuple[Any, int]:
    """vLLM's ``partial_json_loads``: parse a possibly cut JSON value at the start of ``text``.

    It runs on partial-json-parser, the library vLLM calls, so cut texts complete exactly as in
    vLLM (an earlier port of the library here differed on blanks before the value and on text
    after a complete object; the conformance suite compares every corpus prefix).

    Args:
        text: JSON text, possibly cut anywhere and possibly followed by more text.
        allow_partial_strings: Keep a cut string (vLLM disallows it until the name is sent).

    Returns:
        ``(value, end)``: the auto-closed value and how much of ``text`` it used (all of it,
        unless a complete value is followed by extra data).

    Raises:
        ValueError: Whenever vLLM's call would raise (vLLM then streams nothing for the step).
    """
    flags = _ALL if allow_partial_strings else _ALL_BUT_STRINGS
    try:
        return partial_json_parser.loads(text, flags), len(text)
    except json.JSONDecodeError as exc:
        if "Extra data" in exc.msg:
            return json.JSONDecoder().raw_decode(text)
        raise
    except (AssertionError, IndexError) as exc:
        # The library's fast path can leak these on malformed text; vLLM skips the step then.
        raise ValueError(str(exc)) from exc


def _is_complete_json(text: str) -> bool:
    try:
        json.loads(text)
    except json.JSONDecodeError:
        return False
    return True


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


# --- the tool parser ------------------------------------------------------------------------


class Llama3JsonStreamParser:
    """State machine of ``Llama3JsonToolParser.extract_tool_calls_streaming``.

    Feed it the accumulated text after each engine step; it returns the delta message vLLM
    would send (as the dict ``model_dump_json(exclude_unset=True)`` gives) or ``None`` when
    vLLM sends nothing for the step.

    Args:
        ensure_ascii: ASCII-escape the dumped arguments (G1 did, see the module docstring).
        id_factory: Makes each tool-call id.
    """

    def __init__(
        self, *, ensure_ascii: bool = False, id_factory: Callable[[], str] = new_tool_call_id
    ) -> None:
        self.prev_tool_call_arr: list[Any] = []
        self.current_tool_id = -1
        self.current_tool_name_sent = False
        self.streamed_args_for_tool: list[str] = []
        self._ensure_ascii = ensure_ascii
        self._id_factory = id_factory

    def extract(self, current_text: str, delta_text: str) -> Delta | None:
        """The delta for one engine step; ``current_text`` already includes ``delta_text``."""
        if not (current_text.startswith(BOT_TOKEN) or current_text.startswith("{")):
            return {"content": delta_text}
        try:
            return self._tool_delta(current_text)
        except Exception:  # vLLM logs any error and skips the step
            return None

    def _dumps(self, value: Any) -> str:
        return json.dumps(value, ensure_ascii=self._ensure_ascii)

    def _parse_objects(self, text: str) -> tuple[list[Any], list[bool]]:
        objects: list[Any] = []
        complete: list[bool] = []
        start = len(BOT_TOKEN) if text.startswith(BOT_TOKEN) else 0
        while start < len(text):
            obj, length = partial_json_loads(text[start:], self.current_tool_name_sent)
            complete.append(_is_complete_json(text[start : start + length]))
            start += length + len("; ")
            if "parameters" in obj:
                if "arguments" in obj:
                    raise ValueError("model generated both parameters and arguments")
                obj["arguments"] = obj["parameters"]
            objects.append(obj)
        return objects, complete

    def _arguments_delta(self, diff: str) -> Delta:
        return {"tool_calls": [{"index": self.current_tool_id, "function": {"arguments": diff}}]}

    def _tool_delta(self, text: str) -> Delta | None:
        objects, complete = self._parse_objects(text)
        if not objects:
            return None
        current = objects[self.current_tool_id]  # -1 before the first object: the last one
        if len(objects) > self.current_tool_id + 1:
            return self._start_next_object(current, len(objects))
        delta: Delta | None = None
        if not self.current_tool_name_sent:
            name = current.get("name")
            if name:
                if not isinstance(name, str):
                    raise TypeError("name must be a string")  # pydantic refuses it in vLLM
                call: Delta = {"id": self._id_factory(), "type": "function"}
                call |= {"index": self.current_tool_id, "function": {"name": name}}
                delta = {"tool_calls": [call]}
                self.current_tool_name_sent = True
        elif arguments := current.get("arguments"):
            sent = len(self.streamed_args_for_tool[self.current_tool_id])
            now = self._dumps(arguments)
            before = self.prev_tool_call_arr[self.current_tool_id].get("arguments")
            diff: str | None = None
            if complete[self.current_tool_id]:
                diff = now[sent:]
            elif before and (then := self._dumps(before)) != now:
                diff = _common_prefix(then, now)[sent:]
            if diff is not None:
                delta = self._arguments_delta(diff)
                self.streamed_args_for_tool[self.current_tool_id] += diff
        self.prev_tool_call_arr = objects
        return delta

    def _start_next_object(self, previous: Any, count: int) -> Delta | None:
        # Before moving on, send what auto-completion added to the previous call's arguments.
        delta: Delta | None = None
        if self.current_tool_id >= 0 and (arguments := previous.get("arguments")):
            sent = len(self.streamed_args_for_tool[self.current_tool_id])
            diff = self._dumps(arguments)[sent:]
            delta = self._arguments_delta(diff)
            self.streamed_args_for_tool[self.current_tool_id] += diff
        self.current_tool_id = count - 1
        self.current_tool_name_sent = False
        self.streamed_args_for_tool.append("")
        return delta  # vLLM returns here without updating prev_tool_call_arr


# --- the server's stream loop ---------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamedTurn:
    """The deltas of one streamed reply, after the first ``role`` chunk.

    Each delta becomes one chunk; the last one carries ``finish_reason``.
    """

    deltas: tuple[Delta, ...]
    finish_reason: str


def stream_plain(
    text: str, *, engine_finish_reason: str = "stop", skip_empty: bool = False
) -> StreamedTurn:
    """No tool parsing (no tools, or ``tool_choice: "none"``): every step is ``content``.

    ``skip_empty``: vLLM 0.32.0 with a tool parser configured passes such requests through the
    parser, which sends nothing for a step without text; the final step then carries an empty
    delta instead of ``{"content": ""}``.
    """
    deltas: list[Delta] = []
    for piece, finish in engine_steps(text, engine_finish_reason):
        if piece or not skip_empty:
            deltas.append({"content": piece})
        elif finish is not None:
            deltas.append({})
    return StreamedTurn(deltas=tuple(deltas), finish_reason=engine_finish_reason or "stop")


def _has_arguments(delta: Delta) -> bool:
    calls = delta.get("tool_calls")
    if not calls:
        return False
    return calls[0].get("function", {}).get("arguments") is not None


def _flush_unstreamed(parser: Llama3JsonStreamParser, delta: Delta) -> Delta:
    # serving_chat: on the last step, replace the latest fragment by everything the final
    # auto-closed parse holds beyond what was streamed before it.
    index = len(parser.prev_tool_call_arr) - 1
    last = parser.prev_tool_call_arr[index] if index >= 0 else None
    if not isinstance(last, dict):
        return delta
    latest = len(delta["tool_calls"][0]["function"]["arguments"])
    expected = json.dumps(last.get("arguments", {}), ensure_ascii=False)
    actual = parser.streamed_args_for_tool[index]
    if latest > 0:
        actual = actual[:-latest]
    remaining = expected.replace(actual, "", 1)
    return {"tool_calls": [{"index": index, "function": {"arguments": remaining}}]}


def _remaining_arguments(parser: Llama3JsonStreamParser) -> str:
    # ToolParser.get_remaining_unstreamed_args (vLLM 0.32.0): the last parsed call's arguments
    # beyond what was streamed, when what was streamed is a prefix of them.
    if not parser.prev_tool_call_arr:
        return ""
    index = len(parser.prev_tool_call_arr) - 1
    arguments = parser.prev_tool_call_arr[index].get("arguments", {})
    if isinstance(arguments, str):
        expected = arguments
    else:
        expected = json.dumps(arguments, ensure_ascii=False)
    streamed = parser.streamed_args_for_tool
    actual = streamed[index] if index < len(streamed) else ""
    return expected[len(actual) :] if expected.startswith(actual) else ""


def _stream_v032(
    parser: Llama3JsonStreamParser, text: str, engine_finish_reason: str, named: bool
) -> StreamedTurn:
    # vLLM 0.32.0's chat_completion_stream_generator with Parser.parse_delta: a step with no
    # delta sends nothing unless it is the last; the last delta's final tool call gets the
    # arguments the parser holds but never streamed; finish_reason becomes tool_calls only when a
    # tool-call delta went out, the engine stopped naturally and no function was named.
    deltas: list[Delta] = []
    tools_streamed = False
    current = ""
    for piece, finish in engine_steps(text, engine_finish_reason):
        current += piece
        delta = parser.extract(current, piece)
        calls = delta.get("tool_calls") if delta is not None else None
        tools_streamed = tools_streamed or bool(calls)
        if finish is None:
            if delta is not None:
                deltas.append(delta)
            continue
        if calls and "function" in calls[-1]:
            function = calls[-1]["function"]
            function["arguments"] = function.get("arguments", "") + _remaining_arguments(parser)
        deltas.append({} if delta is None else delta)
    upgrade = tools_streamed and not named and engine_finish_reason == "stop"
    return StreamedTurn(
        deltas=tuple(deltas), finish_reason="tool_calls" if upgrade else engine_finish_reason
    )


def stream_auto(
    text: str,
    *,
    generation: Generation = "brace",
    engine_finish_reason: str = "stop",
    id_factory: Callable[[], str] | None = None,
    ensure_ascii: bool | None = None,
    named: bool = False,
    tools: Iterable[Any] | None = None,
) -> StreamedTurn:
    """Stream ``text`` through the llama3_json parser (tools given, ``tool_choice`` auto).

    In ``"brace"`` (vLLM 0.32.0) ``tool_choice`` required and named stream this way too: the
    parser has a structural tag, so vLLM constrains the model to its own ``{"name": ...,
    "parameters": ...}`` format and parses it as in auto mode.

    Args:
        text: The raw model output.
        generation: Parser generation; ``"brace"`` also follows vLLM 0.32.0's stream loop.
        engine_finish_reason: Why the engine stopped (``"stop"`` or ``"length"``).
        id_factory: Makes each tool-call id; ``None`` picks the generation's.
        ensure_ascii: ASCII-escape streamed arguments; ``None`` picks the generation's default.
        named: ``tool_choice`` named a function (``"brace"`` only: the finish reason stays the
            engine's).
        tools: The request's tools; only ``"next"`` reads them (to coerce arguments).

    Returns:
        The deltas and the reported finish reason.
    """
    if generation == "next":
        from foxagent.testing._vllm_llama3_next import stream_next  # imports this module

        return stream_next(
            text,
            engine_finish_reason=engine_finish_reason,
            id_factory=id_factory,
            tools=tools,
            named=named,
        )
    escape = _STREAM_ENSURE_ASCII[generation] if ensure_ascii is None else ensure_ascii
    make_id = id_factory or tool_call_id_factory(generation)
    parser = Llama3JsonStreamParser(ensure_ascii=escape, id_factory=make_id)
    if generation == "brace":
        return _stream_v032(parser, text, engine_finish_reason, named)
    deltas: list[Delta] = []
    current = ""
    for piece, finish in engine_steps(text, engine_finish_reason):
        current += piece
        delta = parser.extract(current, piece)
        if finish is None:
            if delta is not None:
                deltas.append(delta)
            continue
        delta = {} if delta is None else delta
        if _has_arguments(delta):
            delta = _flush_unstreamed(parser, delta)
        deltas.append(delta)
    called = bool(parser.prev_tool_call_arr)
    return StreamedTurn(
        deltas=tuple(deltas), finish_reason="tool_calls" if called else engine_finish_reason
    )


def stream_named(
    text: str,
    name: str,
    *,
    engine_finish_reason: str = "stop",
    id_factory: Callable[[], str] = old_tool_call_id,
) -> StreamedTurn:
    """A named ``tool_choice`` up to vLLM v0.11: the constrained text is streamed raw as the
    call's arguments (vLLM 0.32.0 constrains to the llama format instead, see `stream_auto`).

    The finish reason stays the engine's (newest vLLM, and what OpenAI does).
    """
    deltas: list[Delta] = []
    for piece, _ in engine_steps(text, engine_finish_reason):
        if deltas:
            call: Delta = {"index": 0, "function": {"arguments": piece}}
        else:
            call = {"id": id_factory(), "type": "function", "index": 0}
            call["function"] = {"name": name, "arguments": piece}
        deltas.append({"tool_calls": [call]})
    return StreamedTurn(deltas=tuple(deltas), finish_reason=engine_finish_reason)


def _filter_delta_text(delta_text: str, previous_text: str) -> tuple[str, bool]:
    # serving_chat._filter_delta_text: drop the text that closes the {name, parameters}
    # object (brace level 0) and stop at a comma there. Braces inside strings count too.
    level = previous_text.count("{") - previous_text.count("}")
    kept, passed_zero = "", False
    for ch in delta_text:
        if ch in "{}":
            level += 1 if ch == "{" else -1
            passed_zero = level == 0
        if level != 0:
            kept += ch
        elif ch == ",":
            break
    return kept, passed_zero


def _required_delta(
    previous: str, current: str, piece: str, name_sent: bool, id_factory: Callable[[], str]
) -> tuple[Delta | None, bool]:
    if not current:
        return None, name_sent
    try:
        calls = partial_json_parser.loads(current, _ALL)
    except (ValueError, AssertionError, IndexError):  # what the library raises on bad text
        calls = None
    if not isinstance(calls, list) or not calls:
        return None, False
    _, finishes_previous = _filter_delta_text(piece, previous)
    call = calls[-1]
    if not isinstance(call, dict):
        return None, False
    if not finishes_previous and ("name" not in call or "parameters" not in call):
        return None, False
    if name_sent:
        fragment, _ = _filter_delta_text(piece, previous)
        if not fragment:
            return None, True
        # DeltaFunctionCall(name=None, ...) is set explicitly, so the null name is sent.
        function = {"name": None, "arguments": fragment}
        return {"tool_calls": [{"index": len(calls) - 1, "function": function}]}, True
    found = re.search(r'.*"parameters":\s*(.*)', current)
    arguments, _ = _filter_delta_text(found.group(1) if found else "", previous)
    if finishes_previous and "parameters" not in call and len(calls) > 1:
        call = calls[-2]
    first = {"id": id_factory(), "type": "function", "index": len(calls) - 1}
    first["function"] = {"name": call.get("name"), "arguments": arguments}
    return {"tool_calls": [first]}, True


def stream_required(
    text: str,
    *,
    engine_finish_reason: str = "stop",
    id_factory: Callable[[], str] = old_tool_call_id,
) -> StreamedTurn:
    """``tool_choice: "required"`` up to vLLM v0.11: the constrained text is a JSON list of
    ``{name, parameters}`` (vLLM 0.32.0 constrains to the llama format instead, see `stream_auto`).

    Ports ``extract_tool_call_required_streaming``; the finish reason is ``tool_calls`` once a
    call was started.
    """
    deltas: list[Delta] = []
    previous, name_sent, started = "", False, False
    for piece, finish in engine_steps(text, engine_finish_reason):
        current = previous + piece
        delta, name_sent = _required_delta(previous, current, piece, name_sent, id_factory)
        previous = current
        if delta is not None and delta["tool_calls"][0].get("id"):
            started = True
        if delta is None and finish is None:
            continue
        deltas.append({} if delta is None else delta)
    finish_reason = "tool_calls" if started else engine_finish_reason
    return StreamedTurn(deltas=tuple(deltas), finish_reason=finish_reason)
