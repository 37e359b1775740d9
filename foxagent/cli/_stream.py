"""What ``foxagent run --stream`` shows of a reply while it streams: its text, not its markup.

A reply streams in pieces cut anywhere, so `StreamFilter` holds back a few characters whenever
they could begin something that must not be shown, and decides once enough has arrived:

* FoxBrain's tags (``<step>``, ``</answer>``, ...: the six `foxagent._answer` knows, any
  letter case) are dropped, and the text after one is marked with that tag's name, so the live
  view can label steps and send the answer where answers go;
* special tokens (``<|eot_id|>``, ...) are dropped; what follows ``<|python_tag|>`` is a call
  and is skipped: a JSON one to its closing bracket, any other up to the next tag or token;
* a call written as JSON (``{"name": ...``, ``[{"name": ...``, ``{"function": ...``) is skipped
  to its closing bracket: the live view shows the call as a tool line once it has run.

Anything else is text, passed on as soon as it cannot be one of those. The filter never
raises and holds back at most `_HOLD` characters.
"""

from __future__ import annotations

import re

__all__ = ["TAGS", "Segment", "StreamFilter"]

#: FoxBrain's tags; text outside every tag is marked ``"text"``.
TAGS = ("answer", "clarification", "count", "reflection", "reward", "step")

_TAG = re.compile(rf"<(/?)({'|'.join(TAGS)})[ \t]*>", re.ASCII | re.IGNORECASE)
# What the start of a tag looks like before its ``>`` has arrived.
_TAG_START = re.compile(r"</?([A-Za-z]*)[ \t]*\Z")
_SPECIAL = re.compile(r"<\|([a-z_]{2,40})\|>")
_SPECIAL_START = re.compile(r"<\|[a-z_]{0,40}\|?\Z")
_CALL_KEYS = ("name", "function", "tool", "tool_name")
_CALL = re.compile(r'\[?\s*\{\s*"(?:' + "|".join(_CALL_KEYS) + r')"\s*:')
# The start of a call before its first key is complete: ``{``, ``[ {``, ``{"na``, ``{"name"``.
_CALL_START = re.compile(r'\[?\s*(?:\{\s*(?:"([a-z_]*)"?\s*)?)?\Z')
_HOLD = 64
_CALL_BEGINS = -1
_SPECIAL_CHARS = "<{["

Segment = tuple[str, str]
"""``(where, text)``: ``where`` is ``"text"`` outside the tags, else the tag's name."""


class StreamFilter:
    """Turns a reply's streamed pieces into `Segment`\\ s of text to show (one per reply)."""

    def __init__(self) -> None:
        self._pending = ""
        self._where = "text"
        self._muted = False  # after <|python_tag|>: a call follows, to be skipped
        self._depth = 0  # inside a JSON call being skipped: open brackets
        self._in_string = False
        self._escaped = False

    def feed(self, piece: str) -> list[Segment]:
        """The segments ``piece`` completes (possibly none while something is undecided)."""
        self._pending += piece
        return self._drain(final=False)

    def end(self) -> list[Segment]:
        """The reply is over: what was held back, decided for good."""
        return self._drain(final=True)

    def _drain(self, *, final: bool) -> list[Segment]:
        segments: list[Segment] = []
        text = self._pending
        i = 0
        while i < len(text):
            if self._muted:  # the call after <|python_tag|>: JSON, or text up to markup
                char = text[i]
                if char in "{[":
                    self._muted = False
                    self._depth, self._in_string, self._escaped = -1, False, False
                elif char == "<":
                    self._muted = False
                else:
                    i += 1
                continue
            if self._depth:
                i = self._skip_call(text, i)
                continue
            char = text[i]
            if char not in _SPECIAL_CHARS:
                found = (text.find(c, i) for c in _SPECIAL_CHARS)
                j = min((k for k in found if k >= 0), default=len(text))
                segments.append((self._where, text[i:j]))
                i = j
                continue
            rest = text[i:]
            decided = self._markup(rest, final=final)
            if decided is None:  # could still become markup: wait for more
                break
            if decided == _CALL_BEGINS:  # skipped from this bracket on
                self._depth, self._in_string, self._escaped = -1, False, False
                continue
            if decided:
                i += decided
            else:
                segments.append((self._where, char))
                i += 1
        self._pending = text[i:]
        return _merged(segments)

    def _markup(self, rest: str, *, final: bool) -> int | None:
        """How many characters of markup ``rest`` starts with (0: none; ``None``: undecided;
        `_CALL_BEGINS`: a JSON call, to be skipped)."""
        undecided = None if not final and len(rest) < _HOLD else 0
        if rest[0] == "<":
            if special := _SPECIAL.match(rest):
                if special.group(1) == "python_tag":
                    self._muted = True
                return special.end()
            if tag := _TAG.match(rest):
                self._where = "text" if tag.group(1) else tag.group(2).lower()
                return tag.end()
            start = _TAG_START.match(rest)
            if start and any(t.startswith(start.group(1).lower()) for t in TAGS):
                return undecided
            return undecided if _SPECIAL_START.match(rest) else 0
        if _CALL.match(rest):
            return _CALL_BEGINS
        start = _CALL_START.match(rest)
        if start and (start.group(1) is None or _is_key_prefix(start.group(1))):
            return undecided
        return 0

    def _skip_call(self, text: str, i: int) -> int:
        """Skip the JSON call that starts or continues at ``text[i]``; the index after it (or
        the end of ``text`` while it is still open)."""
        depth = 0 if self._depth < 0 else self._depth  # -1: the call's first bracket is next
        while i < len(text):
            char = text[i]
            i += 1
            if self._in_string:
                if self._escaped:
                    self._escaped = False
                elif char == "\\":
                    self._escaped = True
                elif char == '"':
                    self._in_string = False
            elif char == '"':
                self._in_string = True
            elif char in "{[":
                depth += 1
            elif char in "}]":
                depth -= 1
                if depth <= 0:
                    self._depth = 0
                    return i
        self._depth = max(depth, 1)
        return i


def _is_key_prefix(key: str) -> bool:
    return any(name.startswith(key) for name in _CALL_KEYS)


def _merged(segments: list[Segment]) -> list[Segment]:
    """Neighbouring segments of one place joined; empty ones dropped."""
    merged: list[Segment] = []
    for where, text in segments:
        if not text:
            continue
        if merged and merged[-1][0] == where:
            merged[-1] = (where, merged[-1][1] + text)
        else:
            merged.append((where, text))
    return merged
