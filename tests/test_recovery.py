"""recover_tool_calls: one test per rule of the ladder (the corpus tests cover real replies)."""

from __future__ import annotations

import json
import re
from types import SimpleNamespace
from typing import Any

import pytest

from foxagent import Recovery, Toolset, recover_tool_calls, tool
from tests.conftest import get_weather

ID = re.compile(r"^chatcmpl-tool-[0-9a-f]{32}$")


@tool
def calculator(expression: str) -> str:
    """Evaluate arithmetic."""
    return expression


@tool
def search_web(query: str, max_results: int = 5) -> list[str]:
    """Search."""
    return [query] * max_results


TOOLS = Toolset([get_weather, calculator, search_web])
SCHEMAS = TOOLS.openai_schemas()


def content(text: str, finish_reason: str | None = None, tools: Any = TOOLS) -> Recovery:
    return recover_tool_calls(
        {"content": text, "tool_calls": []}, tools, finish_reason=finish_reason
    )


def calls(recovery: Recovery) -> list[tuple[str, dict[str, Any], str]]:
    return [(c.name, c.arguments, c.source) for c in recovery.calls]


def kinds(recovery: Recovery) -> list[str]:
    return [r.kind for r in recovery.rejected]


WEATHER = ("get_weather", {"location": "Taipei"}, "content")


# --- 1. server calls are hints -------------------------------------------------------------------


def server(*tool_calls: tuple[str, Any], text: str | None = None) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text,
        "tool_calls": [
            {"id": f"call-{i}", "type": "function", "function": {"name": n, "arguments": a}}
            for i, (n, a) in enumerate(tool_calls)
        ],
    }


@pytest.mark.parametrize(
    ("arguments", "expected", "source"),
    [
        ('{"location": "Taipei"}', {"location": "Taipei"}, "server"),
        ('"{\\"location\\": \\"Taipei\\"}"', {"location": "Taipei"}, "server"),
        ({"location": "Taipei"}, {"location": "Taipei"}, "server"),
        ("{'location': 'Taipei',}", {"location": "Taipei"}, "repaired"),
        (
            '{"location": "Taipei", "unit": "Celsius"}',
            {"location": "Taipei", "unit": "celsius"},
            "server",
        ),
    ],
)
def test_server_arguments_are_unwrapped_repaired_and_coerced(
    arguments: Any, expected: dict[str, Any], source: str
) -> None:
    recovery = recover_tool_calls(server(("get_weather", arguments)), TOOLS)
    assert calls(recovery) == [("get_weather", expected, source)]
    assert recovery.calls[0].id == "call-0"


@pytest.mark.parametrize("arguments", [None, "", "null", "{}"])
def test_server_null_arguments_mean_empty(arguments: Any) -> None:
    @tool
    def now() -> str:
        """Now."""
        return ""

    recovery = recover_tool_calls(server(("now", arguments)), [now])
    assert calls(recovery) == [("now", {}, "server")]


def test_server_call_to_unknown_tool_is_rejected_with_the_real_names() -> None:
    recovery = recover_tool_calls(server(("get_wether", '{"location": "x"}')), TOOLS)
    assert recovery.calls == ()
    assert [(r.kind, r.reason, r.id) for r in recovery.rejected] == [
        (
            "unknown_tool",
            "Unknown tool 'get_wether'. Available tools: get_weather, calculator, search_web.",
            "call-0",
        )
    ]


def test_server_missing_ids_are_generated_in_vllm_form() -> None:
    message = {
        "tool_calls": [{"function": {"name": "calculator", "arguments": '{"expression": "1"}'}}]
    }
    assert ID.match(recover_tool_calls(message, TOOLS).calls[0].id)


def test_server_content_is_kept_as_text_and_not_rescanned() -> None:
    message = server(("calculator", '{"expression": "1+1"}'), text="Let me compute.")
    recovery = recover_tool_calls(message, TOOLS)
    assert len(recovery.calls) == 1
    assert recovery.text == "Let me compute."


def test_openai_sdk_message_objects_are_accepted() -> None:
    function = SimpleNamespace(name="calculator", arguments='{"expression": "6*7"}')
    message = SimpleNamespace(
        content=None, tool_calls=[SimpleNamespace(id="c1", function=function)]
    )
    assert calls(recover_tool_calls(message, TOOLS)) == [
        ("calculator", {"expression": "6*7"}, "server")
    ]


def test_openai_sdk_real_types_are_accepted() -> None:
    from openai.types.chat import ChatCompletionMessage

    message = ChatCompletionMessage.model_validate(
        {
            "role": "assistant",
            "content": '{"name": "calculator", "parameters": {"expression": "2"}}',
        }
    )
    assert calls(recover_tool_calls(message, TOOLS)) == [
        ("calculator", {"expression": "2"}, "content")
    ]


# --- 2. content syntaxes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "get_weather", "parameters": {"location": "Taipei"}}',
        '{"name": "get_weather", "arguments": {"location": "Taipei"}}',
        '<|python_tag|>{"name": "get_weather", "parameters": {"location": "Taipei"}}<|eom_id|>',
        '```json\n{"name": "get_weather", "parameters": {"location": "Taipei"}}\n```',
        '<tool_call>\n{"name": "get_weather", "arguments": {"location": "Taipei"}}\n</tool_call>',
        '{"type": "function", "function": {"name": "get_weather", "arguments": "{\\"location\\": \\"Taipei\\"}"}}',
        '{"tool_calls": [{"function": {"name": "get_weather", "arguments": {"location": "Taipei"}}}]}',
        '<function=get_weather>{"location": "Taipei"}</function>',
        '[get_weather(location="Taipei")]',
        "<|python_tag|>get_weather.call(location='Taipei')",
        'get_weather(location="Taipei")',
        'Action: get_weather\nAction Input: {"location": "Taipei"}',
        "Action: get_weather\nAction Input: Taipei",
        '[get_weather("Taipei")]',
    ],
)
def test_every_call_syntax_is_found(text: str) -> None:
    recovery = content(text)
    assert calls(recovery) == [WEATHER]
    assert recovery.text == ""
    assert ID.match(recovery.calls[0].id)


@pytest.mark.parametrize("separator", ["; ", ";", "\n", ", ", "\n\nand then\n\n", ""])
def test_several_calls_with_any_separator(separator: str) -> None:
    first = '{"name": "get_weather", "parameters": {"location": "Taipei"}}'
    second = '{"name": "calculator", "parameters": {"expression": "1+1"}}'
    recovery = content(first + separator + second)
    assert [c.name for c in recovery.calls] == ["get_weather", "calculator"]


def test_call_inside_foxbrain_tags_keeps_the_tags_and_prose() -> None:
    text = (
        "<count>3</count>\n<step>先查詢台北的天氣，集合 {1,2} 與 \\frac{1}{2} 不影響。</step>\n"
        '<step>{"name": "get_weather", "parameters": {"location": "台北"}}</step>'
    )
    recovery = content(text)
    assert calls(recovery) == [("get_weather", {"location": "台北"}, "content")]
    assert "<count>3</count>" in recovery.text
    assert "先查詢台北的天氣" in recovery.text
    assert '"name"' not in recovery.text


def test_prose_around_the_call_is_kept() -> None:
    text = 'Sure, let me check.\n{"name": "get_weather", "parameters": {"location": "Taipei"}}\nOne moment.'
    recovery = content(text)
    assert calls(recovery) == [WEATHER]
    assert recovery.text == "Sure, let me check.\nOne moment."


# --- 3. repair only inside the candidate ---------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "{'name': 'get_weather', 'parameters': {'location': 'Taipei'}}",
        '{"name": "get_weather", "parameters": {"location": "Taipei",},}',
        '{name: "get_weather", parameters: {location: "Taipei"}}',
        '｛"name"："get_weather"，"parameters"：｛"location"："Taipei"｝｝',
        '{"name": "get_weather" "parameters": {"location": "Taipei"}}',
    ],
)
def test_malformed_json_is_repaired_and_marked(text: str) -> None:
    assert calls(content(text)) == [("get_weather", {"location": "Taipei"}, "repaired")]


def test_latex_and_dicts_elsewhere_do_not_break_the_call() -> None:
    text = (
        "The set {3, 5} and $\\frac{a}{b}$ and {'x': 1} are fine.\n"
        '{"name": "calculator", "parameters": {"expression": "3/5"}}'
    )
    assert calls(content(text)) == [("calculator", {"expression": "3/5"}, "content")]


def test_non_call_json_is_not_a_call() -> None:
    recovery = content('The answer is {"city": "Taipei", "temperature": 23}.')
    assert recovery.calls == () and recovery.rejected == ()
    assert recovery.text == 'The answer is {"city": "Taipei", "temperature": 23}.'


# --- 4. name gate ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["GetWeather", "get-weather", "functions.get_weather", "GET_WEATHER"]
)
def test_safe_name_normalisation(name: str) -> None:
    recovery = content(json.dumps({"name": name, "parameters": {"location": "Taipei"}}))
    assert calls(recovery) == [("get_weather", {"location": "Taipei"}, "repaired")]


@pytest.mark.parametrize("name", ["get_wether", "weather", "brave_search", "getweather2"])
def test_near_misses_are_unknown_tools(name: str) -> None:
    recovery = content(json.dumps({"name": name, "parameters": {"location": "Taipei"}}))
    assert recovery.calls == ()
    assert kinds(recovery) == ["unknown_tool"]
    assert recovery.rejected[0].reason == (
        f"Unknown tool '{name}'. Available tools: get_weather, calculator, search_web."
    )


def test_normalisation_must_match_exactly_one_tool() -> None:
    @tool(name="get-weather")
    def dashed(location: str) -> str:
        """Other."""
        return location

    recovery = content(
        '{"name": "GetWeather", "parameters": {"location": "x"}}', tools=[get_weather, dashed]
    )
    assert kinds(recovery) == ["unknown_tool"]


# --- 5. arguments --------------------------------------------------------------------------------


def test_invalid_arguments_are_rejected_with_the_tool_message() -> None:
    recovery = content(
        '{"name": "search_web", "parameters": {"query": "fox", "max_results": "many"}}'
    )
    assert [r.reason for r in recovery.rejected] == [
        "Invalid arguments for tool 'search_web': 'max_results': expected an integer, got 'many'."
    ]


def test_missing_required_argument_is_rejected() -> None:
    recovery = content('{"name": "get_weather", "parameters": {}}')
    assert kinds(recovery) == ["invalid_arguments"]
    assert "'location': required argument is missing" in recovery.rejected[0].reason


def test_react_plain_text_needs_a_single_required_string_parameter() -> None:
    recovery = content("Action: search_web\nAction Input: foxes")
    assert calls(recovery) == [("search_web", {"query": "foxes"}, "content")]


def test_schema_dicts_are_validated_with_the_same_messages() -> None:
    recovery = content(
        '{"name": "search_web", "parameters": {"query": "fox", "max_results": "3", "lang": "zh"}}',
        tools=SCHEMAS,
    )
    assert recovery.calls == ()
    assert recovery.rejected[0].reason == (
        "Invalid arguments for tool 'search_web': 'lang': unknown argument (known: query, max_results)."
    )
    ok = content(
        '{"name": "search_web", "parameters": {"query": "fox", "max_results": "3"}}', tools=SCHEMAS
    )
    assert calls(ok) == [("search_web", {"query": "fox", "max_results": 3}, "content")]


# --- 6. truncation -------------------------------------------------------------------------------


def test_cut_call_is_never_completed_at_the_length_limit() -> None:
    recovery = content('{"name": "get_weather", "parameters": {"location": "Taipei"}', "length")
    assert recovery.calls == ()
    assert kinds(recovery) == ["truncated"]
    assert recovery.rejected[0].reason == (
        "The call to tool 'get_weather' was cut off at the output limit, so it was not run; "
        "send it again, shorter."
    )


def test_complete_call_before_the_cut_still_runs() -> None:
    text = (
        '{"name": "calculator", "parameters": {"expression": "1+1"}}\n'
        '{"name": "get_weather", "parameters": {"location": "Tai'
    )
    recovery = content(text, "length")
    assert calls(recovery) == [("calculator", {"expression": "1+1"}, "content")]
    assert kinds(recovery) == ["truncated"]


def test_forgotten_closing_brace_is_completed_when_the_model_stopped() -> None:
    recovery = content('{"name": "get_weather", "parameters": {"location": "Taipei"}', "stop")
    assert calls(recovery) == [("get_weather", {"location": "Taipei"}, "repaired")]


def test_cut_inside_a_value_is_truncated_even_without_length() -> None:
    recovery = content('{"name": "get_weather", "parameters": {"location": "Tai', "stop")
    assert kinds(recovery) == ["truncated"]


def test_last_server_call_is_not_trusted_at_the_length_limit() -> None:
    message = server(("calculator", '{"expression": "1"}'), ("get_weather", '{"location": "Tai"}'))
    recovery = recover_tool_calls(message, TOOLS, finish_reason="length")
    assert [c.name for c in recovery.calls] == ["calculator"]
    assert [(r.kind, r.name) for r in recovery.rejected] == [("truncated", "get_weather")]


def test_pythonic_call_cut_at_the_limit_is_truncated() -> None:
    recovery = content('[get_weather(location="Tai', "length")
    assert recovery.calls == ()
    assert kinds(recovery) == ["truncated"]


# --- 7. examples ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "lead",
    [
        "For example, a call looks like this:",
        "The format is:",
        "e.g.",
        "例如：",
        "呼叫的格式如下：",
    ],
)
def test_examples_in_explanations_are_not_calls(lead: str) -> None:
    example = '{"name": "get_weather", "parameters": {"location": "Taipei"}}'
    recovery = content(f"{lead} {example}\nThat is how you use it.")
    assert recovery.calls == ()
    assert kinds(recovery) == ["example"]
    assert example in recovery.text


def test_a_cue_in_an_earlier_paragraph_does_not_count() -> None:
    text = 'For example, weather.\n\n{"name": "get_weather", "parameters": {"location": "Taipei"}}'
    assert calls(content(text)) == [WEATHER]


# --- 8 and 9. duplicates, narration, text ------------------------------------------------------


def test_exact_duplicates_run_once() -> None:
    one = '{"name": "get_weather", "parameters": {"location": "Taipei"}}'
    assert calls(content(f"{one}\n{one}")) == [WEATHER]


@pytest.mark.parametrize(
    "text",
    [
        "I'll call get_weather for Taipei.",
        "台北現在 23°C，晴天。",
        "<count>1</count><step>思考</step><answer>42</answer>",
        "",
    ],
)
def test_plain_text_has_no_calls(text: str) -> None:
    recovery = content(text)
    assert recovery.calls == () and recovery.rejected == ()
    assert recovery.text == text.strip()


def test_special_tokens_leave_the_text() -> None:
    recovery = content("Done.<|eot_id|><|start_header_id|>assistant<|end_header_id|>")
    assert recovery.text == "Done."


def test_recovered_call_serialises_for_the_history() -> None:
    call = content('{"name": "get_weather", "parameters": {"location": "台北"}}').calls[0]
    entry = call.openai_tool_call()
    assert entry["type"] == "function" and entry["id"] == call.id
    assert entry["function"] == {"name": "get_weather", "arguments": '{"location": "台北"}'}
