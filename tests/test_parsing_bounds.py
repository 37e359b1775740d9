"""Hostile model output is parsed quickly, within stated budgets, and nothing is dropped silently.

Issue 14, findings 2 and 4. Every input here once took seconds or made recovery return nothing;
the tests assert what comes back (the right call, or a ``too_large`` refusal naming the budget)
and, generously, that it came back fast. Speed itself is measured by
``python -m benchmarks.bench_parsing``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from benchmarks.adversarial_corpus import FAMILIES, FRAGMENTS, SIZES, adversarial_corpus
from foxagent import Recovery, _recovery as recovery_module, parse_answer, recover_tool_calls
from foxagent._call_syntax import (
    MAX_CANDIDATES,
    MAX_DEPTH,
    MAX_REPAIR_CHARS,
    MAX_REPAIR_TOTAL_CHARS,
    MAX_TEXT_CHARS,
    find_candidates,
)
from foxagent._recovery import MAX_CALLS, ToolIndex, _dropped_as_code
from tests.test_recovery import TOOLS, content, server

WALL = 0.5  # seconds: generous; the benchmark measures the real times
CALL = '{"name": "get_weather", "arguments": {"location": "Taipei"}}'


def timed(function: Callable[[], Any]) -> Any:
    start = time.perf_counter()
    result = function()
    assert time.perf_counter() - start < WALL
    return result


def reasons(recovery: Recovery) -> list[tuple[str, str | None, str]]:
    return [(r.kind, r.name, r.reason) for r in recovery.rejected]


# --- the reported slow inputs ------------------------------------------------------------------


def test_action_and_4000_spaces_is_plain_text() -> None:
    recovery = timed(lambda: content("Action:" + " " * 4_000))
    assert (recovery.calls, recovery.rejected, recovery.text) == ((), (), "Action:")


def test_react_call_after_4000_spaces_is_found() -> None:
    text = "Action: get_weather" + " " * 4_000 + '\nAction Input: {"location": "Taipei"}'
    recovery = timed(lambda: content(text))
    assert [(c.name, c.arguments) for c in recovery.calls] == [
        ("get_weather", {"location": "Taipei"})
    ]
    assert recovery.rejected == ()


def test_many_action_lines_are_plain_text() -> None:
    recovery = timed(lambda: content("Action: x\n" * 2_000))
    assert (recovery.calls, recovery.rejected) == ((), ())


def test_thousand_braces_as_server_arguments_are_refused_naming_the_repair_budget() -> None:
    recovery = timed(lambda: recover_tool_calls(server(("get_weather", "{" * 1_000)), TOOLS))
    assert recovery.calls == ()
    [(kind, name, reason)] = reasons(recovery)
    assert (kind, name) == ("too_large", "get_weather")
    assert "MAX_REPAIR_CHARS" in reason and f"{MAX_REPAIR_CHARS:,}" in reason
    assert recovery.rejected[0].id == "call-0"


def test_braces_under_the_repair_budget_are_refused_as_too_deep() -> None:
    recovery = timed(lambda: recover_tool_calls(server(("get_weather", "{" * 200)), TOOLS))
    [(kind, _, reason)] = reasons(recovery)
    assert kind == "too_large" and "MAX_DEPTH" in reason and f"{MAX_DEPTH} levels" in reason


DEEP_LIST = "[" * 1_000 + "]" * 1_000
DEEP_OBJECT = '{"a": ' * 1_000 + "1" + "}" * 1_000


@pytest.mark.parametrize(
    "message",
    [
        server(("get_weather", '{"location": "x", "deep": ' + DEEP_LIST + "}")),
        server(("get_weather", DEEP_OBJECT)),
        {"content": '{"name": "get_weather", "arguments": {"location": "x", "d": ' + DEEP_LIST},
        {"content": '{"name": "get_weather", "arguments": ' + DEEP_OBJECT + "}"},
        {"content": '<function=get_weather>{"location": "x", "d": ' + DEEP_LIST + "}</function>"},
        {"content": "<|python_tag|>get_weather(location=" + DEEP_LIST + ")"},
        {"content": 'Action: get_weather\nAction Input: {"location": "x", "d": ' + DEEP_LIST + "}"},
    ],
    ids=["server-list", "server-object", "json", "json-object", "tag", "pythonic", "react"],
)
def test_thousand_deep_nesting_is_refused_not_lost(message: dict[str, Any]) -> None:
    recovery = timed(lambda: recover_tool_calls(message, TOOLS))
    assert recovery.calls == ()
    [(kind, name, reason)] = reasons(recovery)
    assert (kind, name) == ("too_large", "get_weather")
    assert f"more than {MAX_DEPTH} levels deep" in reason and "MAX_DEPTH" in reason


def test_deep_server_arguments_given_as_objects_are_refused() -> None:
    deep: Any = "x"
    for _ in range(2_000):
        deep = [deep]
    message = server(("get_weather", {"location": "x", "d": deep}))
    recovery = timed(lambda: recover_tool_calls(message, TOOLS))
    assert [r.kind for r in recovery.rejected] == ["too_large"]


def test_nesting_at_the_budget_still_decodes() -> None:
    # The call object and its arguments are two levels; the value adds the rest.
    value = "[" * (MAX_DEPTH - 3) + "1" + "]" * (MAX_DEPTH - 3)
    recovery = content(f'{{"name": "calculator", "arguments": {{"expression": {value}}}}}')
    assert [r.kind for r in recovery.rejected] == ["invalid_arguments"]  # a list, not a string


# --- the other budgets -------------------------------------------------------------------------


def test_reply_over_the_text_budget_is_refused_when_it_holds_a_call() -> None:
    text = "x" * MAX_TEXT_CHARS + CALL
    recovery = timed(lambda: content(text))
    [(kind, _, reason)] = reasons(recovery)
    assert kind == "too_large" and "MAX_TEXT_CHARS" in reason and f"{MAX_TEXT_CHARS:,}" in reason
    assert recovery.text == text  # nothing cut, nothing lost


def test_long_plain_reply_is_just_text() -> None:
    text = "很長的回答。" * (MAX_TEXT_CHARS // 5)
    recovery = timed(lambda: content(text))
    assert (recovery.calls, recovery.rejected, recovery.text) == ((), (), text)


def test_calls_past_max_calls_are_each_refused() -> None:
    text = "\n".join(
        f'{{"name": "calculator", "arguments": {{"expression": "{n}"}}}}'
        for n in range(MAX_CALLS + 3)
    )
    recovery = timed(lambda: content(text))
    assert len(recovery.calls) == MAX_CALLS
    assert [r.kind for r in recovery.rejected] == ["too_large"] * 3
    assert all("MAX_CALLS" in r.reason for r in recovery.rejected)


def test_server_calls_past_max_calls_are_each_refused_with_their_ids() -> None:
    calls = [("calculator", f'{{"expression": "{n}"}}') for n in range(MAX_CALLS + 2)]
    recovery = timed(lambda: recover_tool_calls(server(*calls), TOOLS))
    assert len(recovery.calls) == MAX_CALLS
    assert [(r.kind, r.id) for r in recovery.rejected] == [
        ("too_large", f"call-{MAX_CALLS}"),
        ("too_large", f"call-{MAX_CALLS + 1}"),
    ]


def test_search_stops_after_max_candidates_with_one_refusal() -> None:
    text = '{"name": "nope", "arguments": {}}\n' * (MAX_CANDIDATES + 10)
    recovery = timed(lambda: content(text))
    kinds = [r.kind for r in recovery.rejected]
    assert kinds.count("too_large") >= 1
    assert any("MAX_CANDIDATES" in r.reason for r in recovery.rejected)
    assert len(recovery.calls) + len(recovery.rejected) <= MAX_CANDIDATES + 1


def test_long_broken_json_is_not_repaired() -> None:
    text = "{'name': 'get_weather', 'arguments': {'location': '" + "x" * MAX_REPAIR_CHARS + "'}}"
    [(kind, name, reason)] = reasons(content(text))
    assert (kind, name) == ("too_large", "get_weather") and "MAX_REPAIR_CHARS" in reason


def test_short_broken_json_is_still_repaired() -> None:
    recovery = content('{"name": "get_weather", "arguments": {"location": "Taipei",}}')
    assert [(c.name, c.source) for c in recovery.calls] == [("get_weather", "repaired")]


def test_repair_budget_is_per_reply() -> None:
    def broken(n: int) -> str:  # a trailing comma: needs json_repair
        return f'{{"name": "calculator", "arguments": {{"expression": "{n}{"+1" * 60}",}}}}'

    count = MAX_REPAIR_TOTAL_CHARS // len(broken(0)) + 1
    text = "\n".join(broken(n) for n in range(count))
    recovery = timed(lambda: content(text))
    assert len(recovery.calls) == count - 1
    [(kind, _, reason)] = reasons(recovery)
    assert kind == "too_large" and "MAX_REPAIR_TOTAL_CHARS" in reason


def test_a_reply_gets_eight_repairs_however_small() -> None:
    text = "\n".join(
        f"{{'name': 'calculator', 'arguments': {{'expression': '{n}'}},}}" for n in range(10)
    )
    recovery = timed(lambda: content(text))
    assert [c.arguments["expression"] for c in recovery.calls] == [str(n) for n in range(8)]
    assert [r.kind for r in recovery.rejected] == ["too_large"] * 2
    assert all("MAX_REPAIR_TOTAL_CHARS" in r.reason for r in recovery.rejected)


def test_long_span_with_raw_newlines_in_a_string_still_decodes() -> None:
    body = "第一行\n" * 200  # raw newlines: invalid JSON, far over the repair budget
    text = '{"name": "search_web", "arguments": {"query": "' + body + '"}}'
    assert len(text) > MAX_REPAIR_CHARS
    recovery = content(text)
    assert [(c.name, c.arguments["query"], c.source) for c in recovery.calls] == [
        ("search_web", body, "repaired")
    ]


def test_long_tool_calls_list_with_a_trailing_comma_still_decodes() -> None:
    calls = [f'{{"name": "calculator", "arguments": {{"expression": "{n}"}}}}' for n in range(6)]
    text = '{"tool_calls": [' + ", ".join(calls) + ",]}"
    assert len(text) > MAX_REPAIR_CHARS
    recovery = content(text)
    assert [c.arguments["expression"] for c in recovery.calls] == [str(n) for n in range(6)]
    assert recovery.rejected == ()


def test_calls_inside_a_long_broken_object_are_still_found() -> None:
    text = '{"name": ' + "x" * MAX_REPAIR_CHARS + " " + CALL + "}"
    recovery = content(text)
    assert [c.name for c in recovery.calls] == ["get_weather"]
    [(kind, _, reason)] = reasons(recovery)
    assert kind == "too_large" and "MAX_REPAIR_CHARS" in reason


def test_nested_broken_objects_are_decoded_within_the_reply_budget() -> None:
    level = '{"name": "x", "arguments": [' + '"a",' * 40 + '1,], "b": '
    text = level * 60 + "1" + " 2}" * 60  # every level broken, each searched inside again
    recovery = timed(lambda: content(text))
    assert recovery.calls == ()
    reasons_ = [r.reason for r in recovery.rejected]
    assert len(reasons_) == 60  # one refusal per level, none lost
    assert any("MAX_DECODE_FACTOR" in reason for reason in reasons_)


def test_function_tag_inside_a_tag_is_its_text_not_a_second_call() -> None:
    text = '<function=calculator>{"expression": "<function=calculator>{}"}</function>'
    recovery = content(text)
    assert [(c.name, c.arguments) for c in recovery.calls] == [
        ("calculator", {"expression": "<function=calculator>{}"})
    ]


# --- the corpus --------------------------------------------------------------------------------


SMALL = {label: size for label, size in SIZES.items() if size <= 10_240}


@pytest.mark.parametrize(("name", "text"), sorted(adversarial_corpus(SMALL).items()))
def test_corpus_inputs_parse_within_the_wall_bound(name: str, text: str) -> None:
    for message in (
        {"content": text, "tool_calls": []},
        server(("get_weather", text)),
    ):
        recovery = timed(lambda message=message: recover_tool_calls(message, TOOLS))
        assert isinstance(recovery, Recovery)
        for rejected in recovery.rejected:
            assert rejected.reason
            if rejected.kind == "too_large":
                assert "MAX_" in rejected.reason
    timed(lambda: parse_answer(text))


def test_corpus_families_all_build() -> None:
    for family, builder in FAMILIES.items():
        assert len(builder(1_024)) <= 1_024, family


# --- nothing is dropped silently (hypothesis) --------------------------------------------------


texts = st.lists(st.sampled_from(FRAGMENTS), max_size=60).map("".join)
FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(texts, st.sampled_from([None, "stop", "length"]))
def test_every_candidate_is_a_call_or_a_rejection(text: str, finish_reason: str | None) -> None:
    index = ToolIndex.of(TOOLS)
    candidates = find_candidates(text)
    expected = sum(not _dropped_as_code(c, index) for c in candidates)
    with pytest.MonkeyPatch.context() as patch:  # count duplicates too: nothing is merged
        patch.setattr(recovery_module, "_dedupe", tuple)
        recovery = recover_tool_calls({"content": text}, index, finish_reason=finish_reason)
    assert len(recovery.calls) + len(recovery.rejected) == expected
    assert all(r.reason for r in recovery.rejected)


@FAST
@given(texts)
def test_any_fragment_text_as_server_arguments_is_a_call_or_a_rejection(text: str) -> None:
    recovery = recover_tool_calls(server(("get_weather", text)), TOOLS)
    assert len(recovery.calls) + len(recovery.rejected) == 1


@FAST
@given(texts, st.integers(min_value=1, max_value=50))
def test_repeated_fragment_texts_never_raise(text: str, times: int) -> None:
    repeated = text * times
    recovery = recover_tool_calls({"content": repeated}, TOOLS)
    assert isinstance(recovery, Recovery)
    parse_answer(repeated)


def test_parse_answer_refuses_past_its_budget_with_the_reason() -> None:
    from foxagent._answer import MAX_ANSWER_CHARS, parse_answer

    flood = "<answer>x</answer>" * (MAX_ANSWER_CHARS // 18 + 1)
    parsed = parse_answer(flood)
    assert parsed.answer.startswith(f"[foxagent: the reply is {len(flood):,} characters")
    assert "MAX_ANSWER_CHARS (1,048,576)" in parsed.answer
    assert parsed.answers == () and not parsed.tagged
    just_under = "<answer>好</answer>" + " " * (MAX_ANSWER_CHARS - 18)
    assert len(just_under) == MAX_ANSWER_CHARS and parse_answer(just_under).answer == "好"
