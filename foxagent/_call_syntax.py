"""Finding tool-call candidates inside the text of a model reply.

This module only *finds and decodes*; it never decides whether a call may run (that is
``foxagent._recovery``'s gate). Decoding one span as JSON (in C, mended, or repaired by
``json_repair`` within its budgets) lives in ``foxagent._json_spans``.

Each finder claims a span of the text; spans never overlap, and the first finder to claim text
wins, in this order:

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

Budgets
-------

The text is the model's, so it can be hostile (a loop of ``{``, 4,000 spaces after ``Action:``,
arguments nested 1,000 deep). Every scan here is linear in the text: the patterns have no nested
quantifiers over overlapping classes, brackets are matched by one token scan that remembers the
match of every bracket it passes (so a later candidate inside an earlier one costs nothing), a
finder never rescans a claimed span, and wrappers are absorbed a bounded number of times. The
work that cannot be linear or cheap has a budget; past one, the candidate gets ``limit`` (a
clause naming the budget) and is refused as ``too_large``, never skipped in silence:

* ``MAX_TEXT_CHARS`` (262,144): the longest reply searched for calls. Longer replies are not
  searched at all (one refusal if anything in them looks like a call), so no reply costs more
  than one scan of 256 KiB (about 64k tokens, far past any ``max_tokens`` a run uses).
* ``MAX_SPAN_CHARS`` (65,536): the longest candidate. The bracket scan of one candidate stops
  there; a call this long is not one a model means to make, and the cap bounds what the decoders
  below ever see.
* ``MAX_DEPTH`` (64): the deepest bracket nesting of one candidate or of decoded arguments.
  ``json.loads``, ``ast`` and the schema validators recurse, and deeper input makes them raise
  ``RecursionError`` (before this budget a 1,000-deep object made recovery return nothing); real
  tool arguments are a few levels deep.
* ``MAX_REPAIR_CHARS`` (256) and ``MAX_REPAIR_TOTAL_CHARS`` (1,024): the longest span
  handed to ``json_repair``, and the most characters it repairs per reply. ``json_repair`` is
  pure Python, 3 to 6 µs a character on plain broken JSON plus about 0.1 ms a call, and
  quadratic on some shapes (stray quotes inside strings: 300 characters take 7 ms), so it is
  the one part of parsing that is not linear; these budgets bound it. Each repair is charged
  at least ``_MIN_REPAIR_CHARGE`` (128) characters, so a reply gets 8 repairs at most, however
  small. The quadratic shapes take about 0.8 ms at 256 characters (3.2 ms at 512), so a reply
  costs at most about 4 ms of repair. Longer spans, and spans past the reply's budget, get
  only the decoders in C (strict, then with raw newlines in strings allowed and trailing commas
  dropped, the slips of long spans). The repairs in the recovery corpus are under 150
  characters each.
* ``MAX_DECODE_FACTOR`` (4): the characters decoded for one reply, over all its candidates,
  are at most 4 times its length (plus 4,096). Candidates are decoded in C, but an object that
  cannot be decoded is searched inside for calls (a broken wrapper around good calls), and
  nested broken objects would make that quadratic; the budget keeps it linear.
* ``MAX_CANDIDATES`` (64): the most candidates one reply is searched for; the search stops
  with one refusal after that. It bounds the decoding and judging work per reply. Pythonic
  starts that turn out to be code, not calls (``[int(x) for x in y]``), are not candidates,
  but the characters parsed for them count against ``MAX_TEXT_CHARS``, so nested code
  cannot make the parser read the reply many times over.
"""

from __future__ import annotations

import ast
import bisect
import itertools
import re
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from foxagent._json_spans import (
    _STRING,
    MAX_DECODE_FACTOR,
    MAX_DEPTH,
    MAX_REPAIR_CHARS,
    MAX_REPAIR_TOTAL_CHARS,
    MAX_SPAN_CHARS,
    MAX_TEXT_CHARS,
    Decoded,
    ReplyBudget,
    completion,
    decode_json,
    loads_repaired,
    nesting_depth,
    too_deep,
    too_long,
)
from foxagent._latex import restore_latex

__all__ = [
    "MAX_CANDIDATES",
    "MAX_DECODE_FACTOR",
    "MAX_DEPTH",
    "MAX_REPAIR_CHARS",
    "MAX_REPAIR_TOTAL_CHARS",
    "MAX_SPAN_CHARS",
    "MAX_TEXT_CHARS",
    "Candidate",
    "Decoded",
    "ReplyBudget",
    "decode_json",
    "find_candidates",
    "follows_example_cue",
    "loads_repaired",
    "nesting_depth",
    "strip_special_tokens",
]
MAX_CANDIDATES: Final = 64
# Wrapper tokens absorbed on each side of one candidate (fences, brackets, tags): real replies
# have three at most; a run of ten thousand ``[`` stays in the text instead of being absorbed
# one by one.
_MAX_WRAPPERS: Final = 16

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
# ReAct, as three anchored pieces scanned in turn (one regex with a lazy name between two
# `[ \t]*` was cubic on "Action:" + spaces): the Action line, the Action Input line after it,
# and the line that ends the input.
_REACT_ACTION = re.compile(r"^[ \t]*Action[ \t]*:", re.MULTILINE)
_REACT_INPUT = re.compile(r"\s*Action[ \t]*Input[ \t]*:[ \t]*")
_REACT_END = re.compile(r"\n[ \t]*(?:Observation|Thought|Action|Final Answer)[ \t]*:")
_FUNCTION_TAG = re.compile(r"<function=([A-Za-z_][\w.\-]*)>\s*")
_FUNCTION_TAG_END = re.compile(r"\s*</function>")
_PYTHONIC_LIST = re.compile(r"\[\s*[A-Za-z_][\w.]*\s*\(")
_DOT_CALL = re.compile(r"\b[A-Za-z_]\w*\.call\s*\(")
_BARE_CALL = re.compile(r"[A-Za-z_][\w.]*\s*\(")
_WORD_RUN = re.compile(r"[\w.]+")
_OPEN_PAREN = re.compile(r"\s*\(")
_ASCII_NAME_START = re.compile(r"[A-Za-z_]")
_PYTHON_TAG = "<|python_tag|>"
_WRAP_BEFORE = re.compile(
    r"(?:<\|python_tag\|>|<tool_call>|```[a-zA-Z]*[ \t]*\n?|\[|Action[ \t]*Input[ \t]*:)\s*\Z"
)
_WRAP_AFTER = re.compile(r"\s*(?:</tool_call>|<\|eom_id\|>|<\|eot_id\|>|\n?```|\])")
_SEPARATOR_ONLY = re.compile(r"[\s,;，；]*\Z")
# A JSON string literal, possibly unterminated (the unrolled `"(?:[^"\\]|\\.)*"?`).
# Bracket scanning sees only brackets and whole string literals (skipped in one match);
# everything else is passed over inside the regex.
_BRACKETS = r"[{}\[\]()｛｝［］（）]"
_JSON_TOKEN = re.compile(rf'{_BRACKETS}|{_STRING}"?')
_PYTHON_TOKEN = re.compile(rf"{_BRACKETS}|{_STRING}\"?|'[^'\\]*(?:\\[\s\S][^'\\]*)*'?")
_OPENERS = frozenset("{[(｛［（")
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
        limit: the budget it exceeded (a clause naming it), if any; it is then not decoded.
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
    limit: str | None = None


def strip_special_tokens(text: str) -> str:
    """Remove Llama special tokens (and header blocks) from text."""
    return _SPECIAL_TOKEN.sub("", text) if "<|" in text else text


class _Span(NamedTuple):
    end: int
    closed: bool
    depth: int
    limit: str | None = None


class _Brackets:
    """String-aware bracket matching over one text, linear over all the candidates of a reply.

    A scan from ``start`` reads only bracket, quote and backslash characters. Every opening
    bracket it meets outside a string starts, in a fresh scan, exactly where this scan is (no
    string open), so its match is recorded on the way and a later ``match`` there is a lookup.
    A scan stops past ``MAX_SPAN_CHARS`` characters or ``MAX_DEPTH`` levels.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self._known: dict[tuple[int, bool], _Span] = {}

    def match(self, start: int, *, python: bool = False) -> _Span:
        """Where the bracketed expression at ``start`` ends (exclusive) and whether it closed.

        Brackets inside double-quoted strings (and single-quoted ones in Python mode) do not
        count. Full-width brackets count as ASCII ones, and any closer closes any opener.
        """
        known = self._known.get((start, python))
        if known is not None:
            return known
        text = self.text
        stop = min(len(text), start + MAX_SPAN_CHARS)
        quotes = "\"'" if python else '"'
        depth = deepest = 0
        record = True
        opened: list[list[int]] = []  # [position, level, deepest level inside]
        for token in (_PYTHON_TOKEN if python else _JSON_TOKEN).finditer(text, start, stop):
            index = token.start()
            ch = text[index]
            if ch in quotes:  # a whole string literal (one left open runs to the stop)
                continue
            if ch in _OPENERS:
                depth += 1
                if depth > MAX_DEPTH:
                    return _Span(index + 1, False, depth, too_deep())
                deepest = max(deepest, depth)
                opened.append([index, depth, depth])
                continue
            depth -= 1  # a closer
            if opened:
                position, level, inner = opened.pop()
                if record:
                    self._known[(position, python)] = _Span(index + 1, True, inner - level + 1)
                if opened and opened[-1][2] < inner:
                    opened[-1][2] = inner
            else:  # a closer before any opener: depth is no longer the stack's height
                record = False
            if depth == 0:
                return self._remember(start, python, _Span(index + 1, True, deepest))
        if stop < len(text):
            size = too_long("the call", MAX_SPAN_CHARS, "MAX_SPAN_CHARS")
            return _Span(stop, False, deepest, size)
        if record:
            for position, level, inner in opened:
                self._known[(position, python)] = _Span(len(text), False, inner - level + 1)
        return self._remember(start, python, _Span(len(text), False, deepest))

    def _remember(self, start: int, python: bool, span: _Span) -> _Span:
        self._known[(start, python)] = span
        return span


class _Taken:
    """The claimed spans of the text, merged, for ``O(log n)`` "is this position claimed?"."""

    def __init__(self) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []

    def end_of(self, position: int) -> int | None:
        """The end of the claimed span holding ``position``, or ``None`` if it is free."""
        index = bisect.bisect_right(self._starts, position) - 1
        if index >= 0 and position < self._ends[index]:
            return self._ends[index]
        return None

    def add(self, start: int, end: int) -> None:
        if end <= start:
            return
        low = bisect.bisect_left(self._ends, start)  # first span that ends at or after start
        high = bisect.bisect_right(self._starts, end)  # spans from here on start after end
        if low < high:
            start = min(start, self._starts[low])
            end = max(end, self._ends[high - 1])
        self._starts[low:high] = [start]
        self._ends[low:high] = [end]


class _Scan:
    """One reply's search: the text, its bracket matches, claimed spans and budgets."""

    def __init__(self, text: str, budget: ReplyBudget) -> None:
        self.text = text
        self.brackets = _Brackets(text)
        self.taken = _Taken()
        self.budget = budget
        self.count = 0  # candidates found
        self.parsed = 0  # characters handed to ast.parse (starts that were no call count too)

    def full(self) -> bool:
        return self.count >= MAX_CANDIDATES

    def overflow(self, position: int) -> Candidate:
        """The refusal standing for everything from ``position`` on, once the search is full."""
        limit = (
            f"the reply holds more than {MAX_CANDIDATES} tool-call candidates, the most "
            f"foxagent reads (MAX_CANDIDATES); the rest of it, from character {position:,}, "
            "was not searched"
        )
        self.count += 1
        return Candidate(position, position, None, syntax="limit", limit=limit)


def find_candidates(text: str, budget: ReplyBudget | None = None) -> list[Candidate]:
    """Every call candidate in ``text``, in order of position, with wrapper-absorbed spans.

    ``budget`` is the reply's (shared with the decoding of the calls' string arguments); a new
    one by default.
    """
    if len(text) > MAX_TEXT_CHARS:
        if not _might_hold_calls(text):
            return []
        size = too_long(f"the reply ({len(text):,} characters)", MAX_TEXT_CHARS, "MAX_TEXT_CHARS")
        limit = f"{size}, so it was not searched for tool calls"
        return [Candidate(0, 0, None, syntax="limit", limit=limit)]
    if not _any_finder_looks(text):
        return []  # the usual FoxBrain answer: no finder would even start
    scan = _Scan(text, ReplyBudget(len(text)) if budget is None else budget)
    found: list[Candidate] = []
    for finder in (_find_react, _find_function_tags, _find_pythonic, _find_json):
        for candidate in finder(scan):
            found.append(candidate)
            scan.taken.add(candidate.start, candidate.end)
    found.sort(key=lambda c: c.start)
    for candidate in found:
        if candidate.start < candidate.end:
            candidate.example = follows_example_cue(text, candidate.start)
    _absorb_wrappers(text, found)
    return found


def _any_finder_looks(text: str) -> bool:
    """The negative pre-check: false when every finder would return at its own first test
    (ReAct needs "Action", tags "<function=", pythonic calls "(", JSON objects a call key's
    letters), so a reply without any of them holds no candidate."""
    return "(" in text or "Action" in text or "<function=" in text or _call_hint(text)


def _call_hint(text: str) -> bool:
    """``_CALL_HINT.search(text)``, as four substring searches (the alternation costs ~9 µs on
    4 KB of CJK, these well under one)."""
    return "name" in text or "function" in text or "tool" in text or "action" in text


def _might_hold_calls(text: str) -> bool:
    """Whether any finder would look at ``text`` at all (a linear pre-check)."""
    return bool(
        "Action" in text
        or "<function=" in text
        or _PYTHON_TAG in text
        or _PYTHONIC_LIST.search(text)
        or _DOT_CALL.search(text)
        or _CALL_START.search(text)
    )


def _limited(
    start: int, end: int, name: str | None, syntax: str, limit: str, text: str
) -> Candidate:
    candidate = Candidate(start, end, name, syntax=syntax, closed=True, limit=limit)
    candidate.raw = text[start:end]
    return candidate


# --- ReAct -----------------------------------------------------------------------------------


def _find_react(scan: _Scan) -> list[Candidate]:
    text = scan.text
    if "Action" not in text:
        return []
    found: list[Candidate] = []
    position = 0
    while True:
        head = _REACT_ACTION.search(text, position)
        if head is None:
            return found
        position = head.end()
        line_end = text.find("\n", position)
        if line_end < 0:
            return found
        if line_end == position:  # nothing after the colon: not an action line
            continue
        start = head.start()
        follow = _REACT_INPUT.match(text, line_end + 1)
        if follow is None:
            continue
        if scan.full():
            found.append(scan.overflow(start))
            return found
        name = text[position:line_end].strip().strip("`'\"*")
        terminator = _REACT_END.search(text, follow.end())
        end = terminator.start() if terminator else len(text)
        position = end
        scan.count += 1
        if end - follow.end() > MAX_SPAN_CHARS:
            size = too_long("its Action Input", MAX_SPAN_CHARS, "MAX_SPAN_CHARS")
            found.append(_limited(start, end, name, "react", size, text))
            continue
        candidate = Candidate(start, end, name, syntax="react", raw=text[start:end])
        body = _strip_fence(text[follow.end() : end].strip())
        if body.startswith(("{", "｛")):
            _decode_json_object(scan, body, candidate, arguments_only=True)
        else:
            candidate.arguments = body.strip().strip("\"'")
        found.append(candidate)


def _strip_fence(text: str) -> str:
    text = text.strip()
    if text.startswith("```"):
        text = text.split("\n", 1)[1] if "\n" in text else ""
        text = text.rsplit("```", 1)[0]
    return text.strip()


# --- <function=NAME>{...}</function> -----------------------------------------------------------


def _find_function_tags(scan: _Scan) -> list[Candidate]:
    text = scan.text
    if "<function=" not in text:
        return []
    found: list[Candidate] = []
    position = 0  # the end of the previous tag's span: tags inside it are its text
    for match in _FUNCTION_TAG.finditer(text):
        if match.start() < position or scan.taken.end_of(match.start()) is not None:
            continue
        if scan.full():
            found.append(scan.overflow(match.start()))
            return found
        scan.count += 1
        body_start = match.end()
        end, closed = body_start, True
        if text[body_start : body_start + 1] in ("{", "｛"):
            span = scan.brackets.match(body_start)
            if span.limit is not None:
                found.append(
                    _limited(
                        match.start(), span.end, match.group(1), "function_tag", span.limit, text
                    )
                )
                return found
            end, closed = span.end, span.closed
        candidate = Candidate(match.start(), end, match.group(1), syntax="function_tag")
        if end > body_start:
            _decode_json_object(
                scan, text[body_start:end], candidate, arguments_only=True, closed=closed
            )
        else:
            candidate.arguments = {}
        tail = _FUNCTION_TAG_END.match(text, end)
        candidate.end = tail.end() if tail else end
        candidate.raw = text[candidate.start : candidate.end]
        position = candidate.end
        found.append(candidate)
    return found


# --- pythonic --------------------------------------------------------------------------------


def _find_pythonic(scan: _Scan) -> list[Candidate]:
    text = scan.text
    if "(" not in text:
        return []
    found: list[Candidate] = []
    # The literal each pattern needs, checked first: a long CJK run after an ASCII letter made
    # _DOT_CALL's \w* walk the run at every such letter (60 µs on a 3 KB tagged answer).
    starts = [m.start() for m in _PYTHONIC_LIST.finditer(text)] if "[" in text else []
    if ".call" in text:
        starts += [m.start() for m in _DOT_CALL.finditer(text)]
    tag = text.find(_PYTHON_TAG)
    if tag >= 0:
        starts += _bare_call_starts(text, tag + len(_PYTHON_TAG))
    stripped = strip_special_tokens(text).strip()
    if _BARE_CALL.match(stripped) and stripped.endswith(")"):
        starts.append(text.find(stripped[:8]))  # the whole reply is one call
    claimed = _Taken()
    for start in sorted(set(starts)):
        if start < 0 or scan.taken.end_of(start) is not None or claimed.end_of(start) is not None:
            continue
        if scan.full() or scan.parsed > MAX_TEXT_CHARS:
            found.append(scan.overflow(start))
            return found
        candidates = _decode_pythonic(scan, start)
        scan.count += len(candidates)
        for candidate in candidates:
            claimed.add(candidate.start, candidate.end)
        found.extend(candidates)
        if candidates and candidates[0].limit is not None:
            return found
    return found


def _bare_call_starts(text: str, after: int) -> list[int]:
    """Where ``_BARE_CALL.finditer(text, after)`` matches, found in one pass over word runs.

    A match starts at the first ASCII letter or underscore of a run of word characters and dots
    that is followed by ``(``; the regex itself retried every position of a long word.
    """
    starts = []
    for run in _WORD_RUN.finditer(text, after):
        if _OPEN_PAREN.match(text, run.end()):
            first = _ASCII_NAME_START.search(text, run.start(), run.end())
            if first is not None:
                starts.append(first.start())
    return starts


def _decode_pythonic(scan: _Scan, start: int) -> list[Candidate]:
    text = scan.text
    span = scan.brackets.match(start, python=True)
    end, closed = span.end, span.closed
    scan.parsed += end - start
    source = text[start:end]
    if span.limit is not None:
        name = _BARE_CALL.match(source.lstrip("[ \t\n"))
        called = name.group().rstrip("( \t") if name else None
        limit = span.limit.replace("its JSON", "its expression")
        return [_limited(start, end, called, "pythonic", limit, text)]
    try:
        tree = ast.parse(source.strip(), mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
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
        positional = tuple(_literal(a) for a in call.args)
        arguments = {k.arg: _literal(k.value) for k in call.keywords if k.arg is not None}
    except (ValueError, TypeError, SyntaxError, RecursionError, MemoryError):
        candidate.error = "its arguments are not literal values"
        return candidate
    # "\frac" in a Python string literal is a form feed too (see foxagent._latex).
    candidate.positional, restored_positional = restore_latex(positional)
    candidate.arguments, restored = restore_latex(arguments)
    candidate.repaired = restored or restored_positional
    return candidate


_JSON_NAMES: Final = {"true": True, "false": False, "null": None}


class _JsonNames(ast.NodeTransformer):
    """JSON's ``true``/``false``/``null`` as Python constants (a JSON payload in a call)."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id in _JSON_NAMES:
            return ast.copy_location(ast.Constant(_JSON_NAMES[node.id]), node)
        return node


def _literal(node: ast.expr) -> Any:
    """``ast.literal_eval`` of ``node``, reading JSON's ``true``/``false``/``null`` too."""
    try:
        return ast.literal_eval(node)
    except ValueError:
        return ast.literal_eval(_JsonNames().visit(node))


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


def _find_json(scan: _Scan) -> list[Candidate]:
    text = scan.text
    if not _call_hint(text):
        return []
    found: list[Candidate] = []
    position = 0
    while True:
        match = _CALL_START.search(text, position)
        if match is None:
            return found
        start = match.start()
        claimed = scan.taken.end_of(start)
        if claimed is not None:
            position = claimed
            continue
        if scan.full():
            found.append(scan.overflow(start))
            return found
        span = scan.brackets.match(start)
        if span.limit is not None:
            scan.count += 1
            candidate = _limited(start, span.end, None, "json", span.limit, text)
            _name_from_text(candidate, candidate.raw)
            found.append(candidate)
            return found
        end, closed = span.end, span.closed
        candidate = Candidate(start, end, None, raw=text[start:end])
        _decode_json_object(scan, text[start:end], candidate, arguments_only=False, closed=closed)
        expanded = _expand_wrappers(candidate)
        scan.count += len(expanded)
        found.extend(expanded)
        # An object that could not be decoded may hold calls: look inside it (as before budgets).
        position = start + 1 if candidate.error is not None and closed else end
        if not closed:
            return found


def _expand_wrappers(candidate: Candidate) -> list[Candidate]:
    """Turn a decoded object into calls: plain, OpenAI-wrapped, or a ``tool_calls`` list."""
    value = candidate.arguments
    candidate.arguments = None
    if candidate.limit is not None:
        return [candidate]
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
    """A call has arguments, or nothing but call keys: ``{"name": "x", "version": 1}`` is data.

    So is an object without arguments whose ``type`` names something other than a call, like
    the draft ``{'name': 'Boston', 'type': 'city'}`` in an earlier FoxBrain step.
    """
    if any(key in value for key in _ARG_KEYS) or "tool_calls" in value:
        return True
    if isinstance(value.get("function"), dict):
        return True
    kind = value.get("type")
    if isinstance(kind, str) and _normal_kind(kind) not in _CALL_TYPES:
        return False
    return all(key in _CALL_KEYS for key in value)


_CALL_TYPES = frozenset({"function", "tool", "toolcall", "tooluse", "functioncall"})


def _normal_kind(kind: str) -> str:
    return "".join(ch for ch in kind.lower() if ch.isalnum())


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
    scan: _Scan, source: str, candidate: Candidate, *, arguments_only: bool, closed: bool = True
) -> None:
    """Decode ``source`` into ``candidate.arguments`` (or set ``candidate.error``/``limit``)."""
    candidate.closed = closed
    text = source
    if not closed:
        closing = completion(source)
        if closing is None:
            candidate.error = "it is cut off"
            _name_from_text(candidate, source)
            return
        text = source + closing
        candidate.completed = True
    decoded = decode_json(text, scan.budget)
    candidate.repaired = decoded.repaired or not closed
    if decoded.limit is not None:
        candidate.limit = decoded.limit
        candidate.error = decoded.limit
        _name_from_text(candidate, source)
    elif decoded.value is None:
        candidate.error = "its JSON cannot be repaired"
        _name_from_text(candidate, source)
    elif arguments_only:
        candidate.arguments = decoded.value
    else:
        candidate.arguments = decoded.value  # unpacked into name/arguments by _expand_wrappers


_NAME_WINDOW: Final = 1_024  # the name key of a call is near its start; nested spans repeat it


def _name_from_text(candidate: Candidate, source: str) -> None:
    """Name the tool of an undecodable object, so the refusal can say which call it was."""
    if candidate.name is None:
        written = _WRITTEN_NAME.search(source, 0, _NAME_WINDOW)
        candidate.name = written.group(1) if written else None


def follows_example_cue(text: str, start: int) -> bool:
    """An example cue ("for example", "格式", ...) precedes ``start`` in its paragraph."""
    window = text[max(0, start - _EXAMPLE_WINDOW) : start]
    window = window.rsplit("\n\n", 1)[-1].lower()
    return any(cue in window for cue in _EXAMPLE_CUES)


def _absorb_wrappers(text: str, candidates: list[Candidate]) -> None:
    """Grow spans over call markup around them, and over separators between adjacent calls.

    What is absorbed before a span depends only on its start and what is absorbed after it only
    on its end, so each side grows on its own, by at most ``_MAX_WRAPPERS`` tokens.
    """
    for candidate in candidates:
        if candidate.example or candidate.start >= candidate.end:
            continue
        for _ in range(_MAX_WRAPPERS):
            before = _WRAP_BEFORE.search(text, max(0, candidate.start - 40), candidate.start)
            if before is None:
                break
            candidate.start = before.start()
        for _ in range(_MAX_WRAPPERS):
            after = _WRAP_AFTER.match(text, candidate.end)
            if after is None:
                break
            candidate.end = after.end()
    ordered = [c for c in candidates if not c.example and c.start < c.end]
    for left, right in itertools.pairwise(ordered):
        if left.end <= right.start and _SEPARATOR_ONLY.match(text, left.end, right.start):
            left.end = right.start
