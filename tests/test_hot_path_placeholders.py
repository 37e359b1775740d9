"""The placeholder check's shortcut for ordinary values refuses exactly what the rules refuse."""

from __future__ import annotations

import random

import pytest

from foxagent import _placeholders


def _reference(text: str) -> str | None:
    """`_stand_in` of one string as the rules state it, every pattern tried."""
    stripped = text.strip()
    if not stripped:
        return None
    if (
        _placeholders._ONLY_MARKS.fullmatch(stripped)
        or stripped.lower() in _placeholders._STAND_IN_WORDS
        or _placeholders._BRACKETED.fullmatch(stripped)
    ):
        return stripped
    return None


PIECES = [
    "?",
    "？",
    ".",
    "…",
    "。",
    "<",
    ">",
    "{{",
    "}}",
    "[",
    "]",
    "city",
    "TODO",
    "todo",
    "TBD",
    "n/a",
    "N/A",
    "unknown",
    "un\u212anown",
    "placeholder",
    "PlaceHolder",
    "fixme",
    "台北",
    " ",
    "\u3000",
    "\n",
    "-",
    "_",
    "x" * 12,
    "İ",
]


@pytest.mark.parametrize("seed", range(10))
def test_the_shortcut_finds_what_every_pattern_finds(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(3_000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 5)))
        assert _placeholders._stand_in(text, 0) == _reference(text), repr(text)


@pytest.mark.parametrize(
    "text", ["unknown", "UNKNOWN", "un\u212anown", " n/a ", "<city name>", "{{email}}", "…", "台北"]
)
def test_words_marks_and_brackets(text: str) -> None:
    assert _placeholders._stand_in(text, 0) == _reference(text)
