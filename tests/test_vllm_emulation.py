"""The llama3_json emulator against the facts in ``shared/ref/vllm-llama3-json.md`` §2-3.

Each test names the fact it checks. Where reading vLLM's real source showed the
reference doc to be imprecise, the test pins the real behaviour and says so.
"""

from __future__ import annotations

import json
import re

import pytest

from foxagent.testing._vllm_llama3_json import (
    BOT_TOKEN,
    Generation,
    ParserOutput,
    ServerToolCall,
    extract_tool_calls,
    new_tool_call_id,
    server_message,
)

GENERATIONS: tuple[Generation, ...] = ("prefix", "regex", "brace")
WEATHER = '{"name": "get_weather", "parameters": {"location": "Taipei"}}'
CALC = '{"name": "calculator", "parameters": {"expression": "1+1"}}'
NESTED = '{"name": "create_event", "parameters": {"title": "a", "meta": {"room": {"id": 1}}}}'


def names(out: ParserOutput) -> list[str]:
    return [call.name for call in out.tool_calls]


def is_plain(out: ParserOutput, text: str) -> bool:
    return not out.tools_called and out.tool_calls == () and out.content == text


# --- §2 accepted object shape, every generation -------------------------------------------


@pytest.mark.parametrize("generation", GENERATIONS)
def test_fact_accepted_shape_is_name_plus_arguments_or_parameters(generation: Generation) -> None:
    for key in ("arguments", "parameters"):
        text = '{"name": "get_weather", "' + key + '": {"location": "Taipei"}}'
        out = extract_tool_calls(text, generation)
        assert out == ParserOutput(
            tools_called=True,
            tool_calls=(ServerToolCall(name="get_weather", arguments='{"location": "Taipei"}'),),
            content=None,
        )
    for text in ('{"name": "get_weather"}', '{"parameters": {"location": "Taipei"}}'):
        assert is_plain(extract_tool_calls(text, generation), text)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_fact_arguments_wins_over_parameters(generation: Generation) -> None:
    text = '{"name": "f", "parameters": {"a": 1}, "arguments": {"b": 2}}'
    assert extract_tool_calls(text, generation).tool_calls[0].arguments == '{"b": 2}'


@pytest.mark.parametrize("generation", GENERATIONS)
def test_fact_other_keys_such_as_type_function_are_ignored(generation: Generation) -> None:
    text = '{"type": "function", "name": "f", "parameters": {"a": 1}, "id": "x"}'
    assert extract_tool_calls(text, generation).tool_calls == (
        ServerToolCall(name="f", arguments='{"a": 1}'),
    )


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize(
    ("value", "dumped"),
    [
        ('"{\\"a\\":1}"', '"{\\"a\\":1}"'),  # a string holding JSON stays a string literal
        ("null", "null"),
        ("[1, 2]", "[1, 2]"),
        ('"Taipei"', '"Taipei"'),
        ("3", "3"),
    ],
)
def test_fact_chosen_value_of_any_json_type_is_json_dumped(
    generation: Generation, value: str, dumped: str
) -> None:
    text = '{"name": "f", "parameters": ' + value + "}"
    assert extract_tool_calls(text, generation).tool_calls[0].arguments == dumped


@pytest.mark.parametrize("generation", GENERATIONS)
def test_fact_name_must_be_a_string_for_vllms_pydantic_function_call(
    generation: Generation,
) -> None:
    # Found in the source, not in the ref doc: FunctionCall(name: str) raises for
    # non-strings inside the parser's `except Exception`, so the text is content.
    for text in ('{"name": 5, "parameters": {}}', '{"name": null, "parameters": {}}'):
        assert is_plain(extract_tool_calls(text, generation), text)


# --- §2 G1 "prefix" -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Sure: " + WEATHER,
        " " + WEATHER,
        "\n" + WEATHER,
        "```json\n" + WEATHER + "\n```",
        "[" + WEATHER + "]",
        "<step>" + WEATHER + "</step>",
    ],
)
def test_fact_g1_tool_mode_only_if_text_starts_with_python_tag_or_brace(text: str) -> None:
    assert is_plain(extract_tool_calls(text, "prefix"), text)
    assert names(extract_tool_calls(WEATHER, "prefix")) == ["get_weather"]
    assert names(extract_tool_calls(BOT_TOKEN + WEATHER, "prefix")) == ["get_weather"]


def test_fact_g1_semicolon_space_separated_calls_work() -> None:
    out = extract_tool_calls(WEATHER + "; " + CALC, "prefix")
    assert names(out) == ["get_weather", "calculator"]


@pytest.mark.parametrize("sep", [";", "\n", ", ", "\n\n", " ; "])
def test_fact_g1_skips_exactly_two_characters_so_other_separators_fail(sep: str) -> None:
    text = WEATHER + sep + CALC
    if sep in (", ", "\n\n"):  # any two characters happen to work, like "; "
        assert names(extract_tool_calls(text, "prefix")) == ["get_weather", "calculator"]
    else:
        assert is_plain(extract_tool_calls(text, "prefix"), text)


def test_fact_g1_text_after_the_last_object_fails() -> None:
    # Correction to the ref doc ("ANY text after the last object ... raises"): the
    # two-character skip also swallows up to two trailing characters.
    for tail in ("<|eom_id|>", " Let me know!", "\n\nDone."):
        text = WEATHER + tail
        assert is_plain(extract_tool_calls(text, "prefix"), text)
    for tail in ("\n", "\n\n", " ."):
        assert names(extract_tool_calls(WEATHER + tail, "prefix")) == ["get_weather"]


def test_fact_g1_raw_decode_does_not_skip_whitespace_after_python_tag() -> None:
    text = BOT_TOKEN + " " + WEATHER
    assert is_plain(extract_tool_calls(text, "prefix"), text)


def test_fact_g1_bare_python_tag_reports_a_call_with_no_calls() -> None:
    # Found in the source: the decode loop never runs, so tools_called is True.
    assert extract_tool_calls(BOT_TOKEN, "prefix") == ParserOutput(
        tools_called=True, tool_calls=(), content=None
    )
    assert server_message(BOT_TOKEN, generation="prefix") == (
        {"role": "assistant", "content": None, "tool_calls": []},
        "tool_calls",
    )


def test_fact_g1_ascii_escapes_chinese_until_pr_17704() -> None:
    text = '{"name": "get_weather", "parameters": {"location": "台北"}}'
    escaped = extract_tool_calls(text, "prefix").tool_calls[0].arguments
    assert escaped == '{"location": "\\u53f0\\u5317"}'
    unescaped = extract_tool_calls(text, "prefix", ensure_ascii=False).tool_calls[0].arguments
    assert unescaped == '{"location": "台北"}'
    assert json.loads(escaped) == json.loads(unescaped)


# --- §2 G2 "regex" ------------------------------------------------------------------------


def test_fact_g2_quick_check_brace_or_python_tag_anywhere() -> None:
    text = "I will check the weather in Taipei."
    assert is_plain(extract_tool_calls(text, "regex"), text)
    assert names(extract_tool_calls("Sure! " + WEATHER, "regex")) == ["get_weather"]


def test_fact_g2_first_match_with_semicolon_joined_objects() -> None:
    out = extract_tool_calls("x " + WEATHER + " ;\n " + CALC + " y " + WEATHER, "regex")
    assert names(out) == ["get_weather", "calculator"]


def test_fact_g2_splits_on_every_semicolon_even_inside_strings() -> None:
    text = '{"name": "send_email", "parameters": {"to": "a@b.c", "body": "Hi; bye"}}'
    assert is_plain(extract_tool_calls(text, "regex"), text)
    assert names(extract_tool_calls(text, "brace")) == ["send_email"]


def test_fact_g2_text_before_and_after_is_allowed_and_discarded() -> None:
    out = extract_tool_calls("Let me check.\n" + WEATHER + "\nOne moment.", "regex")
    assert out.content is None
    assert names(out) == ["get_weather"]


def test_fact_g2_ascii_escaping_early_builds_on_later_builds_off() -> None:
    text = '{"name": "translate", "parameters": {"text": "你好", "target_language": "en"}}'
    early = extract_tool_calls(text, "regex").tool_calls[0].arguments
    late = extract_tool_calls(text, "regex", ensure_ascii=False).tool_calls[0].arguments
    assert "\\u4f60\\u597d" in early
    assert "你好" in late
    assert json.loads(early) == json.loads(late)


def test_fact_g2_two_nested_levels_match_the_inner_object_and_fail() -> None:
    assert is_plain(extract_tool_calls(NESTED, "regex"), NESTED)
    assert names(extract_tool_calls(NESTED, "brace")) == ["create_event"]


@pytest.mark.parametrize("sep", ["\n", ", ", " and then "])
def test_fact_g2_newline_or_comma_separated_calls_keep_only_the_first(sep: str) -> None:
    assert names(extract_tool_calls(WEATHER + sep + CALC, "regex")) == ["get_weather"]


def test_fact_g2_braces_inside_string_values_mislead_the_match() -> None:
    text = '{"name": "calculator", "parameters": {"expression": "\\\\frac{1}{2}"}}'
    assert is_plain(extract_tool_calls(text, "regex"), text)
    assert names(extract_tool_calls(text, "brace")) == ["calculator"]


# --- §2 G3 "brace" ------------------------------------------------------------------------


def test_fact_g3_quick_check_as_g2_then_every_brace_is_decoded() -> None:
    text = "no braces here"
    assert is_plain(extract_tool_calls(text, "brace"), text)
    out = extract_tool_calls("a " + WEATHER + " b " + CALC, "brace")
    assert names(out) == ["get_weather", "calculator"]


def test_fact_g3_any_failure_anywhere_makes_everything_content() -> None:
    for text in (WEATHER + "\n{oops}", WEATHER + '\n{"name": "calculator"}'):
        assert is_plain(extract_tool_calls(text, "brace"), text)


@pytest.mark.parametrize(
    "text",
    [
        NESTED,
        WEATHER + "\n" + CALC,
        WEATHER + ", " + CALC,
        "First the weather: " + WEATHER + " then math: " + CALC,
        "<tool_call>" + WEATHER + "</tool_call>\n<tool_call>" + CALC + "</tool_call>",
        "```json\n" + WEATHER + "\n```",
        "<step>查天氣</step><step>" + WEATHER + "</step>",
    ],
)
def test_fact_g3_handles_nesting_and_any_separator(text: str) -> None:
    out = extract_tool_calls(text, "brace")
    assert out.tools_called
    assert out.content is None


@pytest.mark.parametrize(
    "stray", ["$\\frac{1}{2}$", "the set {3,5}", "function f() { return 1; }", "{'a': 1}"]
)
def test_fact_g3_stray_non_json_brace_makes_everything_content(stray: str) -> None:
    for text in (stray + "\n" + WEATHER, WEATHER + "\n" + stray):
        assert is_plain(extract_tool_calls(text, "brace"), text)


def test_fact_g3_valid_non_tool_json_object_makes_everything_content() -> None:
    text = 'The city is {"city": "Taipei"}.\n' + WEATHER
    assert is_plain(extract_tool_calls(text, "brace"), text)


def test_fact_g3_brace_right_after_a_closing_brace_is_skipped() -> None:
    # The ref doc says the 2nd call of a `}{` pair is silently dropped. That only holds
    # when the 2nd object has no inner `{`: otherwise the scan lands on its
    # arguments object, which has no "name", and the WHOLE reply becomes content.
    dropped = WEATHER + '{"name": "get_current_time", "parameters": null}'
    assert names(extract_tool_calls(dropped, "brace")) == ["get_weather"]
    lost = WEATHER + CALC
    assert is_plain(extract_tool_calls(lost, "brace"), lost)


def test_fact_g3_json_example_in_prose_is_extracted_and_prose_discarded() -> None:
    text = (
        'To call a tool, reply in this format: {"name": "get_weather", '
        '"parameters": {"location": "Paris"}}. Let me know which city you want.'
    )
    out = extract_tool_calls(text, "brace")
    assert names(out) == ["get_weather"]
    assert out.content is None


# --- §2 common to all generations ---------------------------------------------------------


@pytest.mark.parametrize("generation", ["regex", "brace"])
def test_fact_success_gives_null_content_and_discards_surrounding_text(
    generation: Generation,
) -> None:
    message, _ = server_message(
        "<step>想一下</step>\n" + WEATHER + "\n還要什麼？", generation=generation
    )
    assert message["content"] is None
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["get_weather"]


@pytest.mark.parametrize("generation", GENERATIONS)
def test_fact_failure_gives_full_raw_text_and_empty_tool_calls_list(
    generation: Generation,
) -> None:
    text = "{'name': 'get_weather', 'parameters': {'location': 'Taipei'}}"
    message, finish = server_message(text, generation=generation)
    if generation == "brace":
        # vLLM 0.32.0's ChatMessage serializer drops an empty tool_calls list (conformance suite).
        assert message == {"role": "assistant", "content": text}
    else:
        assert message == {"role": "assistant", "content": text, "tool_calls": []}
    assert finish == "stop"


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize(
    "text",
    [
        '{"name": "send_email", "parameters": {"body": "line1\nline2"}}',
        '{"name": "send_email", "parameters": {"body": "a\tb"}}',
        "{'name': 'get_weather', 'parameters': {'location': 'Taipei'}}",
        '{"name": "get_weather", "parameters": {"location": "Taipei",},}',
        '{name: "get_weather", parameters: {location: "Taipei"}}',
        '{"name": "search_web", "parameters": {"query": "x", "safe": True}}',
        '{"name": "get_current_time", "parameters": None}',
        '{"name"："get_weather"，"parameters"：{"location"："台北"}}',
        "{“name”: “get_weather”, “parameters”: {“location”: “台北”}}",
    ],
)
def test_fact_strict_json_decoding_rejects_common_slips(generation: Generation, text: str) -> None:
    assert is_plain(extract_tool_calls(text, generation), text)


@pytest.mark.parametrize("generation", GENERATIONS)
def test_fact_python_tag_prefix_is_accepted(generation: Generation) -> None:
    assert names(extract_tool_calls(BOT_TOKEN + WEATHER, generation)) == ["get_weather"]


# --- §3 ids and finish_reason -------------------------------------------------------------


def test_fact_ids_are_chatcmpl_tool_plus_hex_generated_server_side() -> None:
    # Up to v0.11 a whole uuid4 (32 hex digits); vLLM 0.32.0 keeps its low 64 bits (16).
    assert re.fullmatch(r"chatcmpl-tool-[0-9a-f]{16}", new_tool_call_id())
    for generation, digits in (("prefix", 32), ("regex", 32), ("brace", 16)):
        message, _ = server_message(WEATHER + "; " + CALC, generation=generation)
        ids = [call["id"] for call in message["tool_calls"]]
        assert all(re.fullmatch(rf"chatcmpl-tool-[0-9a-f]{{{digits}}}", i) for i in ids)
        assert len(set(ids)) == 2
    fixed, _ = server_message(WEATHER, id_factory=lambda: "<id>")
    assert fixed["tool_calls"] == [
        {
            "id": "<id>",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "Taipei"}'},
        }
    ]


@pytest.mark.parametrize("generation", GENERATIONS)
def test_fact_finish_reason_is_tool_calls_whenever_a_call_was_parsed(
    generation: Generation,
) -> None:
    for engine in ("stop", "length"):
        _, finish = server_message(WEATHER, generation=generation, engine_finish_reason=engine)
        assert finish == "tool_calls"


def test_fact_truncated_output_with_one_complete_call_reports_tool_calls() -> None:
    text = WEATHER + '\n{"name": "calculator", "parameters": {"expr'
    message, finish = server_message(text, generation="regex", engine_finish_reason="length")
    assert finish == "tool_calls"
    assert [c["function"]["name"] for c in message["tool_calls"]] == ["get_weather"]


@pytest.mark.parametrize("generation", GENERATIONS)
def test_fact_without_a_call_finish_reason_is_the_engines(generation: Generation) -> None:
    text = '{"name": "send_email", "parameters": {"to": "a@b.c", "body": "Dear'
    for engine in ("stop", "length"):
        message, finish = server_message(text, generation=generation, engine_finish_reason=engine)
        assert finish == engine
        assert message["content"] == text


def test_unknown_generation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown generation"):
        extract_tool_calls("{}", "pythonic")  # type: ignore[arg-type]
