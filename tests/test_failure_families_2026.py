"""The 2026 failure families (issue 15, section 3): one test group per fix.

The corpus cases are in ``tests/corpus/cases/reports_2026.json`` (checked by
``test_corpus_recovery.py``); these tests pin each fix on its own, with the edges the corpus
does not reach.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from foxagent import Recovery, recover_tool_calls
from foxagent._call_syntax import find_candidates
from foxagent._json_spans import decode_json
from foxagent._latex import restore_latex
from foxagent._recovery import ToolIndex
from tests.corpus import load_tools

TOOLS = ToolIndex(load_tools())


def content(text: str) -> Recovery:
    return recover_tool_calls({"content": text, "tool_calls": []}, TOOLS)


def server(name: str, arguments: Any, text: str | None = None) -> Recovery:
    call = {"id": "call-1", "type": "function", "function": {"name": name, "arguments": arguments}}
    return recover_tool_calls({"content": text, "tool_calls": [call]}, TOOLS)


def calls(recovery: Recovery) -> list[tuple[str, dict[str, Any]]]:
    return [(call.name, call.arguments) for call in recovery.calls]


# --- 1. "type": "function" at the top level of a bare call -----------------------------------


def test_a_top_level_type_function_is_a_call() -> None:
    text = '{"type": "function", "name": "calculator", "parameters": {"expression": "1+1"}}'
    assert calls(content(text)) == [("calculator", {"expression": "1+1"})]


# --- 2. } and " inside string values ----------------------------------------------------------


def test_braces_and_quotes_inside_values_do_not_end_the_call() -> None:
    text = '{"name": "translate", "parameters": {"text": "a }\\" ] {", "target_language": "en"}}'
    recovery = content(text + " done")
    assert calls(recovery) == [("translate", {"text": 'a }" ] {', "target_language": "en"})]
    assert recovery.text == "done"


# --- 3. special tokens leaked around a call ---------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        '{"location": "Boston"}<|call|>',
        '{"location": "Boston"}<|eom_id|> <|eot_id|>\n',
        '<|python_tag|>{"location": "Boston"}<|endoftext|>',
    ],
)
def test_server_arguments_with_leaked_end_tokens_run(arguments: str) -> None:
    assert calls(server("get_weather", arguments)) == [("get_weather", {"location": "Boston"})]


def test_a_token_inside_a_value_is_kept() -> None:
    recovery = server("search_web", '{"query": "what is <|call|>"}')
    assert calls(recovery) == [("search_web", {"query": "what is <|call|>"})]


def test_content_tokens_after_a_call_leave_the_text() -> None:
    recovery = content(
        '{"name": "get_weather", "parameters": {"location": "台北"}}<|call|><|endoftext|>'
    )
    assert calls(recovery) == [("get_weather", {"location": "台北"})]
    assert recovery.text == ""


def test_only_tokens_is_still_not_json() -> None:
    assert decode_json("<|call|>").value is None
    assert calls(server("get_weather", "<|call|><|eom_id|>")) == []


def test_a_long_run_of_tokens_is_stripped_in_linear_time() -> None:
    text = '{"location": "Boston"}' + "<|eom_id|> " * 20_000
    started = time.perf_counter()
    assert decode_json(text).value == {"location": "Boston"}
    assert time.perf_counter() - started < 0.5
    started = time.perf_counter()
    assert decode_json("<|ab|>" * 20_000 + "x|>").value is None
    assert time.perf_counter() - started < 0.5


# --- 4. arguments glued or duplicated by a stream accumulator ---------------------------------


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"expression": "3 * 2"}{"expression": "3 * 2"}', {"expression": "3 * 2"}),
        ('{"expression": "3 * 2"} {"expression": "3 * 2"}\n{"expression": "3 * 2"}', None),
        ('{}{"expression": "3 * 2"}', {"expression": "3 * 2"}),
        ('{"expression": "3 * 2"}{}', {"expression": "3 * 2"}),
    ],
)
def test_identical_or_empty_glued_objects_are_one(
    arguments: str, expected: dict[str, Any] | None
) -> None:
    expected = expected or {"expression": "3 * 2"}
    assert calls(server("calculator", arguments)) == [("calculator", expected)]


def test_glued_empty_objects_are_no_arguments() -> None:
    assert calls(server("get_current_time", "{}{}")) == [("get_current_time", {})]


def test_different_glued_objects_are_refused_with_a_reason() -> None:
    recovery = server("get_weather", '{"location": "Taipei"}{"location": "Kaohsiung"}')
    assert recovery.calls == ()
    [rejected] = recovery.rejected
    assert rejected.kind == "invalid_arguments"
    assert "2 different JSON objects glued together" in rejected.reason


def test_too_many_glued_objects_are_not_undone() -> None:
    for arguments in ('{"expression": "1"}' * 17, '{"x":1}' * 17):
        recovery = server("calculator", arguments)
        assert recovery.calls == ()
        assert [r.kind for r in recovery.rejected] in (["invalid_arguments"], ["too_large"])


def test_glue_with_a_non_object_is_not_undone() -> None:
    assert decode_json('{"a": 1}[1]').value != {"a": 1}


# --- 5. empty-string arguments ----------------------------------------------------------------


@pytest.mark.parametrize("arguments", ["", "  ", '""', None, "null"])
def test_empty_arguments_run_a_tool_whose_parameters_are_optional(arguments: Any) -> None:
    assert calls(server("get_current_time", arguments)) == [("get_current_time", {})]


def test_empty_arguments_in_content_run_a_tool_whose_parameters_are_optional() -> None:
    recovery = content('{"name": "get_current_time", "arguments": ""}')
    assert calls(recovery) == [("get_current_time", {})]


def test_empty_arguments_do_not_run_a_tool_with_a_required_parameter() -> None:
    recovery = server("get_weather", "")
    assert recovery.calls == ()
    assert [r.kind for r in recovery.rejected] == ["invalid_arguments"]


# --- 6. pythonic calls with commas inside strings ---------------------------------------------


def test_commas_inside_pythonic_strings_stay_in_the_value() -> None:
    text = "[send_email(to='a@b.co', subject='Hello, World!', body='Hi, it passed, bye.')]"
    assert calls(content(text)) == [
        ("send_email", {"to": "a@b.co", "subject": "Hello, World!", "body": "Hi, it passed, bye."})
    ]


def test_pythonic_calls_read_json_literals() -> None:
    text = "[get_forecast(location='Taipei', celsius=false, days=2)]"
    assert calls(content(text)) == [
        ("get_forecast", {"location": "Taipei", "celsius": False, "days": 2})
    ]


def test_pythonic_calls_still_refuse_code() -> None:
    recovery = content("<|python_tag|>calculator(expression=open('x').read())")
    assert recovery.calls == ()
    assert [r.kind for r in recovery.rejected] == ["unparseable"]


# --- 7. a JSON payload nested in a call to an unknown built-in ---------------------------------


@pytest.mark.parametrize(
    "text",
    [
        'wolfram_alpha.call(payload={"name": "calculator", "parameters": {"expression": "2"}})',
        '<|python_tag|>foo.call(payload={"name": "calculator", "arguments": {"expression": "2"}})',
        'brave_search.call(payload={"name": "calculator", "parameters": {"x": true, "y": null}})',
    ],
)
def test_a_payload_nested_in_an_unknown_call_never_runs(text: str) -> None:
    recovery = content(text)
    assert recovery.calls == ()
    assert [r.kind for r in recovery.rejected] == ["unknown_tool"]
    assert recovery.rejected[0].name != "calculator"


# --- 8. a call followed by an invented result -------------------------------------------------


def test_a_call_runs_and_the_invented_result_is_not_a_call() -> None:
    text = (
        '{"name": "get_stock_price", "parameters": {"symbol": "2330.TW"}}\n'
        'Result: {"name": "get_stock_price", "result": {"price": 1085}}\n'
        "The price is 1085."
    )
    recovery = content(text)
    assert calls(recovery) == [("get_stock_price", {"symbol": "2330.TW"})]
    assert recovery.rejected == ()
    assert "The price is 1085." in recovery.text  # kept (nothing is lost), not an answer


# --- 9. LaTeX decoded into control characters -------------------------------------------------


@pytest.mark.parametrize(
    ("decoded", "restored"),
    [
        ("\x0crac{1}{2}", "\\frac{1}{2}"),
        ("\x08eta + 1", "\\beta + 1"),
        ("\\sin \theta", "\\sin \\theta"),
        ("$\tan x$", "$\\tan x$"),
        ("\\alpha \times 2", "\\alpha \\times 2"),
        ("x^2 \nabla f", "x^2 \\nabla f"),
        ("\\frac{a}{b}", "\\frac{a}{b}"),  # already right
    ],
)
def test_latex_commands_are_restored(decoded: str, restored: str) -> None:
    assert restore_latex(decoded) == (restored, decoded != restored)


@pytest.mark.parametrize(
    "text",
    [
        "name\ttimes",  # a table: no other LaTeX in the string
        "line one\nnabla is a word here",
        "\x0cracture",  # not a command name (the letters run on)
        "a\tb\nc",
    ],
)
def test_real_control_characters_stay(text: str) -> None:
    assert restore_latex(text) == (text, False)


def test_restore_walks_lists_and_dicts_and_keeps_unchanged_objects() -> None:
    value = {"a": ["\x0crac{1}{2}", {"b": "\x08eta"}], "c": 1}
    assert restore_latex(value) == ({"a": ["\\frac{1}{2}", {"b": "\\beta"}], "c": 1}, True)
    untouched = {"a": ["x"], "b": None}
    assert restore_latex(untouched)[0] is untouched


def test_latex_in_content_json_is_restored() -> None:
    text = '{"name": "calculator", "parameters": {"expression": "\\frac{1}{2} + \\beta"}}'
    assert calls(content(text)) == [("calculator", {"expression": "\\frac{1}{2} + \\beta"})]


def test_latex_in_server_arguments_is_restored() -> None:
    arguments = json.dumps({"expression": "\x0crac{3}{4} \times 2"})  # what vLLM re-serialises
    recovery = server("calculator", arguments)
    assert calls(recovery) == [("calculator", {"expression": "\\frac{3}{4} \\times 2"})]
    assert recovery.calls[0].source == "repaired"


def test_latex_in_a_pythonic_call_is_restored() -> None:
    recovery = content('[calculator(expression="\\frac{1}{2} \\times \\theta")]')
    assert calls(recovery) == [("calculator", {"expression": "\\frac{1}{2} \\times \\theta"})]


def test_latex_restore_is_linear() -> None:
    text = "\\x " + "\x0crac{1}{2} \tab " * 50_000
    started = time.perf_counter()
    restored, changed = restore_latex(text)
    assert changed
    assert restored.count("\\frac") == 50_000
    assert time.perf_counter() - started < 0.5


# --- 10. a Python dict literal in an earlier <step> -------------------------------------------


def test_a_draft_dict_whose_type_is_not_a_call_is_data() -> None:
    text = (
        "<step>args = {'name': 'Boston', 'type': 'city'}</step>\n"
        '<step>{"name": "get_weather", "parameters": {"location": "Boston"}}</step>'
    )
    recovery = content(text)
    assert calls(recovery) == [("get_weather", {"location": "Boston"})]
    assert recovery.rejected == ()
    assert "args = {'name': 'Boston', 'type': 'city'}" in recovery.text


@pytest.mark.parametrize("kind", ["function", "tool_call", "Function", "tool-use"])
def test_call_types_keep_an_object_a_call(kind: str) -> None:
    text = json.dumps({"type": kind, "name": "get_current_time"})
    [candidate] = find_candidates(text)
    assert candidate.name == "get_current_time"


def test_a_dict_literal_without_call_keys_is_not_a_candidate() -> None:
    text = "<step>{'location': '台北', 'unit': 'celsius'}</step>"
    assert find_candidates(text) == []
    assert content(text).text == text
