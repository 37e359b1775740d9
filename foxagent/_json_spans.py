"""Decoding one candidate span as JSON, within budgets: in C first, mended, then repaired.

`foxagent._call_syntax` finds the spans; this module turns one into a value, or says why not.
Every step is linear in the span, and each reply has budgets (documented, with why, in the
`_call_syntax` docstring, which lists them all):

* ``MAX_SPAN_CHARS``, ``MAX_DEPTH``: the longest span, the deepest nesting decoded;
* ``MAX_REPAIR_CHARS`` / ``MAX_REPAIR_TOTAL_CHARS``: what ``json_repair`` (pure Python,
  quadratic on some shapes) may see per span and per reply;
* ``MAX_DECODE_FACTOR``: how much decoding one reply may cost over all its spans.

Past a budget the result names the limit; the caller turns it into a refusal.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final, NamedTuple

from foxagent._latex import restore_latex

__all__ = [
    "MAX_DECODE_FACTOR",
    "MAX_DEPTH",
    "MAX_REPAIR_CHARS",
    "MAX_REPAIR_TOTAL_CHARS",
    "MAX_SPAN_CHARS",
    "MAX_TEXT_CHARS",
    "Decoded",
    "ReplyBudget",
    "completion",
    "decode_json",
    "loads_repaired",
    "nesting_depth",
    "too_deep",
    "too_long",
]

_FULLWIDTH_STRUCTURE = str.maketrans("｛｝［］：，", "{}[]:,")
_FULLWIDTH_CHARS = "｛｝［］：，"
_STRING = r'"[^"\\]*(?:\\[\s\S][^"\\]*)*'
_STRING_OR_OTHER = re.compile(_STRING + r'"?|[^"]+')
_STRING_SPLIT = re.compile("(" + _STRING + r'"?)')
_COMPLETION_TOKEN = re.compile(_STRING + r'("?)|[{}\[\]]')

MAX_TEXT_CHARS: Final = 262_144
MAX_SPAN_CHARS: Final = 65_536
MAX_DEPTH: Final = 64
MAX_REPAIR_CHARS: Final = 256
MAX_REPAIR_TOTAL_CHARS: Final = 1_024
MAX_DECODE_FACTOR: Final = 4
_DECODE_FLOOR: Final = 4_096  # decoding allowed to any reply, however short
_MIN_REPAIR_CHARGE: Final = 128  # json_repair costs ~0.1 ms a call, however short the text

# --- budgets -----------------------------------------------------------------------------------


class ReplyBudget:
    """What one reply of ``size`` characters may still decode (``MAX_DECODE_FACTOR`` times its
    size) and hand to ``json_repair`` (``MAX_REPAIR_TOTAL_CHARS``)."""

    __slots__ = ("decode_chars", "repair_chars")

    def __init__(self, size: int) -> None:
        self.decode_chars = MAX_DECODE_FACTOR * size + _DECODE_FLOOR
        self.repair_chars = MAX_REPAIR_TOTAL_CHARS


def too_deep() -> str:
    return f"its JSON is nested more than {MAX_DEPTH} levels deep, the limit (MAX_DEPTH)"


def too_long(what: str, limit: int, name: str) -> str:
    return f"{what} is longer than {limit:,} characters, the limit ({name})"


def nesting_depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply dicts, lists and tuples nest in ``value`` (stops counting past ``limit``)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, (list, tuple)):
            children = item
        else:
            continue
        if level > deepest:
            deepest = level
            if deepest > limit:
                return deepest
        stack.extend((child, level + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


class Decoded(NamedTuple):
    """What ``decode_json`` made of a text."""

    value: Any
    """The decoded value, or ``None`` when it could not be decoded."""
    repaired: bool
    """Whether it needed repair."""
    limit: str | None = None
    """The budget it exceeded (a clause naming it); then ``value`` is ``None``."""
    problem: str | None = None
    """Why it could not be decoded, when that is more than "not valid JSON" (a clause that
    follows "the arguments"); then ``value`` is ``None``."""


def decode_json(text: str, budget: ReplyBudget | None = None) -> Decoded:
    """Decode JSON strictly, else with full-width structure made ASCII, else mended.

    Within the budgets (``budget`` is the reply's; without one only the per-text limits apply):
    the text counts against the reply's decoding budget; a value nested deeper than ``MAX_DEPTH`` is
    refused; only a text of at most ``MAX_REPAIR_CHARS`` (and within the reply's repair budget)
    is handed to ``json_repair``, whose value must be a non-empty object or list that kept every
    letter and digit of the text. A longer text is mended only of raw control characters in
    strings and trailing commas, in C.

    Before repair, two slips of servers and clients are undone (2026 reports): special tokens
    leaked around the JSON (``{...}<|call|>``) are dropped, and objects glued back to back by a
    stream accumulator (``{...}{...}`` identical, or ``{}{...}``) are one object; different
    glued objects are refused with ``problem`` saying so. Every decoded value has LaTeX
    commands that decoding turned into control characters restored (``foxagent._latex``).
    """
    edged = _without_edge_tokens(text)
    if edged is not text:
        return decode_json(edged, budget)._replace(repaired=True)
    if budget is not None:
        if len(text) > budget.decode_chars:
            limit = (
                "the reply's objects overlap so much that decoding them would read it more than "
                f"{MAX_DECODE_FACTOR} times over, the limit (MAX_DECODE_FACTOR)"
            )
            return Decoded(None, False, limit)
        budget.decode_chars -= len(text)
    try:
        return _depth_checked(json.loads(text), repaired=False)
    except RecursionError:
        return Decoded(None, False, too_deep())
    except ValueError as error:  # a JSONDecodeError, or a number over int's digit limit
        failure = error
    if isinstance(failure, json.JSONDecodeError) and failure.msg == "Extra data":
        unglued = _unglued(text)
        if unglued is not None:
            return unglued
    ascii_structure = _ascii_structure(text)
    if ascii_structure is not text:
        try:
            return _depth_checked(json.loads(ascii_structure), repaired=True)
        except RecursionError:
            return Decoded(None, True, too_deep())
        except ValueError as error:
            failure = error
    if len(text) > MAX_REPAIR_CHARS:
        value = _mended(ascii_structure) if _mendable(ascii_structure, failure) else None
        if value is not None:
            return _depth_checked(value, repaired=True)
        limit = (
            f"its JSON is invalid and longer than {MAX_REPAIR_CHARS:,} characters, the most "
            "foxagent repairs (MAX_REPAIR_CHARS)"
        )
        return Decoded(None, True, limit)
    charge = max(len(text), _MIN_REPAIR_CHARGE)
    if budget is not None and charge > budget.repair_chars:
        limit = (
            f"its JSON is invalid and the reply already used its repair budget of "
            f"{MAX_REPAIR_TOTAL_CHARS:,} characters (MAX_REPAIR_TOTAL_CHARS)"
        )
        return Decoded(None, True, limit)
    if _bracket_depth(ascii_structure) > MAX_DEPTH:
        return Decoded(None, True, too_deep())
    if budget is not None:
        budget.repair_chars -= charge
    import json_repair  # only replies that need repair pay for its import (~6 ms)

    try:
        value = json_repair.loads(ascii_structure)
    except Exception:  # json_repair is third-party: any failure just means "cannot repair"
        return Decoded(None, True)
    if not isinstance(value, (dict, list)) or not value or _lost_content(text, value):
        return Decoded(None, True)
    return _depth_checked(value, repaired=True)


_MAX_MENDS: Final = 8  # trailing commas dropped from one long span, one decoder pass each


def _mendable(text: str, error: ValueError) -> bool:
    """Whether the strict decoder stopped at a raw control character or a trailing comma."""
    if not isinstance(error, json.JSONDecodeError):
        return False
    control = error.msg.startswith("Invalid control character")
    return control or _trailing_comma(text, error.pos) is not None


def _trailing_comma(text: str, position: int) -> int | None:
    """Where the comma is, when ``position`` is a closing bracket after a comma (and spaces)."""
    if position >= len(text) or text[position] not in "]}":
        return None
    before = len(text[:position].rstrip(" \t\r\n")) - 1
    return before if before >= 0 and text[before] == "," else None


def _mended(text: str) -> Any:
    """``text`` decoded with raw control characters allowed in strings and up to ``_MAX_MENDS``
    trailing commas dropped (each found at the decoder's error), or ``None``."""
    for _ in range(_MAX_MENDS + 1):
        try:
            value = json.loads(text, strict=False)
        except json.JSONDecodeError as error:
            comma = _trailing_comma(text, error.pos)
            if comma is None:
                return None
            text = text[:comma] + text[comma + 1 :]
        except (ValueError, RecursionError):
            return None
        else:
            return value if isinstance(value, (dict, list)) and value else None
    return None


def _depth_checked(value: Any, *, repaired: bool) -> Decoded:
    if nesting_depth(value) > MAX_DEPTH:
        return Decoded(None, repaired, too_deep())
    value, restored = restore_latex(value)
    return Decoded(value, repaired or restored)


# Special tokens a server or client left around the JSON of a call (``{...}<|call|>``,
# ``<|python_tag|>{...}``): only whole tokens at the very start or end, outside the JSON.
_LEADING_TOKENS = re.compile(r"(?:<\|[a-z_]{2,40}\|>\s*)+")
_TOKEN = re.compile(r"<\|[a-z_]{2,40}\|>")
_TOKEN_MAX: Final = 44  # the longest token _TOKEN matches
_BLANK = re.compile(r"\s*")
_MAX_GLUED: Final = 16  # objects one glued arguments string may hold before it is not undone


def _without_edge_tokens(text: str) -> str:
    """``text`` without leaked special tokens at its edges (``text`` itself when it has none).

    Trailing tokens are taken off one at a time from the end (a regex anchored at the end
    would retry every position of a long run of tokens).
    """
    if "<|" not in text:
        return text
    stripped = text.strip()
    if not (stripped.startswith("<|") or stripped.endswith("|>")):
        return text
    leading = _LEADING_TOKENS.match(stripped)
    start = leading.end() if leading else 0
    end = len(stripped)
    while end > start and stripped.endswith("|>", start, end):
        opening = stripped.rfind("<|", max(start, end - _TOKEN_MAX), end)
        if opening < 0 or not _TOKEN.fullmatch(stripped, opening, end):
            break
        end = opening
        while end > start and stripped[end - 1].isspace():
            end -= 1
    cleaned = stripped[start:end]
    return cleaned if cleaned and (start or end < len(stripped)) else text


def _unglued(text: str) -> Decoded | None:
    """Objects glued back to back (``{...}{...}``) as one, or a refusal when they differ.

    A stream accumulator that appends a resent or an empty first delta glues identical
    objects, or ``{}`` and the object (hermes-agent PR #35718, simonw/llm PR #1130): empty
    objects are dropped and identical ones merged. Different objects (LiteLLM issue #40582)
    cannot be told apart, so nothing is chosen. ``None`` when ``text`` is not only objects.
    """
    decoder = json.JSONDecoder()
    objects: list[Any] = []
    position = _BLANK.match(text).end()  # type: ignore[union-attr]
    while position < len(text):
        if len(objects) >= _MAX_GLUED:
            return None
        try:
            value, position = decoder.raw_decode(text, position)
        except (ValueError, RecursionError):
            return None
        if not isinstance(value, dict):
            return None
        objects.append(value)
        position = _BLANK.match(text, position).end()  # type: ignore[union-attr]
    filled = [value for value in objects if value]
    if len(objects) < 2:
        return None
    if not filled or all(value == filled[0] for value in filled[1:]):
        return _depth_checked(filled[0] if filled else {}, repaired=True)
    problem = (
        f"are {len(filled)} different JSON objects glued together, so which one was meant "
        "is unknown"
    )
    return Decoded(None, True, problem=problem)


def loads_repaired(text: str) -> tuple[Any, bool]:
    """Decode JSON strictly, else repaired; ``(value or None, whether it needed repair)``."""
    decoded = decode_json(text)
    return decoded.value, decoded.repaired


def _bracket_depth(text: str) -> int:
    """The deepest nesting of ``{[(`` outside double-quoted strings (``(`` counts: json_repair
    reads parentheses as tuples, quadratically)."""
    depth = deepest = 0
    for token in _COMPLETION_TOKEN_PARENS.finditer(text):
        ch = token[0]
        if ch in "{[(":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "}])":
            depth -= 1
    return deepest


_COMPLETION_TOKEN_PARENS = re.compile(_STRING + r'"?|[{}\[\]()]')
_UNICODE_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})")


def _lost_content(source: str, value: Any) -> bool:
    """Whether repair dropped letters or digits (``3 + 4 * 2`` silently becoming ``3``)."""
    decoded = _UNICODE_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), source)
    before = sum(ch.isalnum() for ch in decoded)
    after = sum(ch.isalnum() for ch in json.dumps(value, ensure_ascii=False))
    return after < before


def _ascii_piece(piece: re.Match[str]) -> str:
    text = piece[0]
    return text if text[0] == '"' else text.translate(_FULLWIDTH_STRUCTURE)


def _ascii_structure(text: str) -> str:
    """Full-width braces, brackets, colons and commas outside string literals made ASCII.

    Returns ``text`` itself when there is nothing to change. The text outside strings is
    translated in one call (joined on NUL, split back), so the cost does not grow with the
    number of strings in Python.
    """
    if text.isascii() or not any(ch in text for ch in _FULLWIDTH_CHARS):
        return text
    if "\0" in text:
        return _STRING_OR_OTHER.sub(_ascii_piece, text)
    parts = _STRING_SPLIT.split(text)  # outside, string, outside, ..., outside
    parts[0::2] = "\0".join(parts[0::2]).translate(_FULLWIDTH_STRUCTURE).split("\0")
    return "".join(parts)


def completion(source: str) -> str | None:
    """The closing brackets that complete ``source``, or ``None`` if more than that is missing."""
    ascii_source = _ascii_structure(source)
    stack: list[str] = []
    in_string = False
    for token in _COMPLETION_TOKEN.finditer(ascii_source):
        ch = token[0][0]
        if ch == '"':
            in_string = not token[1]
        else:
            in_string = False
            if ch in "{[":
                stack.append("}" if ch == "{" else "]")
            elif stack:
                stack.pop()
    if in_string or not stack or source.rstrip()[-1:] in (":", ",", "：", "，"):
        return None
    completion = "".join(reversed(stack))
    try:
        json.loads(ascii_source + completion)
    except (ValueError, RecursionError):
        return None
    return completion


# --- context ---------------------------------------------------------------------------------
