"""FakeVLLMServer over real HTTP on 127.0.0.1, with httpx and the official ``openai`` SDK.

The streaming emulation (``foxagent.testing._vllm_llama3_stream``) is pinned here too: its partial JSON
completion and state machine were checked, outside this suite, against partial-json-parser
0.2.1.1.post7 plus a transcription of vLLM's parser on ~300k fuzzed prefixes.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import openai
import pytest

from foxagent.testing import FakeVLLMServer, Reply
from foxagent.testing._vllm_llama3_stream import (
    partial_json_loads,
    split_pieces,
    stream_auto,
    stream_named,
    stream_required,
)

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather now.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    },
    {"type": "function", "function": {"name": "calculator", "parameters": {"type": "object"}}},
]
ASK = [{"role": "user", "content": "台北天氣？"}]
CALL = '{"name": "get_weather", "parameters": {"city": "台北", "days": 3}}'
ARGS = {"city": "台北", "days": 3}
TOOL_ID = re.compile(r"chatcmpl-tool-[0-9a-f]{16}")  # vLLM 0.32.0: 64 random bits
OLD_TOOL_ID = re.compile(r"chatcmpl-tool-[0-9a-f]{32}")  # up to v0.11: a whole uuid4
FOXBRAIN = "<count>1</count><step>查天氣</step><step>" + CALL + "</step>"


@pytest.fixture
async def client(fake_server: FakeVLLMServer) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(
        base_url=fake_server.base_url, api_key="unused", max_retries=0
    ) as sdk:
        yield sdk


def post(server: FakeVLLMServer, **body: Any) -> httpx.Response:
    body.setdefault("messages", ASK)
    return httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=5)


def sse(server: FakeVLLMServer, **body: Any) -> list[dict[str, Any]]:
    """The chunks of a streamed answer; checks the framing and the final ``[DONE]``."""
    text = post(server, stream=True, **body).text
    events = text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    return [json.loads(event.removeprefix("data: ")) for event in events[:-2]]


def assemble(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """Fold deltas the way OpenAI clients do: content appended, calls merged by index."""
    content, calls, finish = "", {}, None
    for chunk in chunks:
        for choice in chunk["choices"]:
            delta = choice["delta"]
            content += delta.get("content") or ""
            for part in delta.get("tool_calls") or []:
                call = calls.setdefault(part["index"], {"name": "", "arguments": ""})
                call["id"] = part.get("id") or call.get("id")
                call["name"] += part.get("function", {}).get("name") or ""
                call["arguments"] += part.get("function", {}).get("arguments") or ""
            finish = choice["finish_reason"] or finish
    return {"content": content, "calls": [calls[i] for i in sorted(calls)], "finish": finish}


# --- lifecycle, script, models ------------------------------------------------------------


def test_models_list_is_vllms_shape(fake_server: FakeVLLMServer) -> None:
    data = httpx.get(f"{fake_server.base_url}/models").json()
    assert data["object"] == "list"
    (card,) = data["data"]
    assert {k: card[k] for k in ("id", "object", "owned_by", "root", "parent")} == {
        "id": "foxbrain",
        "object": "model",
        "owned_by": "vllm",
        "root": "foxbrain",
        "parent": None,
    }
    assert card["max_model_len"] == 32768
    assert card["permission"][0]["object"] == "model_permission"


async def test_models_list_through_the_sdk(client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert [model.id for model in models.data] == ["foxbrain"]


def test_start_stop_from_sync_code_and_restart() -> None:
    server = FakeVLLMServer(["a", "b"]).start()
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/v1", server.base_url)
        assert post(server).json()["choices"][0]["message"]["content"] == "a"
    finally:
        server.stop()
    server.stop()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url
    with server:
        assert post(server).json()["choices"][0]["message"]["content"] == "b"
    assert len(server.requests) == 2


async def test_async_context_manager() -> None:
    async with FakeVLLMServer(["hi"]) as server, httpx.AsyncClient() as http:
        body = {"messages": ASK}
        response = await http.post(f"{server.base_url}/chat/completions", json=body)
    assert response.json()["choices"][0]["message"]["content"] == "hi"
    assert server.requests == [body]


def test_callable_script_answers_each_request() -> None:
    def model(body: dict[str, Any]) -> Reply | str:
        if body["messages"][-1]["role"] == "tool":
            return "<answer>23°C</answer>"
        return Reply(text=CALL, completion_tokens=7)

    with FakeVLLMServer(model) as server:
        first = post(server, tools=TOOLS).json()
        assert first["usage"]["completion_tokens"] == 7
        call = first["choices"][0]["message"]["tool_calls"][0]
        history = [*ASK, first["choices"][0]["message"]]
        history.append({"role": "tool", "tool_call_id": call["id"], "content": "23"})
        second = post(server, tools=TOOLS, messages=history).json()
        assert second["choices"][0]["message"]["content"] == "<answer>23°C</answer>"
        server.assert_complete()  # a function never runs out
        with pytest.raises(TypeError, match="function"):
            server.add("x")


def test_script_function_errors_are_500s_naming_them() -> None:
    def broken(body: dict[str, Any]) -> str:
        raise KeyError("tools")

    with FakeVLLMServer(broken) as server:
        response = post(server)
    assert response.status_code == 500
    assert "script raised KeyError" in response.json()["error"]["message"]


def test_exhausted_script_is_a_clear_500(fake_server: FakeVLLMServer) -> None:
    fake_server.add("only one")
    assert post(fake_server).status_code == 200
    response = post(fake_server)
    assert response.status_code == 500
    error = response.json()["error"]
    assert error["type"] == "InternalServerError" and error["code"] == 500
    assert "script exhausted" in error["message"] and "server.add" in error["message"]


def test_assert_complete_names_what_is_left(fake_server: FakeVLLMServer) -> None:
    fake_server.add("used", "<answer>never asked for</answer>", Reply(status=503))
    post(fake_server)
    with pytest.raises(AssertionError, match=r"2 scripted .*never asked for.*status=503"):
        fake_server.assert_complete()


# --- non-streaming answers ------------------------------------------------------------------


def test_clean_call_has_vllms_full_shape(fake_server: FakeVLLMServer) -> None:
    fake_server.add(CALL)
    data = post(fake_server, tools=TOOLS, model="foxbrain").json()
    assert re.fullmatch(r"chatcmpl-[0-9a-f]{16}", data["id"])
    assert re.fullmatch(r"vllm-0\.32\.0-[0-9a-f]{8}", data["system_fingerprint"])
    assert data["object"] == "chat.completion" and data["model"] == "foxbrain"
    assert set(data) >= {"created", "usage", "prompt_logprobs", "kv_transfer_params"}
    assert set(data) >= {"prompt_token_ids", "prompt_text", "ec_transfer_params", "metrics"}
    (choice,) = data["choices"]
    assert choice["finish_reason"] == "tool_calls" and choice["stop_reason"] is None
    assert choice["token_ids"] is None and choice["routed_experts"] is None
    message = choice["message"]
    assert message["content"] is None and message["reasoning"] is None
    assert "reasoning_content" not in message  # renamed by vLLM 0.32.0
    (call,) = message["tool_calls"]
    assert TOOL_ID.fullmatch(call["id"]) and call["type"] == "function"
    assert call["function"] == {
        "name": "get_weather",
        "arguments": json.dumps(ARGS, ensure_ascii=False),
    }
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["prompt_tokens"] > 10 and usage["prompt_tokens_details"] is None


async def test_clean_call_through_the_sdk(
    fake_server: FakeVLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_server.add(CALL)
    completion = await client.chat.completions.create(
        model="foxbrain",
        messages=ASK,
        tools=TOOLS,
    )
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == ARGS
    assert fake_server.requests[0]["tools"] == TOOLS


def test_without_tools_the_text_is_content(fake_server: FakeVLLMServer) -> None:
    fake_server.add(Reply(text=CALL, finish_reason="length"))
    message = post(fake_server).json()["choices"][0]
    assert message["message"]["content"] == CALL
    assert "tool_calls" not in message["message"]  # vLLM 0.32.0 leaves an empty list out
    assert message["finish_reason"] == "length"
    with FakeVLLMServer([CALL], generation="regex") as old:
        assert post(old).json()["choices"][0]["message"]["tool_calls"] == []


@pytest.mark.parametrize(
    ("text", "brace", "regex", "prefix"),
    [
        # A stray "{" after the call: brace scans it and fails; prefix skips 2 characters.
        (CALL + " {", False, True, True),
        # Set notation after the call: only the regex generation still finds it.
        (CALL + " 集合 {1,2}", False, True, False),
        # A clean call inside FoxBrain's tags: prefix needs the text to start with "{".
        (FOXBRAIN, True, True, False),
    ],
)
def test_generations_disagree_like_vllm_versions(
    text: str, brace: bool, regex: bool, prefix: bool
) -> None:
    for generation, found in (("brace", brace), ("regex", regex), ("prefix", prefix)):
        with FakeVLLMServer([text], generation=generation) as server:
            message = post(server, tools=TOOLS).json()["choices"][0]["message"]
        if found:
            assert message["content"] is None, generation
            assert json.loads(message["tool_calls"][0]["function"]["arguments"]) == ARGS
        else:
            assert (message["content"], message.get("tool_calls", [])) == (text, []), generation


def test_foxbrain_tagged_text_with_a_stray_brace_stays_content(fake_server: FakeVLLMServer) -> None:
    text = "<count>2</count><step>集合 {1,2}</step><step>" + CALL + "</step>"
    fake_server.add(text)
    choice = post(fake_server, tools=TOOLS).json()["choices"][0]
    assert choice["message"]["content"] == text and "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"


def test_non_ascii_arguments_escaped_only_by_the_old_generation() -> None:
    for generation, raw in (("brace", '"台北"'), ("prefix", '"\\u53f0\\u5317"')):
        with FakeVLLMServer([CALL], generation=generation) as server:
            response = post(server, tools=TOOLS)
        arguments = response.json()["choices"][0]["message"]["tool_calls"][0]["function"]
        assert raw in arguments["arguments"]
        assert json.loads(arguments["arguments"]) == ARGS
        if generation == "brace":
            assert "台北" in response.text  # the body is UTF-8, not ASCII-escaped


def test_tool_choice_none_returns_the_raw_text(fake_server: FakeVLLMServer) -> None:
    fake_server.add(CALL)
    choice = post(fake_server, tools=TOOLS, tool_choice="none").json()["choices"][0]
    assert choice["message"]["content"] == CALL and choice["finish_reason"] == "stop"


REQUIRED_CALLS = [
    {"name": "get_weather", "arguments": '{"city": "台北"}'},
    {"name": "calculator", "arguments": '{"expression": "6*7"}'},
]


def test_tool_choice_required_parses_llama_objects_like_auto(fake_server: FakeVLLMServer) -> None:
    # vLLM 0.32.0 constrains required to the llama format with a structural tag and parses the
    # output with llama3_json; text that holds no call comes back as content, finish tool_calls.
    fake_server.add(
        '{"name": "get_weather", "parameters": {"city": "台北"}}\n'
        '{"name": "calculator", "parameters": {"expression": "6*7"}}',
        "no call here",
    )
    choice = post(fake_server, tools=TOOLS, tool_choice="required").json()["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] == ""
    assert [c["function"] for c in choice["message"]["tool_calls"]] == REQUIRED_CALLS
    choice = post(fake_server, tools=TOOLS, tool_choice="required").json()["choices"][0]
    assert choice["message"]["content"] == "no call here" and "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "tool_calls"


def test_tool_choice_required_up_to_v011_turns_the_constrained_list_into_calls() -> None:
    script = [
        '[{"name": "get_weather", "parameters": {"city": "台北"}}, '
        '{"name": "calculator", "parameters": {"expression": "6*7"}}]',
        "not a list",
    ]
    with FakeVLLMServer(script, generation="regex") as old:
        choice = post(old, tools=TOOLS, tool_choice="required").json()["choices"][0]
        assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] == ""
        assert [c["function"] for c in choice["message"]["tool_calls"]] == REQUIRED_CALLS
        assert OLD_TOOL_ID.fullmatch(choice["message"]["tool_calls"][0]["id"])
        assert post(old, tools=TOOLS, tool_choice="required").status_code == 400


@pytest.mark.parametrize(
    ("generation", "text"),
    [
        # vLLM 0.32.0: constrained to {"name": ..., "parameters": ...}, parsed by llama3_json.
        ("brace", '{"name": "calculator", "parameters": {"expression": "6*7"}}'),
        # Up to v0.11: constrained to the arguments alone, taken as they are.
        ("regex", '{"expression": "6*7"}'),
    ],
)
async def test_named_tool_choice_gives_one_call_and_stops(generation: str, text: str) -> None:
    with FakeVLLMServer([text], generation=generation) as server:  # type: ignore[arg-type]
        client = openai.AsyncOpenAI(base_url=server.base_url, api_key="unused")
        completion = await client.chat.completions.create(
            model="foxbrain",
            messages=ASK,
            tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "calculator"}},
        )
        await client.close()
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.content == ""
    call = choice.message.tool_calls[0]
    assert (call.function.name, call.function.arguments) == ("calculator", '{"expression": "6*7"}')


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"tool_choice": "auto"}, "`tools` must be set"),
        ({"tools": TOOLS, "tool_choice": "sometimes"}, "Invalid value for `tool_choice`"),
        (
            {"tools": TOOLS, "tool_choice": {"type": "function", "function": {"name": "nope"}}},
            "does not match any of the specified `tools`",
        ),
        ({"stream_options": {"include_usage": True}}, "only be defined when stream is true"),
    ],
)
def test_request_validation_like_vllms_validators(
    fake_server: FakeVLLMServer, body: dict[str, Any], message: str
) -> None:
    response = post(fake_server, **body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert message in error["message"] and error["type"] == "BadRequestError"


def test_unknown_model_is_a_404(fake_server: FakeVLLMServer) -> None:
    response = post(fake_server, model="gpt-4o")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "The model `gpt-4o` does not exist."


# --- auth and history validation -----------------------------------------------------------


async def test_api_key_is_required_on_v1() -> None:
    async with FakeVLLMServer(["ok"], api_key="sk-secret") as server:
        async with httpx.AsyncClient() as http:
            missing = await http.get(f"{server.base_url}/models")
            health = await http.get(server.base_url.removesuffix("/v1") + "/health")
        assert (missing.status_code, missing.json()) == (401, {"error": "Unauthorized"})
        assert health.status_code == 200  # only /v1 needs the key
        async with openai.AsyncOpenAI(
            base_url=server.base_url, api_key="sk-wrong", max_retries=0
        ) as wrong:
            with pytest.raises(openai.AuthenticationError):
                await wrong.chat.completions.create(model="foxbrain", messages=ASK)
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="sk-secret") as right:
            completion = await right.chat.completions.create(model="foxbrain", messages=ASK)
        assert completion.choices[0].message.content == "ok"
        assert len(server.requests) == 1  # refused requests are not recorded


def assistant_turn(*arguments: str) -> dict[str, Any]:
    calls = [
        {"id": f"call-{i}", "type": "function", "function": {"name": "get_weather", "arguments": a}}
        for i, a in enumerate(arguments)
    ]
    return {"role": "assistant", "content": None, "tool_calls": calls}


@pytest.mark.parametrize(
    ("history", "message"),
    [
        (
            [*ASK, assistant_turn('{"city": "台北"}', '{"city": "新竹"}')],
            "This model only supports single tool-calls at once!",
        ),
        ([*ASK, assistant_turn('{"city": 台北}')], "Expecting value"),
        ([{"role": "system", "content": "你是助理"}], "no first user message"),
        ([{"role": "assistant", "content": "hi"}], "no user message"),
        ([], "no first user message"),
    ],
)
async def test_history_the_template_refuses_is_a_400(
    fake_server: FakeVLLMServer,
    client: openai.AsyncOpenAI,
    history: list[dict[str, Any]],
    message: str,
) -> None:
    fake_server.add("never used")
    with pytest.raises(openai.BadRequestError, match=re.escape(message)):
        await client.chat.completions.create(
            model="foxbrain",
            messages=history,
            tools=TOOLS,
        )
    assert fake_server.requests[0]["messages"] == history


def test_missing_messages_and_accepted_histories(fake_server: FakeVLLMServer) -> None:
    response = httpx.post(f"{fake_server.base_url}/chat/completions", json={"model": "foxbrain"})
    assert response.status_code == 400 and "messages" in response.json()["error"]["message"]
    fake_server.add("a", "b")
    empty_calls = [*ASK, {"role": "assistant", "content": "hi", "tool_calls": []}]
    assert post(fake_server, tools=TOOLS, messages=empty_calls).status_code == 200
    one_call = [*ASK, assistant_turn('{"city": "台北"}'), {"role": "tool", "content": "23"}]
    assert post(fake_server, tools=TOOLS, messages=one_call).status_code == 200
    fake_server.assert_complete()


def test_prefix_generation_sends_the_old_flat_error_body() -> None:
    with FakeVLLMServer(generation="prefix") as server:
        response = post(server, messages=[*ASK, assistant_turn("{", "{}")])
    assert response.json() == {
        "object": "error",
        "message": "Expecting property name enclosed in double quotes: line 1 column 2 (char 1)",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }


# --- streaming --------------------------------------------------------------------------------


def test_streamed_clean_call_reassembles_to_the_non_streamed_one(
    fake_server: FakeVLLMServer,
) -> None:
    fake_server.add(CALL, CALL)
    whole = post(fake_server, tools=TOOLS).json()["choices"][0]
    chunks = sse(fake_server, tools=TOOLS)
    assert {chunk["object"] for chunk in chunks} == {"chat.completion.chunk"}
    assert len({chunk["id"] for chunk in chunks}) == 1
    first = chunks[0]["choices"][0]
    assert first == {
        "index": 0,
        "delta": {"role": "assistant", "content": ""},
        "logprobs": None,
        "finish_reason": None,
    }
    name_delta = chunks[1]["choices"][0]["delta"]["tool_calls"][0]
    assert set(name_delta) == {"id", "type", "index", "function"}
    assert TOOL_ID.fullmatch(name_delta["id"]) and name_delta["function"] == {"name": "get_weather"}
    names = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    assert sum("name" in tc["function"] for tc in names) == 1  # the name is sent once
    assert chunks[-1]["choices"][0]["stop_reason"] is None
    folded = assemble(chunks)
    (call,) = folded["calls"]
    expected = whole["message"]["tool_calls"][0]["function"]
    assert (call["name"], call["arguments"]) == (expected["name"], expected["arguments"])
    assert (folded["content"], folded["finish"]) == ("", whole["finish_reason"])


async def test_streamed_call_through_the_sdk(
    fake_server: FakeVLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_server.add(CALL)
    stream = await client.chat.completions.create(
        model="foxbrain",
        messages=ASK,
        tools=TOOLS,
        stream=True,
    )
    arguments, names, finish = "", [], None
    async for chunk in stream:
        for choice in chunk.choices:
            for part in choice.delta.tool_calls or []:
                names += [part.function.name] if part.function and part.function.name else []
                arguments += (part.function.arguments or "") if part.function else ""
            finish = choice.finish_reason or finish
    assert names == ["get_weather"] and finish == "tool_calls"
    assert json.loads(arguments) == ARGS


def test_prose_first_streams_content_only_even_with_a_call(fake_server: FakeVLLMServer) -> None:
    fake_server.add(FOXBRAIN)
    chunks = sse(fake_server, tools=TOOLS)
    folded = assemble(chunks)
    assert folded == {"content": FOXBRAIN, "calls": [], "finish": "stop"}
    pieces = [c["choices"][0]["delta"]["content"] for c in chunks[1:-1]]
    assert pieces == split_pieces(FOXBRAIN)  # one chunk per token-like piece
    assert chunks[-1]["choices"][0]["delta"] == {"content": ""}  # the EOS step, through the parser


CUT = '{"name": "get_weather", "parameters": {"city": "台北市信義'


def test_cut_call_is_flushed_as_valid_json_and_reports_length(fake_server: FakeVLLMServer) -> None:
    # vLLM 0.32.0: the last delta carries an argument fragment, so the auto-closed rest is
    # appended (valid JSON with a cut value), but the finish reason stays "length".
    fake_server.add(
        Reply(text=CUT, finish_reason="length"), Reply(text=CUT, finish_reason="length")
    )
    folded = assemble(sse(fake_server, tools=TOOLS))
    assert folded["finish"] == "length"
    assert folded["calls"][0]["name"] == "get_weather"
    assert json.loads(folded["calls"][0]["arguments"]) == {"city": "台北市信義"}
    # The non-streaming parser cannot decode it: content, with the engine's reason.
    choice = post(fake_server, tools=TOOLS).json()["choices"][0]
    assert choice["message"]["content"] == CUT and choice["finish_reason"] == "length"


def test_cut_call_up_to_v011_is_flushed_as_valid_json_with_tool_calls() -> None:
    with FakeVLLMServer([Reply(text=CUT, finish_reason="length")], generation="regex") as old:
        folded = assemble(sse(old, tools=TOOLS))
    assert folded["finish"] == "tool_calls"
    assert json.loads(folded["calls"][0]["arguments"]) == {"city": "台北市信義"}


def test_include_usage_adds_a_final_usage_chunk(fake_server: FakeVLLMServer) -> None:
    fake_server.add(Reply(text="你好", completion_tokens=3), "你好")
    chunks = sse(fake_server, stream_options={"include_usage": True})
    assert chunks[-1]["choices"] == []
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == 3 and set(usage) == {
        "prompt_tokens",
        "total_tokens",
        "completion_tokens",
    }
    assert all("usage" not in chunk for chunk in chunks[:-1])
    assert "usage" not in sse(fake_server)[-1]


def test_streamed_tool_choice_modes(fake_server: FakeVLLMServer) -> None:
    named_call = '{"name": "calculator", "parameters": {"expression": "6*7"}}'
    fake_server.add(named_call, '{"name": "calculator", "parameters": {"x": 1}}', CALL)
    named = {"type": "function", "function": {"name": "calculator"}}
    folded = assemble(sse(fake_server, tools=TOOLS, tool_choice=named))
    assert folded["calls"][0]["arguments"] == '{"expression": "6*7"}'
    assert folded["finish"] == "stop"
    folded = assemble(sse(fake_server, tools=TOOLS, tool_choice="required"))
    assert json.loads(folded["calls"][0]["arguments"]) == {"x": 1}
    assert folded["finish"] == "tool_calls"
    assert assemble(sse(fake_server, tools=TOOLS, tool_choice="none"))["content"] == CALL


def test_streamed_tool_choice_modes_up_to_v011() -> None:
    script = ['{"expression": "6*7"}', '[{"name": "calculator", "parameters": {"x": 1}}]']
    with FakeVLLMServer(script, generation="regex") as old:
        named = {"type": "function", "function": {"name": "calculator"}}
        folded = assemble(sse(old, tools=TOOLS, tool_choice=named))
        assert folded["calls"][0]["arguments"] == '{"expression": "6*7"}'
        assert folded["finish"] == "stop"
        folded = assemble(sse(old, tools=TOOLS, tool_choice="required"))
        assert json.loads(folded["calls"][0]["arguments"]) == {"x": 1}
        assert folded["finish"] == "tool_calls"


# --- faults -----------------------------------------------------------------------------------


async def test_scripted_status_is_a_vllm_error(
    fake_server: FakeVLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_server.add(Reply(status=500, text="engine overloaded"), Reply(status=503))
    with pytest.raises(openai.InternalServerError, match="engine overloaded") as caught:
        await client.chat.completions.create(model="foxbrain", messages=ASK)
    assert caught.value.body == {
        "message": "engine overloaded",
        "type": "InternalServerError",
        "param": None,
        "code": 500,
    }
    response = post(fake_server)
    assert response.status_code == 503
    assert response.json()["error"]["type"] == "ServiceUnavailableError"


async def test_delay_lets_the_client_timeout_fire(
    fake_server: FakeVLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_server.add(Reply(delay=5.0, text="late"), Reply(delay=0.05, text="on time"))
    started = time.monotonic()
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(model="foxbrain", messages=ASK, timeout=0.2)
    assert time.monotonic() - started < 2
    completion = await client.chat.completions.create(model="foxbrain", messages=ASK)
    assert completion.choices[0].message.content == "on time"


async def test_drop_closes_the_connection(
    fake_server: FakeVLLMServer, client: openai.AsyncOpenAI
) -> None:
    fake_server.add(Reply(drop=True), Reply(text=CALL, drop=True))
    with pytest.raises(openai.APIConnectionError):
        await client.chat.completions.create(model="foxbrain", messages=ASK)
    received: list[str] = []
    body = {"messages": ASK, "tools": TOOLS, "stream": True}
    with pytest.raises(httpx.RemoteProtocolError, match="incomplete"):
        with httpx.stream(
            "POST", f"{fake_server.base_url}/chat/completions", json=body
        ) as response:
            received.extend(response.iter_lines())
    assert response.status_code == 200
    assert received[0].startswith("data: {") and "data: [DONE]" not in received


def test_malformed_body(fake_server: FakeVLLMServer) -> None:
    fake_server.add(Reply(body='{"choices": [}'))
    response = post(fake_server)
    assert response.status_code == 200 and response.text == '{"choices": [}'
    with pytest.raises(json.JSONDecodeError):
        response.json()


def test_many_requests_quickly() -> None:
    with FakeVLLMServer(lambda body: CALL) as server, httpx.Client() as http:
        started = time.monotonic()
        for _ in range(200):
            body = {"messages": ASK, "tools": TOOLS}
            http.post(f"{server.base_url}/chat/completions", json=body).raise_for_status()
        assert time.monotonic() - started < 5
        assert len(server.requests) == 200


# --- the streaming emulation itself -------------------------------------------------------------


def test_split_pieces_is_deterministic_and_lossless() -> None:
    text = '<|python_tag|>{"name": "f"}  台北 abcdefghij\n'
    pieces = split_pieces(text)
    assert "".join(pieces) == text
    assert pieces[:3] == ["<|python_tag|>", '{"na', 'me":']
    assert pieces[3:] == [' "f"}', "  台", "北", " abcd", "efgh", "ij", "\n"]


def test_partial_json_loads_like_vllms_helper() -> None:
    cut = '{"name": "f", "parameters": {"city": "Tai'
    expected = {"name": "f", "parameters": {"city": "Tai"}}
    assert partial_json_loads(cut) == (expected, len(cut))
    # Until the name is sent, cut strings are dropped together with their key.
    assert partial_json_loads(cut, False) == ({"name": "f", "parameters": {}}, len(cut))
    assert partial_json_loads('{"name": "get_wea', False) == ({}, 17)
    # A complete object followed by more: the end of the first one (raw_decode).
    assert partial_json_loads('{"a": 1}; {"b": "x') == ({"a": 1}, 8)
    assert partial_json_loads('{"a": "\\u53') == ({"a": ""}, 11)  # a cut escape is dropped
    with pytest.raises(ValueError):
        partial_json_loads("{3,5}")


def test_stream_emulation_quirks() -> None:
    # Two calls separated by "; ": both stream, each name once, arguments complete.
    two = CALL + '; {"name": "calculator", "parameters": {"expression": "6*7"}}'
    turn = stream_auto(two)
    folded = assemble([{"choices": [{"delta": d, "finish_reason": None}]} for d in turn.deltas])
    assert [c["name"] for c in folded["calls"]] == ["get_weather", "calculator"]
    assert [json.loads(c["arguments"]) for c in folded["calls"]] == [ARGS, {"expression": "6*7"}]
    # A JSON object that is not a call: nothing streamed. Up to v0.11 vLLM still reported
    # tool_calls; 0.32.0 needs a tool-call delta to have gone out.
    swallowed = stream_auto('{"city": "台北"}', generation="regex")
    assert swallowed.deltas == ({},) and swallowed.finish_reason == "tool_calls"
    swallowed = stream_auto('{"city": "台北"}')
    assert swallowed.deltas == ({},) and swallowed.finish_reason == "stop"
    # G1 streamed ASCII-escaped arguments and the final flush re-sent them unescaped (#17703).
    old = stream_auto(CALL, generation="prefix")
    sent = "".join(
        tc["function"].get("arguments", "") for d in old.deltas for tc in d.get("tool_calls", [])
    )
    assert sent == json.dumps(ARGS) + json.dumps(ARGS, ensure_ascii=False)
    # Named and required choices stream with a single id.
    assert stream_named("{}", "f").deltas[0]["tool_calls"][0]["function"] == {
        "name": "f",
        "arguments": "{}",
    }
    required = stream_required('[{"name": "f", "parameters": {}}]')
    ids = [tc.get("id") for d in required.deltas for tc in d.get("tool_calls", [])]
    assert len([i for i in ids if i]) == 1 and required.finish_reason == "tool_calls"


def test_plain_and_empty_replies_stream() -> None:
    with FakeVLLMServer(["", Reply(text="abc", finish_reason="length")]) as server:
        empty = sse(server)
        # Without tools vLLM 0.32.0 still runs the configured parser, which sends nothing for
        # the textless EOS step: the last chunk has an empty delta.
        assert [c["choices"][0]["delta"] for c in empty] == [
            {"role": "assistant", "content": ""},
            {},
        ]
        cut = sse(server)
        assert cut[-1]["choices"][0] == {
            "index": 0,
            "delta": {"content": "abc"},
            "logprobs": None,
            "finish_reason": "length",
            "stop_reason": None,
            "token_ids": None,
        }
    with FakeVLLMServer([""], generation="regex") as old:
        assert sse(old)[-1]["choices"][0]["delta"] == {"content": ""}


async def test_server_thread_survives_a_busy_caller_loop() -> None:
    # The server has its own loop: a caller blocking its loop cannot stall it.
    async with FakeVLLMServer(["x"]) as server:
        result = await asyncio.to_thread(post, server)
    assert result.json()["choices"][0]["message"]["content"] == "x"
