"""Hostile model output for the parsers: repeated markup that made them slow (issue 14).

:func:`adversarial_corpus` returns ``{name: text}``: every family below at every size in
:data:`SIZES` (``"open_braces/10K"``, ...). Each text is a short unit repeated (or a prefix, a
run and a suffix) and cut to the exact size, so the same family can be timed at 1 KiB, 10 KiB,
64 KiB and 256 KiB to see how the time grows. ``benchmarks.bench_parsing`` times
``recover_tool_calls`` (on the text as content, and as a server call's arguments) and
``parse_answer`` on each; ``tests/test_parsing_bounds.py`` builds random texts from
:data:`FRAGMENTS`.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["FAMILIES", "FRAGMENTS", "SIZES", "adversarial_corpus", "build"]

SIZES: dict[str, int] = {"1K": 1_024, "10K": 10_240, "64K": 65_536, "256K": 262_144}

CALL = '{"name": "get_weather", "arguments": {"location": "Taipei"}}'


def _repeat(unit: str) -> Callable[[int], str]:
    return lambda size: (unit * (size // len(unit) + 1))[:size]


def _run(prefix: str, unit: str, suffix: str = "") -> Callable[[int], str]:
    """``prefix`` + ``unit`` repeated + ``suffix``, ``size`` characters in all."""

    def build(size: int) -> str:
        room = max(0, size - len(prefix) - len(suffix))
        return prefix + (unit * (room // len(unit) + 1))[:room] + suffix

    return build


def _nested(before: str, opener: str, middle: str, closer: str, after: str) -> Callable[[int], str]:
    """``before`` + ``opener`` x d + ``middle`` + ``closer`` x d + ``after``: d as deep as fits."""

    def build(size: int) -> str:
        depth = max(
            1, (size - len(before) - len(middle) - len(after)) // (len(opener) + len(closer))
        )
        return before + opener * depth + middle + closer * depth + after

    return build


def _nested_broken(item: str) -> Callable[[int], str]:
    """Up to 60 nested call objects, each broken after a list of ``item``s (a trailing comma
    and a missing comma), so every level fails to decode and is searched inside again."""

    def build(size: int) -> str:
        head = '{"name": "x", "arguments": ['
        tail = '1,], "b"： ' if "：" in item else '1,], "b": '
        depth = max(1, min(60, size // (len(head) + len(tail) + len(item) + 4)))
        room = max(0, size // depth - len(head) - len(tail) - 4)
        return (head + item * (room // len(item)) + tail) * depth + "1" + " 2}" * depth

    return build


FAMILIES: dict[str, Callable[[int], str]] = {
    # single characters that open something
    "open_braces": _repeat("{"),
    "open_brackets": _repeat("["),
    "open_parens": _repeat("("),
    "quotes": _repeat('"'),
    "backslashes": _repeat("\\"),
    "backticks": _repeat("`"),
    "fullwidth_braces": _repeat("｛"),
    "fences": _repeat("```json\n"),
    # FoxBrain tags
    "answer_tags": _repeat("<answer>"),
    "foxbrain_unclosed": _repeat("<step>a<reflection>b<count>1<reward>0.<answer>c"),
    "foxbrain_close_tags": _repeat("</answer></step>"),
    "foxbrain_tag_spaces": _run("<answer", " ", "x"),
    "reward_spaces": _run("<reward>1", " ", "x</reward>"),
    # Meta's function tag and python tag
    "function_tags": _repeat("<function=f>"),
    "function_tags_open_json": _repeat('<function=get_weather>{"location": '),
    "python_tags": _repeat("<|python_tag|>"),
    "python_tag_calls": _repeat("<|python_tag|>f("),
    # ReAct
    "react_spaces": _run("Action:", " "),
    "react_spaces_newline": _run("Action:", " ", "\n"),
    "react_lines": _repeat("Action: x\n"),
    "react_pairs_open_json": _repeat('Action: get_weather\nAction Input: {"location": '),
    "react_blank_lines": _run("Action: x\n", "\n"),
    # pythonic
    "pythonic_nested": _nested("[", "f(", "1", ")", "]"),
    "pythonic_open": _repeat("[f("),
    "dot_calls": _repeat("x.call("),
    # JSON
    "deep_json_lists": _nested('{"name": "get_weather", "arguments": {"x": ', "[", "", "]", "}}"),
    "deep_json_objects": _nested('{"name": "get_weather", "arguments": ', '{"a": ', "1", "}", "}"),
    "nested_call_starts": _nested("", '{"name": ', "", "}", ""),
    "call_starts": _repeat('{"name": '),
    "escapes": _run('{"name": "calculator", "arguments": {"expression": "', '\\"', '"}}'),
    "escapes_open": _run('{"name": "calculator", "arguments": {"expression": "', '\\"'),
    "many_calls": _repeat(CALL + "\n"),
    "many_bad_calls": _repeat('{"name": "nope", "arguments": {"x": 1,,}}\n'),
    "unclosed_call_garbage": _run('{"name": "get_weather", "arguments": {"location": ', "a,"),
    "nested_broken": _nested_broken('"a",'),
    "nested_broken_fullwidth": _nested_broken('"：",'),
    # json_repair's quadratic shape (a stray quote inside a string, again and again), in objects
    # just under the 256-character repair budget
    "repair_hostile": _repeat('{"name": "f", "arguments": ["' + 'a"b' * 72 + '"]}\n'),
    # plain broken JSON (a trailing comma after a long list) just under the repair budget
    "repair_plain": _repeat('{"name": "f", "arguments": {"x": [' + "1," * 105 + "]}}\n"),
    # many tiny objects that each need json_repair (a fixed cost per call)
    "repair_tiny": _repeat("{'name': 'f', }"),
}

# Pieces for random texts (tests/test_parsing_bounds.py): the units of the families above.
FRAGMENTS: list[str] = [
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    '"',
    "\\",
    "`",
    "```json\n",
    "｛",
    "<answer>",
    "</answer>",
    "<step>",
    "<function=f>",
    "</function>",
    "<|python_tag|>",
    "Action:",
    "Action Input:",
    "Observation:",
    " ",
    "\n",
    "f(",
    "x.call(",
    '{"name": ',
    '"arguments": ',
    '\\"',
    ",",
    ":",
    CALL,
]


def build(family: str, size: int) -> str:
    """The text of ``family`` at ``size`` characters (deep families may be a little shorter)."""
    return FAMILIES[family](size)


def adversarial_corpus(sizes: dict[str, int] | None = None) -> dict[str, str]:
    """Every family at every size, named ``family/size`` (``"react_spaces/10K"``)."""
    chosen = SIZES if sizes is None else sizes
    return {
        f"{family}/{label}": builder(size)
        for family, builder in FAMILIES.items()
        for label, size in chosen.items()
    }
