"""recover_tool_calls and parse_answer never raise, whatever the reply looks like (hypothesis)."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings, strategies as st

from foxagent import Recovery, parse_answer, recover_tool_calls
from foxagent._call_syntax import find_candidates
from foxagent._recovery import ToolIndex, _from_content, _from_server
from tests.corpus import load_cases
from tests.test_recovery import SCHEMAS, TOOLS

SEEDS = [
    '{"name": "get_weather", "parameters": {"location": "台北"}}',
    '<|python_tag|>{"name": "calculator", "parameters": {"expression": "1+1"}}<|eom_id|>',
    '[get_weather(location="Taipei"), calculator(expression="2*3")]',
    '<function=get_weather>{"location": "Taipei"}</function>',
    'Action: search_web\nAction Input: {"query": "fox"}\nObservation:',
    "<count>2</count><step>集合 {1,2}，\\frac{a}{b}</step>"
    '<step>{"name": "search_web", "parameters": {"query": "鴻海"}}</step>',
    '```json\n[{"name": "get_weather", "arguments": "{\\"location\\": \\"x\\"}"}]\n```',
    "{'name': 'get_weather', 'parameters': {'location': 'Taipei', 'unit': 'Celsius',}}",
    '｛"name"："get_weather"，"parameters"：｛"location"："台北"｝｝',
    "<tool_call>\n" + '{"name": "calculator", "arguments": {"expression": "(1"}}\n</tool_call>',
]
# Every real reply of the recovery corpus is a seed too.
SEEDS += [case["model_text"] for case in load_cases()]
PIECES = [
    "{",
    "}",
    "[",
    "]",
    "(",
    ")",
    '"',
    "'",
    ":",
    ",",
    ";",
    "\\",
    "<|python_tag|>",
    "```",
    "<step>",
    "</step>",
    "name",
    "Action:",
    "Action Input:",
    "<function=x>",
    "\n",
    "｛",
    "：",
]

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def mutated(draw: st.DrawFn) -> str:
    """A seed reply (own or from the corpus) with random cuts, insertions, deletions and duplications."""
    text = draw(st.sampled_from(SEEDS))
    for _ in range(draw(st.integers(0, 6))):
        if not text:
            break
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["cut", "insert", "delete", "duplicate"]))
        if action == "cut":
            text = text[:at]
        elif action == "insert":
            text = text[:at] + draw(st.sampled_from(PIECES) | st.text(max_size=5)) + text[at:]
        elif action == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 5)) :]
        else:
            text = text[:at] + text[at - draw(st.integers(0, at)) : at] + text[at:]
    return text


def check(recovery: Recovery) -> None:
    assert isinstance(recovery, Recovery)
    for call in recovery.calls:
        assert call.name in TOOLS
        json.dumps(call.arguments)  # always serialisable back into the history
        TOOLS[call.name].validate_arguments(call.arguments)  # and still valid
    for rejected in recovery.rejected:
        assert rejected.reason and rejected.reason.endswith((".", "?"))


@FAST
@given(text=mutated(), finish=st.sampled_from([None, "stop", "length", "tool_calls"]))
def test_mutated_replies_never_raise(text: str, finish: str | None) -> None:
    # The internal path, without the public function's last-resort guard, must not raise either.
    check(_from_content(text, ToolIndex(TOOLS), finish == "length"))
    check(recover_tool_calls({"content": text}, SCHEMAS, finish_reason=finish))
    parse_answer(text)


@FAST
@given(text=st.text(max_size=300))
def test_any_text_never_raises(text: str) -> None:
    check(_from_content(text, ToolIndex(TOOLS), False))
    find_candidates(text)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@FAST
@given(
    name=st.sampled_from(["get_weather", "calculator", "search_web", "GetWeather", "nope"])
    | st.text(max_size=8)
    | json_values,
    arguments=json_values | st.text(max_size=40) | mutated(),
    finish=st.sampled_from([None, "length"]),
)
def test_any_server_call_never_raises(name: Any, arguments: Any, finish: str | None) -> None:
    calls = [("id-1", name, arguments)]
    check(_from_server(calls, "", ToolIndex(TOOLS), finish == "length"))


@FAST
@given(message=json_values | st.builds(object))
def test_any_message_shape_never_raises(message: Any) -> None:
    assert isinstance(recover_tool_calls(message, TOOLS), Recovery)
    assert isinstance(
        recover_tool_calls({"content": message, "tool_calls": message}, TOOLS), Recovery
    )
