"""The hot path's shortcuts change nothing but speed (issue 18).

Request bodies: the spliced encoding equals one whole ``json.dumps`` of the same request, byte for
byte (and the JSON the old encoder sent). Replies: orjson reads what the standard library read.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from foxagent import ModelSettings
from foxagent._json_text import compact_json, loads_json, utf8_json
from foxagent._prompts import DEFAULT_SYSTEM_PROMPT
from foxagent.models.vllm import VLLMModel

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "天氣。",
            "parameters": {
                "type": "object",
                "properties": {"location": {"type": "string"}},
                "required": ["location"],
            },
        },
    }
]
CALL_TURN = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {
            "id": "chatcmpl-tool-1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "台北"}'},
        }
    ],
}
TRANSCRIPTS: list[list[dict[str, Any]]] = [
    [],
    [{"role": "user", "content": "台北現在幾度？"}],
    [{"role": "system", "content": DEFAULT_SYSTEM_PROMPT}, {"role": "user", "content": "hi"}],
    [
        {"role": "system", "content": DEFAULT_SYSTEM_PROMPT},
        {"role": "user", "content": "台北現在幾度？"},
        CALL_TURN,
        {"role": "tool", "tool_call_id": "chatcmpl-tool-1", "name": "get_weather", "content": "23"},
    ],
    [{"content": DEFAULT_SYSTEM_PROMPT, "role": "system"}, {"role": "user", "content": "x"}],
    [{"role": "system", "content": "short"}, {"role": "user", "content": '\x00\x1f\u2028 \\ "'}],
    [{"role": "user", "content": "broken \ud800 text"}],
    [{"role": "user", "content": "big", "n": 2**70, "f": [1e-7, 0.1, 1e16]}],
]
SETTINGS = [
    ModelSettings(),
    ModelSettings(tool_choice="none", strict_tools=True),
    ModelSettings(temperature=None, seed=None, stop=(), extra_body={"top_k": 5, "logprobs": False}),
    ModelSettings(tool_choice={"type": "function", "function": {"name": "get_weather"}}),
    ModelSettings(extra_body={"model": "override", "messages": "no"}),
]


def old_encoder(body: dict[str, Any]) -> bytes:
    return utf8_json(body)


@pytest.mark.parametrize("settings", SETTINGS)
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("tools", [TOOLS, []])
async def test_spliced_body_is_the_whole_body(
    settings: ModelSettings, stream: bool, tools: list[dict[str, Any]]
) -> None:
    model = VLLMModel("http://127.0.0.1:9/v1", model_name="foxbrain")
    for messages in TRANSCRIPTS:
        for _ in range(2):  # encoded fresh, then from the cached template and fragment
            payload = await model._payload(messages, tools, settings, stream=stream)
            body = await model._body(messages, tools, settings, stream=stream)
            whole = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
            try:
                assert payload == whole.encode()
            except UnicodeEncodeError:  # a lone surrogate: written with escapes instead
                assert json.loads(payload) == body
            assert json.loads(payload) == json.loads(old_encoder(body))


async def test_a_new_tools_list_or_settings_is_not_served_stale() -> None:
    model = VLLMModel("http://127.0.0.1:9/v1", model_name="foxbrain")
    messages = [{"role": "user", "content": "hi"}]
    first = await model._payload(messages, TOOLS, ModelSettings(), stream=False)
    other = [{**TOOLS[0], "function": {**TOOLS[0]["function"], "name": "other"}}]
    second = await model._payload(messages, other, ModelSettings(), stream=False)
    third = await model._payload(messages, other, ModelSettings(seed=7), stream=False)
    assert b'"get_weather"' in first and b'"other"' in second and b'"seed":7' in third


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a": 1, "b": [1.5, "\\u53f0", null, true]}',
        b'"\\ud800 lone"',
        b"[NaN, Infinity]",
        '{"台": "北"}',
    ],
)
def test_loads_json_reads_what_the_standard_library_reads(raw: bytes | str) -> None:
    expected = json.loads(raw)
    got = loads_json(raw)
    assert json.dumps(got) == json.dumps(expected)


@pytest.mark.parametrize("raw", [b"", b"{", b"<html>", b'{"a": 1} x'])
def test_loads_json_refuses_what_is_not_json(raw: bytes) -> None:
    with pytest.raises(ValueError):
        loads_json(raw)


def test_compact_json_falls_back_for_what_orjson_refuses() -> None:
    assert compact_json({1: "a"}) == b'{"1":"a"}'
    assert json.loads(compact_json("\udc00")) == "\udc00"
    with pytest.raises(TypeError):
        compact_json(object())


def test_trailing_special_tokens_are_cut_as_the_pattern_cuts_them() -> None:
    import random

    from foxagent.models._generated import _TRAILING_SPECIAL, _without_trailing_special

    rng = random.Random(7)
    parts = ["a", " ", "\n", "\u3000", "\x1c", "<|eot_id|>", "<|eom_id|>", "<|end_of_text|>"]
    parts += ["<|im_end|>", "<|endoftext|>", "<|other|>", "|>", "<|", "eot_id|>"]
    for _ in range(20_000):
        text = "".join(rng.choice(parts) for _ in range(rng.randint(0, 8)))
        assert _without_trailing_special(text) == _TRAILING_SPECIAL.sub("", text), repr(text)
