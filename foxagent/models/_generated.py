"""The text a model generated, read back from the tokens a server reports (``logprobs``).

A server's tool parser may keep only part of a reply (vLLM's ``llama3_json`` keeps the JSON
objects and drops the prose around them). With ``logprobs: true`` vLLM lists every generated
token in ``choice.logprobs.content``, whatever the parser kept: joined, they are what the model
wrote. Checked against vLLM 0.32 on CPU: the joined tokens equal the text the same request
returns with ``tool_choice: "none"``, plus the end-of-turn token.

Each token is decoded alone, so a character split over two tokens (common in CJK) shows as
U+FFFD; the agent then uses the text to judge which calls were meant, not to take values from.
A server started with ``--return-tokens-as-token-ids`` sends ``token_id:123`` instead of text:
that is no text at all, and is read as none.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["GeneratedTokens", "generated_text"]

_TOKEN_ID = re.compile(r"token_id:\d+\Z")
_TOKEN = operator.itemgetter("token")
# End-of-turn tokens the engine counts and lists but that are not part of the reply's text.
_TRAILING_SPECIAL = re.compile(r"(?:<\|(?:eot_id|eom_id|end_of_text|im_end|endoftext)\|>\s*)+\Z")
_END_TOKENS = tuple(
    f"<|{name}|>" for name in ("eot_id", "eom_id", "end_of_text", "im_end", "endoftext")
)


def generated_text(logprobs: Any) -> str | None:
    """The joined tokens of a choice's ``logprobs`` (``None`` when it lists none).

    What `GeneratedTokens` gives for one ``add``, without building one (once per reply).
    """
    if type(logprobs) is not dict and not isinstance(logprobs, Mapping):
        return None
    content = logprobs.get("content")
    if not isinstance(content, list):
        return None
    joined = _joined(content)
    return None if joined is None else _without_trailing_special(joined)


def _joined(content: list[Any]) -> str | None:
    """The tokens of ``content`` joined; ``None`` when they are no text (a malformed entry,
    or token ids instead of tokens)."""
    try:  # one pass in C for the common case; a malformed entry makes the text unknown
        joined = "".join(map(_TOKEN, content))
    except (KeyError, TypeError):
        return None
    # --return-tokens-as-token-ids spells every token so: checking the first one suffices.
    if content and _TOKEN_ID.match(content[0]["token"]):
        return None
    return joined


class GeneratedTokens:
    """Collects the tokens of ``logprobs`` objects, in order (one per streamed chunk)."""

    def __init__(self) -> None:
        self._tokens: list[str] = []
        self._seen = False
        self._usable = True

    def add(self, logprobs: Any) -> None:
        """Add the tokens of one ``logprobs`` object; anything not shaped like one is ignored."""
        if not isinstance(logprobs, Mapping):
            return
        content = logprobs.get("content")
        if not isinstance(content, list):
            return
        self._seen = True
        joined = _joined(content)
        if joined is None:
            self._usable = False
            return
        self._tokens.append(joined)

    def text(self) -> str | None:
        """The generated text, without its end-of-turn tokens; ``None`` when unknown."""
        if not self._seen or not self._usable:
            return None
        return _without_trailing_special("".join(self._tokens))


def _without_trailing_special(text: str) -> str:
    """``_TRAILING_SPECIAL.sub("", text)`` without trying the pattern at every position of a
    long reply: end-of-turn tokens, each with the whitespace after it, cut from the end."""
    while True:
        end = text.rstrip()
        if not end.endswith("|>"):
            return text
        for token in _END_TOKENS:
            if end.endswith(token):
                text = end[: -len(token)]
                break
        else:
            return text
