"""FakeVLLMServer's ``logprobs``: the generated tokens, listed whatever the tool parser kept.

vLLM lists one entry per generated token in ``choice.logprobs.content`` (``token``, ``logprob``,
``bytes``, ``top_logprobs``), from the engine's token ids rather than the parsed message, so a
reply whose prose the parser dropped still lists it, and the end-of-turn token is listed too
(seen on vLLM 0.32, CPU). Each token is decoded alone: a character split over two tokens shows
as U+FFFD in both. Here the scripted text is cut into pseudo-tokens: up to four ASCII
characters, or one other character (two U+FFFD halves with ``split_characters``), as many as
the completion tokens the server reports.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["logprobs_content"]

_PIECE = re.compile(r"[\x00-\x7f]{1,4}|[^\x00-\x7f]")
_END_OF_TURN = "<|eot_id|>"


def logprobs_content(
    text: str, completion_tokens: int, *, stopped: bool, split_characters: bool = False
) -> list[dict[str, Any]]:
    """The ``logprobs.content`` entries of a generation of ``text`` (``stopped``: it ended on
    the end-of-turn token, which is listed and counted)."""
    pieces: list[str] = []
    for piece in _PIECE.findall(text):
        if split_characters and not piece.isascii() and len(piece.encode()) >= 3:
            pieces += ["\ufffd", "\ufffd"]
        else:
            pieces.append(piece)
    slots = max(completion_tokens - (1 if stopped else 0), 1)
    if len(pieces) > slots:  # fewer tokens reported than pieces: the last token holds the rest
        pieces[slots - 1 :] = ["".join(pieces[slots - 1 :])]
    pieces += [""] * (slots - len(pieces))
    if stopped:
        pieces.append(_END_OF_TURN)
    return [_entry(piece) for piece in pieces]


def _entry(token: str) -> dict[str, Any]:
    return {"token": token, "logprob": -0.01, "bytes": list(token.encode()), "top_logprobs": []}
