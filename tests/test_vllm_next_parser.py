"""FakeVLLMServer generation ``"next"``: vLLM main's llama3_json parser after PR #51577.

The real parser cannot be run here (it is on vLLM main only, not in 0.33.0), so the emulation is
checked against the PR's own test cases, ported as data from
``tests/parser/engine/test_llama_json.py`` (vllm-project/vllm, commit 165e02212f8c): inputs and
the content / tool calls the PR asserts, non-streaming and streaming. Then foxagent's agent runs
against ``FakeVLLMServer(generation="next")`` over HTTP, and every corpus text goes through the
``"next"`` server message and ``recover_tool_calls`` for the safety property.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from foxagent import recover_tool_calls
from foxagent._recovery import ToolIndex
from foxagent.events import RunWarning
from foxagent.testing import FakeVLLMServer, Reply
from foxagent.testing._vllm_llama3_json import extract_tool_calls, server_message
from foxagent.testing._vllm_llama3_next import closable_prefix, final_arguments
from foxagent.testing._vllm_llama3_stream import StreamedTurn, stream_auto
from tests.conftest import AgentFactory
from tests.corpus import load_cases, load_tools


def _nonstream(text: str, tools: list[dict[str, Any]] | None = None) -> tuple[Any, list[Any]]:
    message, _ = server_message(text, generation="next", tools=tools)
    calls = [
        (c["function"]["name"], c["function"]["arguments"]) for c in message.get("tool_calls", [])
    ]
    return message["content"], calls


def _stream(
    text: str, tools: list[dict[str, Any]] | None = None, finish: str = "stop"
) -> tuple[str, list[tuple[str, str]], StreamedTurn]:
    """Fold the streamed deltas: (content, [(name, arguments)]); ids and names arrive once."""
    turn = stream_auto(text, generation="next", tools=tools, engine_finish_reason=finish)
    content = ""
    calls: dict[int, dict[str, Any]] = {}
    for delta in turn.deltas:
        content += delta.get("content", "")
        for update in delta.get("tool_calls", []):
            call = calls.setdefault(update["index"], {"id": None, "name": None, "args": ""})
            if "id" in update:
                assert call["id"] is None, "id must be sent exactly once"
                call["id"] = update["id"]
                assert update["type"] == "function"
            function = update.get("function", {})
            if "name" in function:
                assert call["name"] is None, "name must arrive whole, once"
                call["name"] = function["name"]
            call["args"] += function.get("arguments", "")
    assert sorted(calls) == list(range(len(calls))), "dense indices"
    folded = [(calls[i]["name"], calls[i]["args"]) for i in sorted(calls)]
    for name, _ in folded:
        assert name
    return content, folded, turn


def _tools(properties: dict[str, Any], name: str = "f") -> list[dict[str, Any]]:
    parameters = {"type": "object", "properties": properties}
    return [{"type": "function", "function": {"name": name, "parameters": parameters}}]


# --- the PR's cases: argument repair ------------------------------------------------------------

REPAIRED_SPANS = [
    # test_incomplete_spans_completed_to_valid_json
    ('{"x": 1}', '{"x": 1}'),
    ('{"x": "lo', '{"x": "lo"}'),
    ('{"x": "lo\\', '{"x": "lo"}'),
    ('{"a": 1, "b": ', '{"a": 1}'),
    ('{"a": 1, "b": tr', '{"a": 1}'),
    ('{"a": [1, {"b": "c', '{"a": [1, {"b": "c"}]}'),
    ('["a", ', '["a"]'),
    ("{invalid json}", "{}"),
    ("{", "{}"),
    ('"str', '"str"'),
    ("42", "42"),
    ("null", "null"),
    # test_invalid_tokens_cut_back_to_valid_json
    ('{"x": 0}', '{"x": 0}'),
    ('{"x": -0}', '{"x": -0}'),
    ('{"x": 1.5}', '{"x": 1.5}'),
    ('{"x": 1e5}', '{"x": 1e5}'),
    ('{"x": 1E+5}', '{"x": 1E+5}'),
    ('{"x": 1.5e-3}', '{"x": 1.5e-3}'),
    ('{"x": 0.}', '{"x": 0}'),
    ('{"x": 0.e1}', '{"x": 0}'),
    ('{"x": 1.e+2}', '{"x": 1}'),
    ('{"x": 1.e-2}', '{"x": 1}'),
    ('{"x": 1e}', '{"x": 1}'),
    ('{"x": 1e+}', '{"x": 1}'),
    ('{"x": 01}', '{"x": 0}'),
    ('{"x": -}', "{}"),
    ('{"x": .5}', "{}"),
    ('{"x": +1}', "{}"),
    ('{"x": "a\nb"}', '{"x": "a"}'),
    ('{"x": "a\rb"}', '{"x": "a"}'),
    ('{"x": "a\tb"}', '{"x": "a"}'),
    ('{"x": "a\x00b"}', '{"x": "a"}'),
    ('{"x": "a\\nb"}', '{"x": "a\\nb"}'),
    ('{"o": {"x": "a\nb"}, "y": 2}', '{"o": {"x": "a"}}'),
    ('{"l": ["a\nb", "c"]}', '{"l": ["a"]}'),
    ('{"a": 1, "k\ny": 2}', '{"a": 1}'),
    # test_unicode_escapes_cut_back_to_valid_json
    ('{"a": "\\u0041"}', '{"a": "\\u0041"}'),
    ('{"a": "x\\u00e9y"}', '{"a": "x\\u00e9y"}'),
    ('{"k\\u00e9y": 1}', '{"k\\u00e9y": 1}'),
    ('{"a": "x\\u00e9', '{"a": "x\\u00e9"}'),
    ('{"a": "x\\', '{"a": "x"}'),
    ('{"a": "x\\u', '{"a": "x"}'),
    ('{"a": "x\\u0', '{"a": "x"}'),
    ('{"a": "x\\u00', '{"a": "x"}'),
    ('{"a": "x\\u00e', '{"a": "x"}'),
    ('{"a": "x\\u00e"}', '{"a": "x"}'),
    ('{"a": "x\\uZZZZ"}', '{"a": "x"}'),
    ('{"a": "x\\u00g9"}', '{"a": "x"}'),
    ('{"a": "x\\qy"}', '{"a": "x"}'),
    ('{"k\\u00e": 1}', "{}"),
    # test_empty_containers_do_not_end_the_span
    ('{"l": [], "a": "z"}', '{"l": [], "a": "z"}'),
    ('{"o": {}, "a": "z"}', '{"o": {}, "a": "z"}'),
    ('{"l": [[], {}], "a": "z"}', '{"l": [[], {}], "a": "z"}'),
    ('{"l": [], "a": "z', '{"l": [], "a": "z"}'),
    ('{"o": {}, "a": "z', '{"o": {}, "a": "z"}'),
    ('{"l": [', '{"l": []}'),
    ('{"l": []', '{"l": []}'),
    ('{"l": [],', '{"l": []}'),
    ('{"o": {', '{"o": {}}'),
    ('{"o": {}', '{"o": {}}'),
]


@pytest.mark.parametrize(("span", "completed"), REPAIRED_SPANS)
def test_argument_spans_are_closed_into_valid_json(span: str, completed: str) -> None:
    end, closers = closable_prefix(span)
    assert span[:end] + closers == completed
    json.loads(completed)
    assert final_arguments(f'{{"name": "f", "parameters": {span}') == completed


@pytest.mark.parametrize(
    "document",
    [
        "{}",
        "[]",
        '{"a": 1}',
        '{"l": [], "a": "z"}',
        '{"o": {}, "a": "z"}',
        '{"l": [[], {}], "n": null}',
        '[{}, [], "s", 1.5e-3, true, false, null]',
        '{"a": "x\\u00e9y", "b": [1, {"c": {}}]}',
    ],
)
def test_complete_document_needs_no_repair(document: str) -> None:
    assert closable_prefix(document) == (len(document), "")


def test_closable_prefix_is_monotonic() -> None:
    span = '{"a": [1, 2.5e3, {"b": "c\\"d"}], "e": true, "f": null}'
    previous = 0
    for cut in range(len(span) + 1):
        end, closers = closable_prefix(span[:cut])
        assert end >= previous
        if end:
            json.loads(span[:end] + closers)
        previous = end


# --- the PR's cases: non-streaming --------------------------------------------------------------

NONE: list[tuple[str, str]] = []
F_QUERY_A = ("f", '{"query": "a"}')
ABC = [("a", '{"q": "t1"}'), ("b", "{}"), ("c", '{"n": 3}')]
PROSE_JSON = [
    'Here is JSON: {"a": 1} and more text after',
    "Sure: function f() { return 1; } and that is it",
    'The config is {"a": 1}; see the docs for details.',
    'Set {"a": "b"}; then restart the app to apply changes',
    '{"parameters": {"x": 1}}',
    '{"name": "f", "id": 1}',
    '{"name": "f"}',
    '{"name": "f"',
    '{"name": "Alice"}',
    "This is just some text without any tool calls",
    "The marker is <|python_start|> ok",  # not a Llama 3 token: stays text
    "Use <|python_end|> to close",
    '{"name": "run_cmd",',  # TestForcedChoiceKeepsUnpromotedText, auto
    '[ Let me think {"x": 1}',
    'prose {"x": 1} more',
    '{"x": 1} tail',
]
NON_STREAMING: list[tuple[str, str | None, list[tuple[str, str]]]] = [
    (
        '{"name": "get_weather", "parameters": {"city": "SF"}}',
        None,
        [("get_weather", '{"city": "SF"}')],
    ),
    (
        '<|python_tag|>{"name": "search", "arguments": {"q": "test"}}',
        None,
        [("search", '{"q": "test"}')],
    ),
    ('<|python_tag|>print("hello")', 'print("hello")', NONE),
    ('<|python_tag|>{"name": "get_weather", "para', '{"name": "get_weather", "para', NONE),
    (
        '<|python_tag|>{"items": [{"id": 1, "name": "x"}]}',
        '{"items": [{"id": 1, "name": "x"}]}',
        NONE,
    ),
    *[(text, text, NONE) for text in PROSE_JSON],
    *[
        (
            sep.join(
                [
                    '{"name": "a", "parameters": {"q": "t1"}}',
                    '{"name": "b", "parameters": {}}',
                    '{"name": "c", "parameters": {"n": 3}}',
                ]
            ),
            None,
            ABC,
        )
        for sep in ["; ", " ; ", ";", ";\n", "\n", " ", ",", "", "<|python_tag|>"]
    ],
    ('{"name": "f", "parameters": {"query": "a"}} I used {searchTool} for this', None, [F_QUERY_A]),
    ('{"name": "f", "parameters": {"query": "a"}} the args were {"query": "x"}', None, [F_QUERY_A]),
    ('{"name": "f", "parameters": {"query": "a"}}{', None, [F_QUERY_A]),
    (
        '{"name": "f", "parameters": {"query": "a"}}{"name": "g", "parameters": {invalid}}',
        None,
        [F_QUERY_A, ("g", "{}")],
    ),
    ('{"name": "f", "parameters": {"a": "x\\u', None, [("f", '{"a": "x"}')]),
    ('{"name": "f", "parameters": {"a": "x\\u00e9', None, [("f", '{"a": "x\\u00e9"}')]),
    ('{"name": "f", "parameters": {"a": "x\\uZZZZ"}', None, [("f", '{"a": "x"}')]),
    ('{"name": "f", "parameters": {"l": [], "a": "z"}', None, [("f", '{"l": [], "a": "z"}')]),
    ('{"name": "f", "parameters": {"o": {}, "a": "z"}', None, [("f", '{"o": {}, "a": "z"}')]),
    (
        'Here is the result: {"name": "f", "parameters": {}} more?',
        "Here is the result:",
        [("f", "{}")],
    ),
    (
        'Example: {"name": "John", "age": 30, "city": "New York"} — '
        'now the weather: {"name": "get_weather", "parameters": {"city": "SF"}}',
        'Example: {"name": "John", "age": 30, "city": "New York"} — now the weather:',
        [("get_weather", '{"city": "SF"}')],
    ),
    (
        'Config {"parameters": {"a": 1}} used: {"name": "f", "parameters": {"b": 2}}',
        'Config {"parameters": {"a": 1}} used:',
        [("f", '{"b": 2}')],
    ),
    (
        '{"name": "run", "parameters": {"cmd": "echo a; echo b"}}; {"name": "g", "parameters": {}}',
        None,
        [("run", '{"cmd": "echo a; echo b"}'), ("g", "{}")],
    ),
    ('{"parameters": {"name": "inner"}, "name": "outer"}', None, [("outer", '{"name": "inner"}')]),
    *[
        (f'{{"name": "f", "parameters": {value}}}', None, [("f", value)])
        for value in ["[1, 2]", '"text"', "42", "null", '"{\\"x\\": 1}"']
    ],
    ('{"name": "f", "parameters": {"x": "lo', None, [("f", '{"x": "lo"}')]),
    ('{"name": "f", "parameters": {"a": 1, "b": ', None, [("f", '{"a": 1}')]),
    ('{"name": "f", "parameters": ["a", ', None, [("f", '["a"]')]),
    ('{"name": "f", "parameters":', None, [("f", "{}")]),
    ('{"name": "f", "parameters": {invalid json}}', None, [("f", "{}")]),
    ('{"name": "f", "parameters": {"a": 1}, "arguments": {"b": 2}}', None, [("f", '{"a": 1}')]),
    ('{"name": "f", "arguments": {"b": 2}, "parameters": {"a": 1}}', None, [("f", '{"b": 2}')]),
    (
        'Let me check. {"name": "get_weather", "parameters": {"city": "SF"}}',
        "Let me check.",
        [("get_weather", '{"city": "SF"}')],
    ),
    ('{"name": "a\\"b", "parameters": {"x": 1}}', None, [('a"b', '{"x": 1}')]),
    ('{"name": "f", "parameters": {}}<|eot_id|>', None, [("f", "{}")]),
    ('  {"name": "f", "parameters": {}}', None, [("f", "{}")]),
]


@pytest.mark.parametrize(("text", "content", "calls"), NON_STREAMING)
def test_pr_cases_non_streaming(text: str, content: str | None, calls: list[Any]) -> None:
    assert _nonstream(text) == (content, calls)
    for _, arguments in calls:
        json.loads(arguments)


def test_nested_quotes_brackets_and_escapes() -> None:
    text = (
        '{"name": "parserTool", "parameters": {'
        '"query": "test {value} [complex]", '
        '"text": "He said \\"Hello {world}\\"", '
        '"config": {"database": {"pool": {"size": 10}}}}}'
    )
    _, [(name, arguments)] = _nonstream(text)
    args = json.loads(arguments)
    assert name == "parserTool" and args["query"] == "test {value} [complex]"
    assert args["text"] == 'He said "Hello {world}"'
    assert args["config"]["database"]["pool"]["size"] == 10


def test_extract_tool_calls_knows_next() -> None:
    out = extract_tool_calls('Sure. {"name": "f", "parameters": {"x": 1}} bye', "next")
    assert out.tools_called and out.content == "Sure."
    assert [(c.name, c.arguments) for c in out.tool_calls] == [("f", '{"x": 1}')]


# --- the PR's cases: schema coercion ---------------------------------------------------------

STR = {"type": "string"}
INT = {"type": "integer"}
COERCED_BODIES = [
    ({"a": STR, "x": INT}, '{"a":"foo","x":"1"}', '{"a":"foo","x":1}'),
    ({"x": INT, "a": STR}, '{"x":"1","a":"foo"}', '{"x":1,"a":"foo"}'),
    ({"x": INT, "y": INT}, '{"x": "1", "y": "2"}', '{"x": 1, "y": 2}'),
    ({"b": {"type": "boolean"}, "a": STR}, '{"b":"true","a":"q"}', '{"b":true,"a":"q"}'),
    ({"z": STR, "a": STR}, '{"z":123,"a":"q"}', '{"z":"123","a":"q"}'),
    (
        {"o": {"type": "object", "properties": {"n": INT}}, "a": STR},
        '{"o":{"n":"5"},"a":"q"}',
        '{"o":{"n":5},"a":"q"}',
    ),
    (
        {"l": {"type": "array", "items": INT}, "a": STR},
        '{"l":["1","2"],"a":"q"}',
        '{"l":[1,2],"a":"q"}',
    ),
    ({"a": STR, "x": INT}, '{"a":"foo","x":2}', '{"a":"foo","x":2}'),
    ({"a": STR}, '{"a":"foo","zz":"1"}', '{"a":"foo","zz":"1"}'),
    ({"a": STR}, "{}", "{}"),
    ({"x": {}}, '{"x":1.5}', '{"x":1.5}'),
    ({"x": {}}, '{"x":true}', '{"x":true}'),
    ({"x": {}}, '{"x":null}', '{"x":null}'),
    ({"x": {}, "y": {}}, '{"x":"s","y":2}', '{"x":"s","y":2}'),
    ({"o": {"type": "object", "properties": {"n": {}}}}, '{"o":{"n":5}}', '{"o":{"n":5}}'),
    ({"l": {"type": "array", "items": {}}}, '{"l":[1,2]}', '{"l":[1,2]}'),
    ({"o": {}}, '{"o":{"n":5}}', '{"o":{"n":5}}'),
    ({"a": STR, "x": INT}, '{"a": "foo", "x": "1"}', '{"a": "foo", "x": 1}'),  # separators kept
    # TestSchemaCoercionPreservesValidValues: already valid values come back as written
    ({"x": {"type": "number"}}, '{"x":9007199254740993}', '{"x":9007199254740993}'),
    ({"x": {"type": ["string", "integer"]}}, '{"x":"007"}', '{"x":"007"}'),
    ({"x": {"anyOf": [STR, {"type": "boolean"}]}}, '{"x":"false"}', '{"x":"false"}'),
    ({"x": {"oneOf": [STR, INT]}}, '{"x":"007"}', '{"x":"007"}'),
    ({"x": {"type": ["string", "null"]}}, '{"x":"null"}', '{"x":"null"}'),
    ({"x": {}}, '{"x":7}', '{"x":7}'),
    ({"x": {"const": 7}}, '{"x":7}', '{"x":7}'),
    ({"x": {"$ref": "#/$defs/integer_value"}}, '{"x":7}', '{"x":7}'),
    (
        {"x": {"allOf": [{"type": ["string", "integer"]}, {"type": ["string", "boolean"]}]}},
        '{"x":"007"}',
        '{"x":"007"}',
    ),
    (
        {"x": {"allOf": [{"type": ["string", "boolean"]}, {"type": ["boolean", "integer"]}]}},
        '{"x":"true"}',
        '{"x":true}',
    ),
    (
        {"x": {"type": "object", "properties": {"n": {"type": "number"}}}},
        '{"x":{"n":9007199254740993}}',
        '{"x":{"n":9007199254740993}}',
    ),
    (
        {"x": {"type": "array", "items": {"type": "number"}}},
        '{"x":[9007199254740993]}',
        '{"x":[9007199254740993]}',
    ),
    ({"a": {"type": "array", "items": INT}}, '{"a": "[[[]]]"}', '{"a": [[[]]]}'),
    ({"a": {"type": "array", "items": INT}}, '{"a": "' + "[" * 20_000 + "]" * 20_000 + '"}', None),
]


@pytest.mark.parametrize(("properties", "body", "expected"), COERCED_BODIES)
def test_schema_coercion_same_in_both_modes(
    properties: dict[str, Any], body: str, expected: str | None
) -> None:
    tools = _tools(properties)
    text = '{"name": "f", "parameters": ' + body + "}"
    _, [(name, arguments)] = _nonstream(text, tools)
    assert name == "f"
    assert arguments == (body if expected is None else expected)  # too deep: left verbatim
    if expected is None:
        return  # the PR checks the deep case non-streaming only (and it is 40k characters)
    _, streamed, _ = _stream(text, tools)
    assert streamed == [("f", arguments)]


# --- the PR's cases: streaming agrees with non-streaming --------------------------------------

STREAM_TABLE = [
    "plain text no tools",
    '{"name": "get_weather", "parameters": {"city": "SF"}}',
    '<|python_tag|>{"name": "f", "arguments": {"x": 1}}',
    '{"name": "a", "parameters": {"q": "t"}}; {"name": "b", "parameters": {}}',
    '{"name": "a", "parameters": {}}\n{"name": "b", "parameters": {}}',
    '{"name": "a", "parameters": {}}{"name": "b", "parameters": {}}',
    '{"name": "run", "parameters": {"cmd": "echo a; echo b"}}',
    '{"parameters": {"x": 1}}',
    '{"name": "f"}',
    '{"name": "f", "parameters": [1, 2]}',
    '{"name": "f", "parameters": "text"}',
    '{"name": "f", "parameters": 42}',
    '{"name": "f", "arguments": "{\\"x\\": 1}"}',
    '<|python_tag|>print("hello")',
    'Here is JSON: {"a": 1} and more text after',
    "Sure: function f() { return 1; } and that is it",
    'The config is {"a": 1}; see the docs for details.',
    'Config {"parameters": {"a": 1}} used: {"name": "f", "parameters": {"b": 2}}',
    '{"parameters": {"name": "inner"}, "name": "outer"}',
    'Example: {"name": "John", "age": 30} then {"name": "f", "parameters": {}}',
    '{"name": "f", "id": 1}',
    '{"name": "f", "parameters": {invalid json}}',
    '{"name": "f", "parameters": {"x": "lo',
    '{"name": "f", "parameters": {"a": 1, "b": ',
    '{"name": "f"}{"name": "g", "parameters": {"a": 1}}',
    '<|python_tag|>{"name": "f", "arguments": {"s": "a; b"}}',
    '{"name": "esc", "parameters": {"t": "say \\"hi\\""}}',
    "plain text with {braces: not json} inside",
    'Let me check. {"name": "get_weather", "parameters": {"city": "SF"}}',
    '{"x": 1}; {"name": "save", "parameters": {"y": 2}}',
    '<|python_tag|>{"name": "a", "parameters": {"q": "t1"}}; {"name": "b", "parameters": {"n": 2}}',
    *[
        '{"name": "f", "parameters": ' + body + "}"
        for body in [
            '{"x": 1.5e-3}',
            '{"x": 0.e1}',
            '{"x": 1.e+2}',
            '{"x": 1.e-2}',
            '{"x": 0.}',
            '{"x": 1e}',
            '{"x": 01}',
            '{"x": .5}',
            '{"x": +1}',
            '{"x": -}',
            '{"x": "a\nb"}',
            '{"x": "a\rb"}',
            '{"x": "a\tb"}',
            '{"x": "a\x00b"}',
            '{"o": {"x": "a\nb"}, "y": 2}',
            '{"l": ["a\nb", "c"]}',
        ]
    ],
]
FULL = '{"name": "get_weather", "parameters": {"city": "SF", "n": 3}}'


@pytest.mark.parametrize("text", [*STREAM_TABLE, *(FULL[:cut] for cut in range(len(FULL) + 1))])
def test_streaming_matches_non_streaming(text: str) -> None:
    content, calls = _nonstream(text)
    streamed_content, streamed_calls, turn = _stream(text)
    # Non-streaming strips the content around calls; streaming cannot retract what it sent.
    assert streamed_content.rstrip() == (content or "").rstrip()
    assert streamed_calls == calls
    for _, arguments in streamed_calls:
        json.loads(arguments)
    assert turn.finish_reason == ("tool_calls" if calls else "stop")


@pytest.mark.parametrize(
    ("text", "content"),
    [
        # test_chunk_invariance_token_mode: content exactly as non-streaming
        ("plain text with {braces: not json} inside", "plain text with {braces: not json} inside"),
        ('{"name": "f", "parameters": "text"}', ""),
        # test_leading_ws_before_prose_json: whitespace around prose JSON survives
        ('\t{"a": 1}\t\n', '\t{"a": 1}\t\n'),
        (' {"a": 1} ok', ' {"a": 1} ok'),
        ("   ", "   "),
        # test_ws_before_real_call_dropped, test_special_tokens_auto_dropped
        ('  {"name": "f", "parameters": {}}', ""),
        ('{"name": "f", "parameters": {}}<|eot_id|>', ""),
        # test_leading_prose_is_content_alongside_call_in_both_modes (streaming keeps the space)
        ('Let me check. {"name": "get_weather", "parameters": {"city": "SF"}}', "Let me check. "),
        # test_prose_json_before_call_keeps_dense_indices: vLLM streams '{"x": 1};' here; this
        # emulation keeps the space before the call (compared after rstrip, as the PR does).
        ('{"x": 1}; {"name": "save", "parameters": {"y": 2}}', '{"x": 1}; '),
        # TestServingPathMarkerParity: the tag never reaches content
        ('<|python_tag|>{"name": "get_weather", "para', '{"name": "get_weather", "para'),
    ],
)
def test_streamed_content(text: str, content: str) -> None:
    assert _stream(text)[0] == content


def test_streamed_arguments_grow_as_they_are_generated() -> None:
    # TestArgumentsStreamIncrementally: a string-typed value streams before it closes.
    text = '{"name": "f", "parameters": {"body": "' + "x" * 200 + '"}}'
    turn = stream_auto(text, generation="next", tools=_tools({"body": STR}))
    pieces = [
        u["function"]["arguments"]
        for d in turn.deltas
        for u in d.get("tool_calls", [])
        if u.get("function", {}).get("arguments")
    ]
    assert json.loads("".join(pieces)) == {"body": "x" * 200}
    assert len(pieces) > 10 and max(map(len, pieces)) <= 16


def test_truncated_call_streams_valid_arguments_and_reports_length() -> None:
    content, calls, turn = _stream('{"name": "f", "parameters": {"x": "lo', finish="length")
    assert (content, calls, turn.finish_reason) == ("", [("f", '{"x": "lo"}')], "length")
    message, finish = server_message(
        '{"name": "f", "parameters": {"x": "lo', generation="next", engine_finish_reason="length"
    )
    assert finish == "tool_calls" and message["content"] is None  # as vLLM 0.32 non-streaming


# --- agent-level, over HTTP ------------------------------------------------------------------

ANSWER = "<answer>台北現在 23°C。</answer>"
CALL = '{"name": "get_weather", "parameters": {"location": "台北"}}'
EXAMPLE = (
    "<answer>To ask for the weather, a tool call looks like "
    '{"name": "get_weather", "parameters": {"location": "Paris"}} '
    "— tell me a city and I will look it up.</answer>"
)
CUT = '{"name": "get_weather", "parameters": {"location": "台北市信義'


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
@pytest.mark.parametrize(
    "text",
    [
        CALL,
        "讓我查一下天氣。" + CALL,
        "<step>Checking.</step>\n" + CALL + "\n<reflection>ok</reflection>",
    ],
    ids=["clean", "prose-then-call", "tags-around-call"],
)
async def test_agent_runs_the_call(
    make_agent: AgentFactory, weather_calls: list[dict[str, Any]], stream: bool, text: str
) -> None:
    with FakeVLLMServer([text, ANSWER], generation="next") as fake:
        async with make_agent(server=fake, stream=stream) as agent:
            result = await agent.arun("台北幾度？")
        fake.assert_complete()
    assert [(c.name, c.status) for c in result.tool_calls] == [("get_weather", "ok")]
    assert weather_calls == [{"location": "台北", "unit": "celsius"}]
    assert result.answer == "台北現在 23°C。"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_agent_server_sends_prose_and_call_together(
    make_agent: AgentFactory, stream: bool
) -> None:
    with FakeVLLMServer(["Let me check. " + CALL, ANSWER], generation="next") as fake:
        async with make_agent(server=fake, stream=stream) as agent:
            await agent.arun("台北幾度？")
    if not stream:
        # what the server sent for the first turn: content next to tool_calls
        message, _ = server_message("Let me check. " + CALL, generation="next")
        assert message["content"] == "Let me check." and len(message["tool_calls"]) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_agent_does_not_run_a_json_example_inside_an_answer(
    make_agent: AgentFactory, weather_calls: list[dict[str, Any]], stream: bool
) -> None:
    message, _ = server_message(EXAMPLE, generation="next")
    assert message["tool_calls"][0]["function"]["name"] == "get_weather"  # the server took it
    assert message["content"] == "<answer>To ask for the weather, a tool call looks like"

    def script(body: dict[str, Any]) -> str:  # the example first, then a plain answer
        return EXAMPLE if len(body["messages"]) <= 2 else "<answer>Tell me a city.</answer>"

    with FakeVLLMServer(script, generation="next") as fake:
        async with make_agent(server=fake, stream=stream) as agent:
            result = await agent.arun("How do I ask you for the weather?")
    assert weather_calls == []
    assert all(c.status != "ok" for c in result.tool_calls)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_agent_refuses_a_call_cut_at_max_tokens(
    make_agent: AgentFactory, weather_calls: list[dict[str, Any]], stream: bool
) -> None:
    events: list[Any] = []
    with FakeVLLMServer(
        [Reply(text=CUT, finish_reason="length"), ANSWER], generation="next"
    ) as fake:
        async with make_agent(server=fake, stream=stream) as agent:
            result = await agent.arun("台北幾度？", on_event=events.append)
    assert weather_calls == []
    (record,) = result.tool_calls
    assert record.name == "get_weather" and record.status == "rejected"
    assert [w.code for w in events if isinstance(w, RunWarning)] == ["cut_generation"]


def test_server_rejects_unknown_generation() -> None:
    with pytest.raises(Exception, match="next"):
        FakeVLLMServer(generation="later")  # type: ignore[arg-type]


# --- the corpus: safety under the next parser --------------------------------------------------

CASES = load_cases()
TOOL_SCHEMAS = load_tools()
TOOLS = ToolIndex(TOOL_SCHEMAS)
MAX_TOKENS = 2048

# Cases where foxagent's recovery runs a call the case does not expect under "next". (Prose
# that introduces a JSON example, sent as content next to the call, is now used to judge it:
# plain_text-006/007/011/012 and the example inside <answer> no longer run.)
_LOST = (
    "not fixable client-side: the next parser cuts the arguments back at the first lexical "
    "error (raw control character, bad escape, stray quote, Python literal, bare expression, "
    "or the end of a stream that stopped normally) and closes them into valid JSON; the "
    "message keeps no trace of the cut, so a call with lost data runs"
)
KNOWN_UNSAFE: dict[str, str] = {
    "reports_2026-014": (
        "recovery weakness: the call is the payload of an unknown built-in's .call(...); vLLM "
        "next returns 'wolfram_alpha.call(payload=' as content, recovery does not read it"
    ),
    "malformed-004": _LOST,
    "malformed-005": _LOST,
    "malformed-010": _LOST,
    "malformed-011": _LOST,
    "malformed-012": _LOST,
    "malformed-015": _LOST,
    "truncation-005": _LOST,
}


def _recover_next(case: dict[str, Any]) -> Any:
    engine = case["engine_finish_reason"] or "stop"
    message, finish = server_message(
        case["model_text"], generation="next", engine_finish_reason=engine, tools=TOOL_SCHEMAS
    )
    # FakeVLLMServer reports max_tokens as the completion tokens of a reply cut there.
    used = MAX_TOKENS if engine == "length" else None
    return recover_tool_calls(
        message, TOOLS, finish_reason=finish, completion_tokens=used, max_tokens=MAX_TOKENS
    )


def _calls(recovery: Any) -> list[dict[str, Any]]:
    return [{"name": c.name, "arguments": c.arguments} for c in recovery.calls]


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, marks=pytest.mark.xfail(strict=True, reason=KNOWN_UNSAFE[c["id"]]))
        if c["id"] in KNOWN_UNSAFE
        else c
        for c in CASES
    ],
    ids=[c["id"] for c in CASES],
)
def test_corpus_case_is_safe_under_next(case: dict[str, Any]) -> None:
    recovery = _recover_next(case)
    expected = case["expect"].get("calls", [])
    if case["must_not_run"]:
        assert _calls(recovery) == [], "must not run"
    unexpected = [call for call in _calls(recovery) if call not in expected]
    assert unexpected == [], f"runs calls the case does not expect: {unexpected}"


def test_corpus_report_under_next(capsys: pytest.CaptureFixture[str]) -> None:
    matched = 0
    for case in CASES:
        expected = case["expect"].get("calls", [])
        matched += _calls(_recover_next(case)) == expected
    with capsys.disabled():
        print(f"\nnext parser: {matched}/{len(CASES)} corpus cases give the expected calls")
    assert matched > 0
