"""Recovery's shortcuts decide what the general path decides (issue 18).

The flat path for a reply that is one ``{"name": ..., "parameters": {...}}`` object, and the
negative pre-check that skips the search for a reply no finder would look at, are compared
with the general path on the recovery corpus and on generated variations.
"""

from __future__ import annotations

import itertools
import json
import random
from dataclasses import replace
from typing import Any

import pytest

from foxagent import Recovery, Toolset, _call_syntax, _recovery, recover_tool_calls, tool
from foxagent._recovery import ToolIndex
from tests.corpus import load_cases, load_tools

CORPUS_TOOLS = ToolIndex(load_tools())


@tool
def calculator(expression: str) -> str:
    """Arithmetic.

    Args:
        expression: What to compute.
    """
    return expression


@tool
def get_weather(location: str, unit: str = "celsius", days: int = 1) -> str:
    """Weather.

    Args:
        location: City.
        unit: celsius or fahrenheit.
        days: How many days.
    """
    return location


TOOLS = Toolset([calculator, get_weather]).index


def _general(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_recovery, "_one_plain_call", lambda content, index: None)
    monkeypatch.setattr(_call_syntax, "_any_finder_looks", lambda text: True)


def _normal(recovery: Recovery) -> Recovery:
    """Call ids are random: compare everything else."""
    calls = tuple(replace(call, id="") for call in recovery.calls)
    rejected = tuple(replace(item, id="") for item in recovery.rejected)
    return replace(recovery, calls=calls, rejected=rejected)


def _both(
    monkeypatch: pytest.MonkeyPatch, message: dict[str, Any], index: ToolIndex, **options: Any
) -> tuple[Recovery, Recovery]:
    fast = recover_tool_calls(message, index, **options)
    with monkeypatch.context() as patch:
        _general(patch)
        general = recover_tool_calls(message, index, **options)
    return _normal(fast), _normal(general)


TEXTS = [case["model_text"] for case in load_cases() if isinstance(case.get("model_text"), str)]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("finish_reason", ["stop", "length"])
def test_corpus_texts_decide_the_same(
    monkeypatch: pytest.MonkeyPatch, text: str, finish_reason: str
) -> None:
    message = {"role": "assistant", "content": text}
    fast, general = _both(monkeypatch, message, CORPUS_TOOLS, finish_reason=finish_reason)
    assert fast == general


NAMES = ["calculator", "get_weather", "GetWeather", "get-weather", "unknown", "", "台北"]
ARGUMENTS: list[Any] = [
    {"expression": "2 * (3 + 4)"},
    {"expression": "sqrt(2)"},
    {"location": "台北"},
    {"location": "台北", "unit": "fahrenheit", "days": "3"},
    {"location": "<city>"},
    {"location": "?"},
    {"location": None},
    {"location": "Taipei", "extra": 1},
    {},
    {"location": {"city": "台北"}},
    {"location": "例如：台北"},
    {"expression": "\\frac{1}{2}"},
    {"location": "a\nb"},
    {"location": "Action: x"},
    {"expression": "[1, 2]"},
    {"location": "x", "days": 1.5},
    {"location": "x", "days": True},
]
AROUND = ["", " ", "\n", "例如：", "Here: ", "<|python_tag|>", "```json\n", "\n\n"]
AFTER = ["", " ", "\n", "<|eot_id|>", "```", " ok", "}"]


def _variants() -> list[str]:
    texts = []
    for name, arguments in itertools.product(NAMES, ARGUMENTS):
        call = {"name": name, "parameters": arguments}
        texts.append(json.dumps(call, ensure_ascii=False))
        texts.append(json.dumps(call))
        texts.append(json.dumps(call, separators=(",", ":"), ensure_ascii=False))
    texts += [
        '{"name": "calculator", "parameters": "{\\"expression\\": \\"1+1\\"}"}',
        '{"name": "calculator", "arguments": {"expression": "1+1"}}',
        '{"name": "calculator", "parameters": {"expression": "1+1"}, "id": "x"}',
        '{"name": "calculator", "name": "get_weather", "parameters": {"location": "x"}}',
        '{"name": "calculator", "parameters": {"expression": NaN}}',
        '{"name": "calculator", "parameters": {"expression": "1+1"}',
        '{"name": "calculator", "parameters": {"expression": "1+1"}}}',
        '{"name": "calculator", "parameters": {"expression": "1+1"}} {"name": "calculator", '
        '"parameters": {"expression": "2+2"}}',
        '{"name" : "calculator", "parameters": {"expression": "1+1"}}',
    ]
    return texts


@pytest.mark.parametrize("seed", range(8))
def test_generated_calls_decide_the_same(monkeypatch: pytest.MonkeyPatch, seed: int) -> None:
    rng = random.Random(seed)
    taken = 0
    for text in _variants():
        wrapped = rng.choice(AROUND) + text + rng.choice(AFTER)
        for content in (text, wrapped):
            message = {"role": "assistant", "content": content}
            fast, general = _both(monkeypatch, message, TOOLS)
            assert fast == general, content
            taken += _recovery._one_plain_call(content, TOOLS) is not None
    assert taken > 100  # the flat path was exercised, not just the fallback


@pytest.mark.parametrize(
    "text",
    [
        "<count>1</count><step>台北 23°C。</step><answer>台北現在 23°C。</answer>",
        "plain answer without anything",
        "",
        "x" * 5000,
        "a (b) c",
        "name: value",
        "Action: search\nAction Input: x",
        '<function=calculator>{"expression": "1"}</function>',
    ],
)
def test_the_negative_pre_check_changes_nothing(monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    message = {"role": "assistant", "content": text}
    fast, general = _both(monkeypatch, message, TOOLS)
    assert fast == general


def test_the_flat_path_is_taken_for_the_common_call() -> None:
    text = '{"name": "get_weather", "parameters": {"location": "台北"}}'
    recovery = _recovery._one_plain_call(text, TOOLS)
    assert recovery is not None
    assert [c.name for c in recovery.calls] == ["get_weather"]
    assert recovery.calls[0].repairs == ("content:json",)
    assert _call_syntax._any_finder_looks("<answer>台北 23°C。</answer>") is False


def test_the_call_hint_is_the_pattern() -> None:
    rng = random.Random(11)
    pieces = ["name", "nam", "function", "tool", "too", "action", "Action", "台北", " ", "x"]
    for _ in range(5_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 6)))
        assert _call_syntax._call_hint(text) == bool(_call_syntax._CALL_HINT.search(text))
