"""The recovery ladder: which tool calls in a model reply are safe to run, and why not the rest.

``recover_tool_calls(message, tools, finish_reason=...)`` takes an assistant message as a vLLM
(or any OpenAI-compatible) server hands it over and returns a ``Recovery``. The rules:

1. **Server calls are hints, not facts.** When the message has ``tool_calls``, each is checked
   like any other candidate: arguments that are a JSON *string* are decoded (twice if the model
   double-encoded them), ``null``/empty mean ``{}``, broken JSON is repaired, the name goes through
   the name gate and the arguments through the tool's schema. The content is kept as text; it is
   not scanned again (vLLM leaves it empty when its parser succeeded, and a second scan would
   double the calls).
2. **Otherwise the content is scanned** for every call syntax Llama 3.x models produce (see
   ``foxagent._call_syntax``): bare JSON objects in any number and with any separator,
   OpenAI-style wrappers, ``<|python_tag|>``, code fences, ``<tool_call>``, calls inside FoxBrain
   tags, ``<function=NAME>{...}</function>``, pythonic ``[f(a=1)]``, ``name.call(...)`` and ReAct.
3. **JSON is repaired only inside a candidate's span**, never across the whole reply.
4. **Name gate.** An exact tool name passes. Otherwise the name is normalised (lower case, a
   ``functions.``/``function.``/``tools.``/``tool.`` prefix dropped, every non-alphanumeric
   character dropped) and passes only if exactly one tool normalises to the same key; so
   ``GetWeather`` and ``functions.get_weather`` reach ``get_weather``, but ``get_wether`` does not.
5. **Arguments** are validated and coerced against the tool's schema (pydantic for ``@tool``
   functions, ``jsonschema`` for schema-only tools); a pythonic call's positional arguments map
   to the parameters in order; a ReAct ``Action Input`` in plain text fills the tool's single
   required string parameter, if it has exactly one.
6. **Truncation.** A generation was cut when ``finish_reason="length"`` or when the response's
   ``completion_tokens`` reached the request's ``max_tokens`` (vLLM's streaming path can say
   ``tool_calls`` for a cut call). Then a candidate the text ends inside of is rejected,
   never completed, and so is the last server call (vLLM's stream flush auto-closes a cut call
   into valid JSON, so its values cannot be trusted). Without it, an unclosed candidate is
   completed only when nothing but closing brackets is missing.
7. **Examples are not calls.** A candidate preceded in its paragraph (within 150 characters) by an
   example cue ("for example", "e.g.", "format", "like this", 例如, 範例, 格式, ...) is rejected as
   an example, and its text stays in ``text``. So are server calls whose ``content`` (the prose
   vLLM main's parser sends before them) ends with such a cue.
8. **Placeholders are not values.** An argument that only stands in for one (``?``, ``...``,
   ``TODO``, ``<city>``, ``{{email}}``, ``[recipient]``), and a required argument that is
   ``null`` or empty (JSON repair can lose a value that way), refuse the call
   (``foxagent._placeholders``): running it is worse than asking again.
9. **Exact duplicates** (same tool and arguments) in one reply run once.
10. **Nothing is lost.** ``text`` is the reply without the call spans and special tokens; prose and
    FoxBrain tags around calls stay. Every refused candidate is in ``rejected`` with a
    one-sentence reason written to be sent back to the model.
11. **Budgets.** Parsing is linear in the reply, and the work that is not has a budget (see
    ``foxagent._call_syntax``: reply length, candidate length, nesting depth, JSON repair,
    number of candidates). At most ``MAX_CALLS`` calls of one reply are validated; every
    candidate past a budget, and every call past ``MAX_CALLS``, is refused as ``too_large``
    with a reason naming the limit, never dropped. Server arguments have the same budgets.

The function never raises: on any input it returns a ``Recovery``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from random import getrandbits
from typing import Any, Literal

from foxagent._call_syntax import (
    MAX_DEPTH,
    MAX_TEXT_CHARS,
    Candidate,
    ReplyBudget,
    decode_json,
    find_candidates,
    follows_example_cue,
    nesting_depth,
    strip_special_tokens,
)
from foxagent._envelope import unwrap_schema_envelope
from foxagent._exceptions import ToolArgumentsError
from foxagent._placeholders import placeholder_problem
from foxagent._schema_tool import SchemaTool
from foxagent._slots import slot_builder
from foxagent._tools import CheckedArguments, ToolLike

__all__ = [
    "MAX_CALLS",
    "RecoveredCall",
    "Recovery",
    "RejectedCall",
    "recover_tool_calls",
    "was_cut",
]

CallSource = Literal["server", "content", "repaired"]
RejectionKind = Literal[
    "unknown_tool",
    "invalid_arguments",
    "placeholder",
    "truncated",
    "unparseable",
    "example",
    "too_large",
]

# The most calls of one reply that are validated (each costs a schema validation); the rest are
# refused as too_large, one refusal each. Llama 3.1 makes a handful of parallel calls at most.
MAX_CALLS = 32

_PREFIX = re.compile(r"^(?:functions?|tools?)\.", re.IGNORECASE)
_NON_ALNUM = re.compile(r"[\W_]+")
_CACHE_LIMIT = 256


@dataclass(frozen=True, kw_only=True, slots=True)
class RecoveredCall:
    """A call that is safe to execute.

    Attributes:
        id: the server's id, or a new one in vLLM's ``chatcmpl-tool-<32 hex>`` form.
        name: the tool's real name.
        arguments: validated and coerced arguments (JSON-compatible).
        source: ``server`` (from ``tool_calls`` as sent), ``content`` (found in the text), or
            ``repaired`` (its JSON or its name had to be fixed).
        raw: the text the call was recovered from.
        checked: the tool's validated arguments to run with (the loop does not validate again);
            ``None`` for a call built by hand, which is validated when it runs.
        repairs: how the call was obtained and what was changed on the way, as labels: where
            it came from (``server``, ``content:json``, ``content:pythonic``, ``content:react``,
            ``content:function_tag``, ``python_tag``, ``code_fence``), and each change
            (``repaired_json``, ``completed``, ``renamed:<as written>``,
            ``coerced:<argument>``, ``unwrapped_schema``, ``deduplicated``). Counted per run,
            they say which failure families a deployment meets.
    """

    id: str
    name: str
    arguments: dict[str, Any]
    source: CallSource
    raw: str = ""
    checked: CheckedArguments | None = field(default=None, repr=False, compare=False)
    repairs: tuple[str, ...] = ()

    def openai_tool_call(self) -> dict[str, Any]:
        """The call as an OpenAI ``tool_calls`` entry, arguments re-serialised as a JSON object."""
        arguments = json.dumps(self.arguments, ensure_ascii=False)
        function = {"name": self.name, "arguments": arguments}
        return {"id": self.id, "type": "function", "function": function}


@dataclass(frozen=True, kw_only=True, slots=True)
class RejectedCall:
    """A candidate call that must not run.

    Attributes:
        kind: why, as a category; ``too_large`` when it exceeded a parsing budget (its reason
            names the limit).
        reason: one sentence for the model, naming the tool and what is wrong.
        name: the tool name as the model wrote it, if any.
        id: the server's id when the candidate came from ``tool_calls``, else a new one.
        raw: the text of the candidate.
    """

    kind: RejectionKind
    reason: str
    name: str | None = None
    id: str = ""
    raw: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class Recovery:
    """What a reply contains: calls to run, candidates refused, and the rest of the text."""

    calls: tuple[RecoveredCall, ...] = ()
    rejected: tuple[RejectedCall, ...] = ()
    text: str = ""


def new_call_id() -> str:
    """A tool-call id in the form vLLM generates: ``chatcmpl-tool-`` + 32 hex characters.

    From ``random`` (reseeded after a fork), not ``uuid4``: an id names a call, it guards
    nothing, and ``os.urandom`` cost ~18 µs a call here, twice per run.
    """
    return f"chatcmpl-tool-{getrandbits(128):032x}"


def recover_tool_calls(
    message: Any,
    tools: Iterable[Any] | ToolIndex,
    *,
    finish_reason: str | None = None,
    completion_tokens: int | None = None,
    max_tokens: int | None = None,
) -> Recovery:
    """Find the tool calls in an assistant reply that are safe to run (module docstring: rules).

    Args:
        message: an OpenAI assistant message, as a dict (``content``, ``tool_calls``) or as the
            openai SDK's message object.
        tools: ``Tool`` objects, a ``Toolset``, or OpenAI tool-schema dicts.
        finish_reason: the choice's finish reason; ``"length"`` switches on truncation checks.
        completion_tokens: the response's ``usage.completion_tokens``.
        max_tokens: the request's ``max_tokens``. When ``completion_tokens`` reached it, the
            generation was cut whatever ``finish_reason`` says (vLLM's streaming path can
            report ``tool_calls`` for a cut call), and truncation checks apply.

    Returns:
        The calls to run, the refused candidates with reasons, and the reply's remaining text.
    """
    content, server_calls = _read_message(message)
    try:
        index = ToolIndex.of(tools)
        truncated = finish_reason == "length" or was_cut(completion_tokens, max_tokens)
        if server_calls:
            return _from_server(server_calls, content, index, truncated)
        return _from_content(content, index, truncated)
    except Exception:  # the promise is "never raises": keep the text, run nothing
        return Recovery(text=content)


def was_cut(completion_tokens: int | None, max_tokens: int | None) -> bool:
    """The usage says the generation stopped at ``max_tokens`` (it was cut)."""
    if not max_tokens or completion_tokens is None:
        return False
    return completion_tokens >= max_tokens


class ToolIndex:
    """Tools by exact name and by normalised name."""

    # Schema dicts become SchemaTools (a jsonschema validator each, which is costly to build);
    # remember them per dict object so a caller passing the same list every time pays once.
    _schema_tools: dict[int, tuple[Mapping[str, Any], SchemaTool]] = {}  # noqa: RUF012

    def __init__(self, tools: Iterable[Any]) -> None:
        self.by_name: dict[str, ToolLike] = {}
        for item in tools:
            converted = self._schema_tool(item) if isinstance(item, Mapping) else item
            self.by_name[converted.name] = converted
        keys: dict[str, list[str]] = {}
        for name in self.by_name:
            keys.setdefault(_normal(name), []).append(name)
        self._by_key = {key: names[0] for key, names in keys.items() if len(names) == 1}

    @classmethod
    def of(cls, tools: Iterable[Any] | ToolIndex) -> ToolIndex:
        """An index for ``tools`` (returned as is when it already is one)."""
        return tools if isinstance(tools, ToolIndex) else cls(tools)

    @classmethod
    def _schema_tool(cls, schema: Mapping[str, Any]) -> SchemaTool:
        cached = cls._schema_tools.get(id(schema))
        if cached is not None and cached[0] is schema:
            return cached[1]
        if len(cls._schema_tools) >= _CACHE_LIMIT:
            cls._schema_tools.clear()
        converted = SchemaTool(schema)
        cls._schema_tools[id(schema)] = (schema, converted)
        return converted

    def resolve(self, name: str) -> tuple[ToolLike | None, bool]:
        """The tool a written name means, and whether the name had to be normalised."""
        exact = self.by_name.get(name)
        if exact is not None:
            return exact, False
        real = self._by_key.get(_normal(name))
        return (self.by_name[real], True) if real is not None else (None, False)

    def names(self) -> str:
        return ", ".join(self.by_name) or "none"


def _normal(name: str) -> str:
    return _NON_ALNUM.sub("", _PREFIX.sub("", name.strip())).lower()


# --- reading the message ---------------------------------------------------------------------


def _field(obj: Any, key: str) -> Any:
    if type(obj) is dict:  # the hot path: wire JSON; the ABC check below costs more
        return obj.get(key)
    if isinstance(obj, Mapping):
        return obj.get(key)
    return getattr(obj, key, None)


def _read_message(message: Any) -> tuple[str, list[tuple[str, Any, Any]]]:
    """``(content, [(id, name, arguments), ...])`` from a dict or an SDK object, defensively."""
    try:
        content = _content_text(_field(message, "content"))
        calls = []
        for call in _field(message, "tool_calls") or ():
            function = _field(call, "function") or {}
            calls.append(
                (_field(call, "id") or "", _field(function, "name"), _field(function, "arguments"))
            )
        return content, calls
    except Exception:  # an exotic message object: whatever text it has is all we can use
        return (message if isinstance(message, str) else ""), []


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):  # OpenAI content parts
        return "".join(str(_field(part, "text") or "") for part in content)
    return str(content)


# --- server tool_calls -------------------------------------------------------------------------


def _from_server(
    server_calls: list[tuple[str, Any, Any]], content: str, index: ToolIndex, truncated: bool
) -> Recovery:
    accepted: list[RecoveredCall] = []
    rejected: list[RejectedCall] = []
    last = len(server_calls) - 1
    budget = ReplyBudget(sum(len(a) for _, _, a in server_calls if isinstance(a, str)))
    # A server that sends the prose before its calls (vLLM main's parser) shows when they are
    # examples: the text introducing them ends with a cue ("for example", "格式如下：").
    example = bool(content) and follows_example_cue(content.rstrip(), len(content.rstrip()))
    for position, (call_id, name, arguments) in enumerate(server_calls):
        call_id = str(call_id) if call_id else new_call_id()
        raw = _raw_server_call(name, arguments)
        if example:
            reason = f"The call to '{name}' is an example in the text, not a call; it was not run."
            rejected.append(
                RejectedCall(kind="example", reason=reason, name=name, id=call_id, raw=raw)
            )
            continue
        if truncated and position == last:
            rejected.append(_truncated(name, call_id, raw))
            continue
        if position >= MAX_CALLS:
            rejected.append(_too_many(name, call_id, raw))
            continue
        decoded, repaired, error = _decode_arguments(arguments, budget)
        if error is not None:
            decoded = error
        outcome = _gate(index, name, decoded, (), call_id, raw, repaired, "server")
        _sort(outcome, accepted, rejected)
    return Recovery(calls=_dedupe(accepted), rejected=tuple(rejected), text=_clean(content))


_RAW_LIMIT = 2_000  # characters of a too-large candidate kept in its refusal's ``raw``


def _raw_server_call(name: Any, arguments: Any) -> str:
    if not isinstance(arguments, str) and nesting_depth(arguments) > MAX_DEPTH:
        arguments = f"<{type(arguments).__name__} nested more than {MAX_DEPTH} levels deep>"
    try:
        return f"{name}({arguments})"
    except (RecursionError, ValueError):  # repr of an exotic object
        return f"{name}(...)"


def _decode_arguments(
    arguments: Any, budget: ReplyBudget | None = None
) -> tuple[Any, bool, _Undecodable | None]:
    """Server-side arguments as a value: unwrap JSON strings (twice at most), null → {}."""
    repaired = False
    for _ in range(2):
        if not isinstance(arguments, str):
            break
        text = arguments.strip()
        if text in ("", "null"):
            return {}, repaired, None
        if len(text) > MAX_TEXT_CHARS:
            limit = (
                f"its arguments ({len(text):,} characters) are longer than "
                f"{MAX_TEXT_CHARS:,} characters, the limit (MAX_TEXT_CHARS)"
            )
            return None, repaired, _Undecodable(limit, too_large=True)
        decoded = decode_json(text, budget)  # strict, else the same in-span repair as content
        if decoded.limit is not None:
            return None, True, _Undecodable(decoded.limit, too_large=True)
        if decoded.value is None:
            return None, True, _Undecodable(decoded.problem or "are not valid JSON")
        arguments, repaired = decoded.value, repaired or decoded.repaired
    if arguments is None:
        return {}, repaired, None
    if nesting_depth(arguments) > MAX_DEPTH:
        limit = f"its arguments are nested more than {MAX_DEPTH} levels deep, the limit (MAX_DEPTH)"
        return None, repaired, _Undecodable(limit, too_large=True)
    return arguments, repaired, None


# --- content -----------------------------------------------------------------------------------


def _from_content(content: str, index: ToolIndex, truncated: bool) -> Recovery:
    if not content:
        return Recovery()
    flat = _one_plain_call(content, index)
    if flat is not None:
        return flat
    budget = ReplyBudget(len(content))
    candidates = find_candidates(content, budget)
    accepted: list[RecoveredCall] = []
    rejected: list[RejectedCall] = []
    attempts = 0
    for candidate in candidates:
        if attempts >= MAX_CALLS and not candidate.example and candidate.limit is None:
            if _dropped_as_code(candidate, index):
                continue
            rejected.append(_too_many(candidate.name, new_call_id(), candidate.raw))
            continue
        outcome = _judge(candidate, index, truncated, budget)
        if isinstance(outcome, RecoveredCall):
            outcome = _with_wrappers(outcome, content[candidate.start : candidate.end])
        if outcome is not None:
            _sort(outcome, accepted, rejected)
            if not (isinstance(outcome, RejectedCall) and outcome.kind == "example"):
                attempts += 1
    spans = [(c.start, c.end) for c in candidates if not c.example and c.start < c.end]
    return Recovery(
        calls=_dedupe(accepted), rejected=tuple(rejected), text=_clean(_cut(content, spans))
    )


# What sends a reply down the general path even when it is one JSON call: markers another finder
# or a wrapper reacts to ("[" starts pythonic lists, "\\" may need LaTeX restored, "<|" special
# tokens, "(" after a python tag...), so the flat path never decides what the ladder would not.
_NOT_FLAT = ("[", "\\", "<|", "```", "Action", "<function=", ".call", "<tool_call>")
_NOT_FLAT_RE = re.compile("|".join(map(re.escape, _NOT_FLAT)))  # one search, not eight
_FLAT_MAX_CHARS = 4_096
# What json.loads runs, without its outer wrapper: (value, end) of the JSON value a text starts
# with (JSONDecodeError, a ValueError, when there is none).
_RAW_DECODE = json.JSONDecoder().raw_decode


def _one_plain_call(content: str, index: ToolIndex) -> Recovery | None:
    """The common reply, one ``{"name": ..., "parameters": {...}}`` object and nothing else,
    judged without the search: the `Recovery` the general path returns for it, or ``None``
    for any other reply.

    For such a text the finders find exactly one candidate, the whole object: the ReAct,
    function-tag and pythonic finders need a marker in `_NOT_FLAT` (a bare call must start
    with a letter), the object decodes strictly (no repair, no LaTeX to restore without a
    backslash, no nesting past ``MAX_DEPTH`` without more brackets than that), no example cue
    or wrapper surrounds it, and its name and arguments are read from those two keys. What
    remains is the gate, which both paths share; ``tests/test_hot_path_recovery.py`` holds
    them to the same answers.
    """
    text = content.strip()
    if (
        len(text) > _FLAT_MAX_CHARS
        or not text.startswith('{"name"')
        or not text.endswith("}")
        or text.count("{") > MAX_DEPTH
        or _NOT_FLAT_RE.search(text) is not None
    ):
        return None
    try:  # json.loads(text): the text has no white space around it to skip
        value, end = _RAW_DECODE(text)
    except ValueError:
        return None
    if end != len(text):
        return None
    if type(value) is not dict or len(value) != 2:
        return None
    name, arguments = value.get("name"), value.get("parameters")
    if type(name) is not str or type(arguments) is not dict:
        return None
    outcome = _gate(
        index, name, arguments, (), new_call_id(), text, False, "content", ("content:json",)
    )
    if isinstance(outcome, RecoveredCall):
        return Recovery(calls=(outcome,))
    return Recovery(rejected=(outcome,))


def _dropped_as_code(candidate: Candidate, index: ToolIndex) -> bool:
    """A broken pythonic candidate naming no tool, outside a python tag, is code in prose."""
    if candidate.syntax != "pythonic" or (candidate.error is None and candidate.limit is None):
        return False
    return index.resolve(candidate.name or "")[0] is None and "<|python_tag|>" not in candidate.raw


def _judge(
    candidate: Candidate, index: ToolIndex, truncated: bool, budget: ReplyBudget | None = None
) -> RecoveredCall | RejectedCall | None:
    raw = candidate.raw
    name = candidate.name
    if candidate.example:
        reason = f"The call to '{name}' is an example in the text, not a call; it was not run."
        return RejectedCall(kind="example", reason=reason, name=name, raw=raw)
    if _dropped_as_code(candidate, index):
        return None  # `[print(x)` in prose is code, not a call attempt
    if candidate.limit is not None:
        return _too_large(name, new_call_id(), raw, candidate.limit)
    if not candidate.closed and (truncated or not candidate.completed):
        return _truncated(name, new_call_id(), raw)
    if candidate.error is not None or name is None:
        what = f"tool '{name}'" if name else "a tool"
        reason = f"A call to {what} could not be read: {candidate.error or 'no tool name'}."
        return RejectedCall(kind="unparseable", reason=reason, name=name, raw=raw)
    arguments = candidate.arguments
    if isinstance(arguments, str) and candidate.syntax != "react":
        arguments, repaired, error = _decode_arguments(arguments, budget)
        if error is not None:
            arguments = error
        candidate.repaired = candidate.repaired or repaired
    source: CallSource = "repaired" if candidate.repaired else "content"
    origin = _content_origin(candidate)
    return _gate(
        index, name, arguments, candidate.positional, new_call_id(), raw, False, source, origin
    )


def _with_wrappers(call: RecoveredCall, span: str) -> RecoveredCall:
    """``call`` with labels for the wrappers its span absorbed (python tag, code fence)."""
    wrappers = [label for token, label in _WRAPPERS if token in span]
    if not wrappers:
        return call
    first, *rest = call.repairs
    return replace(call, repairs=(first, *wrappers, *rest))


_WRAPPERS = (("<|python_tag|>", "python_tag"), ("```", "code_fence"))


def _content_origin(candidate: Candidate) -> tuple[str, ...]:
    """Where a call found in the text came from, and how it had to be read."""
    labels = [f"content:{candidate.syntax}"]
    if candidate.repaired:
        labels.append("repaired_json")
    if candidate.completed:
        labels.append("completed")
    return tuple(labels)


def _truncated(name: Any, call_id: str, raw: str) -> RejectedCall:
    what = f"The call to tool '{name}'" if name else "A tool call"
    reason = f"{what} was cut off at the output limit, so it was not run; send it again, shorter."
    return RejectedCall(kind="truncated", reason=reason, name=name, id=call_id, raw=raw)


def _too_large(name: Any, call_id: str, raw: str, limit: str) -> RejectedCall:
    what = f"The call to tool '{name}'" if name else "A tool call"
    reason = f"{what} was not run: {limit}."
    raw = raw if len(raw) <= _RAW_LIMIT else raw[:_RAW_LIMIT] + "…"
    return RejectedCall(kind="too_large", reason=reason, name=name, id=call_id, raw=raw)


def _too_many(name: Any, call_id: str, raw: str) -> RejectedCall:
    limit = (
        f"the reply holds more than {MAX_CALLS} tool calls, the most foxagent runs from one "
        "reply (MAX_CALLS); send the rest in the next reply"
    )
    return _too_large(name, call_id, raw, limit)


@dataclass(frozen=True, slots=True)
class _Undecodable:
    """Arguments that could not be decoded; refused after the name gate, naming the tool.

    ``too_large``: they exceeded a parsing budget (``reason`` names it), refused as such.
    """

    reason: str
    too_large: bool = False


# --- the gate ----------------------------------------------------------------------------------


def _gate(
    index: ToolIndex,
    name: Any,
    arguments: Any,
    positional: tuple[Any, ...],
    call_id: str,
    raw: str,
    repaired: bool,
    source: CallSource,
    origin: tuple[str, ...] = ("server",),
) -> RecoveredCall | RejectedCall:
    if not isinstance(name, str) or not name.strip():
        reason = f"A tool call has no tool name. Available tools: {index.names()}."
        return RejectedCall(kind="unparseable", reason=reason, id=call_id, raw=raw)
    tool, renamed = index.resolve(name)
    if tool is None:
        reason = f"Unknown tool '{name}'. Available tools: {index.names()}."
        return RejectedCall(kind="unknown_tool", reason=reason, name=name, id=call_id, raw=raw)
    if isinstance(arguments, _Undecodable) and arguments.too_large:
        return _too_large(name, call_id, raw, arguments.reason)
    mapped = _arguments_object(tool, arguments, positional)
    if isinstance(mapped, str):
        reason = f"Invalid arguments for tool '{tool.name}': {mapped}."
        return RejectedCall(kind="invalid_arguments", reason=reason, name=name, id=call_id, raw=raw)
    unwrapped = unwrap_schema_envelope(tool.parameters, mapped)
    mapped = mapped if unwrapped is None else unwrapped
    if (stand_in := placeholder_problem(tool.name, tool.parameters, mapped)) is not None:
        return RejectedCall(kind="placeholder", reason=stand_in, name=name, id=call_id, raw=raw)
    try:
        checked = tool.check_arguments(mapped)
    except ToolArgumentsError as error:
        return RejectedCall(
            kind="invalid_arguments", reason=str(error), name=name, id=call_id, raw=raw
        )
    accepted = checked.arguments
    coerced = _coerced(mapped, accepted)
    if not (repaired or renamed or unwrapped is not None or coerced):
        return _recovered(call_id, tool.name, accepted, source, raw, checked, origin)  # as sent
    if (repaired or renamed) and source == "server":
        source = "repaired"
    elif renamed:
        source = "repaired"
    changes = [*origin, "repaired_json"] if repaired else list(origin)
    if unwrapped is not None:
        changes.append("unwrapped_schema")
    if renamed:
        changes.append(f"renamed:{name}")
    changes.extend(f"coerced:{key}" for key in coerced)
    return _recovered(call_id, tool.name, accepted, source, raw, checked, tuple(changes))


def _coerced(sent: Mapping[str, Any], accepted: Mapping[str, Any]) -> list[str]:
    """The arguments whose accepted value is not what the model sent (coerced, loosened)."""
    return [key for key, value in accepted.items() if key in sent and sent[key] != value]


def _recovered(
    call_id: str,
    name: str,
    arguments: dict[str, Any],
    source: CallSource,
    raw: str,
    checked: CheckedArguments,
    repairs: tuple[str, ...],
) -> RecoveredCall:
    """``RecoveredCall(...)`` built by `slot_builder` (about 0.4 µs less per call than the
    frozen dataclass's ``__init__``)."""
    return _BUILD_CALL(call_id, name, arguments, source, raw, checked, repairs)


_BUILD_CALL = slot_builder(RecoveredCall)


def _arguments_object(
    tool: ToolLike, arguments: Any, positional: tuple[Any, ...]
) -> dict[str, Any] | str:
    """The arguments as a dict, or a sentence saying why they cannot be one."""
    if type(arguments) is dict and not positional:
        return dict(arguments)  # the usual JSON object: the checks below all pass it through
    if isinstance(arguments, _Undecodable):
        return f"the arguments {arguments.reason}; send them as a JSON object"
    if arguments is None:
        arguments = {}
    if isinstance(arguments, str):  # ReAct plain-text input
        required = [
            p
            for p in tool.parameters.get("required") or ()
            if (tool.parameters["properties"].get(p) or {}).get("type") == "string"
        ]
        if len(required) == 1 and len(tool.parameters.get("required") or ()) == 1:
            return {required[0]: arguments}
        return "expected a JSON object of arguments, got plain text"
    if not isinstance(arguments, Mapping):
        return f"expected an object of arguments, got {type(arguments).__name__}"
    result = dict(arguments)
    if positional:
        properties = list(tool.parameters.get("properties") or ())
        if len(positional) > len(properties):
            return f"too many positional arguments ({len(positional)} for {len(properties)})"
        for name, value in zip(properties, positional, strict=False):
            if name in result:
                return f"'{name}' given both by position and by name"
            result[name] = value
    return result


# --- assembling the result -----------------------------------------------------------------


def _sort(
    outcome: RecoveredCall | RejectedCall,
    accepted: list[RecoveredCall],
    rejected: list[RejectedCall],
) -> None:
    if isinstance(outcome, RecoveredCall):
        accepted.append(outcome)
    else:
        rejected.append(outcome)


def _dedupe(calls: list[RecoveredCall]) -> tuple[RecoveredCall, ...]:
    if len(calls) < 2:
        return tuple(calls)
    kept: dict[str, int] = {}
    unique: list[RecoveredCall] = []
    for call in calls:
        key = call.name + "\x00" + json.dumps(call.arguments, sort_keys=True, ensure_ascii=False)
        if key not in kept:
            kept[key] = len(unique)
            unique.append(call)
        elif "deduplicated" not in unique[kept[key]].repairs:
            first = unique[kept[key]]
            unique[kept[key]] = replace(first, repairs=(*first.repairs, "deduplicated"))
    return tuple(unique)


def _cut(text: str, spans: list[tuple[int, int]]) -> str:
    if not spans:
        return text
    pieces = []
    position = 0
    for start, end in sorted(spans):
        if start > position:
            pieces.append(text[position:start])
        position = max(position, end)
    pieces.append(text[position:])
    return "\n".join(piece.strip() for piece in pieces if piece.strip())


def _clean(text: str) -> str:
    text = strip_special_tokens(text)
    return (_BLANK_LINES.sub("\n\n", text) if "\n\n\n" in text else text).strip()


_BLANK_LINES = re.compile(r"\n{3,}")
