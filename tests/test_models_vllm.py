"""VLLMModel pieces that need no server: stream assembly, error bodies, settings, reprs."""

from __future__ import annotations

import json
from typing import Any

import pytest

from foxagent import ModelHTTPError, ModelResponseError, ModelSettings
from foxagent._messages import TextDelta, ToolCallDelta
from foxagent.models._sse import StreamAssembler
from foxagent.models.vllm import VLLMModel, _http_error, _parse_completion


def sse(chunk: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n"


def delta(**fields: Any) -> dict[str, Any]:
    return {"model": "foxbrain", "choices": [{"index": 0, "delta": fields, "finish_reason": None}]}


def test_stream_assembles_vllm_tool_call_deltas_with_empty_fragments() -> None:
    assembler = StreamAssembler()
    lines = [
        sse(delta(role="assistant", content="")),
        sse(
            delta(
                tool_calls=[
                    {
                        "index": 0,
                        "id": "chatcmpl-tool-1",
                        "type": "function",
                        "function": {"name": "get_weather"},
                    }
                ]
            )
        ),
        sse(delta(tool_calls=[{"index": 0, "function": {"arguments": ""}}])),
        sse(delta(tool_calls=[{"index": 0, "function": {"arguments": '{"location": "台'}}])),
        sse(delta(tool_calls=[{"index": 0, "function": {"arguments": '北"}'}}])),
        sse(
            {
                "model": "foxbrain",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
            }
        ),
        sse(
            {
                "model": "foxbrain",
                "choices": [],
                "usage": {"prompt_tokens": 10, "completion_tokens": 7},
            }
        ),
        b"data: [DONE]\n",
    ]
    events = [event for line in lines for event in assembler.feed(line)]
    assert [type(e) for e in events] == [ToolCallDelta] * 4
    assert events[0] == ToolCallDelta(
        index=0, id="chatcmpl-tool-1", name="get_weather", arguments=""
    )
    response = assembler.response()
    assert response.message["content"] is None
    assert response.message["tool_calls"] == [
        {
            "id": "chatcmpl-tool-1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"location": "台北"}'},
        }
    ]
    assert response.finish_reason == "tool_calls"
    assert (response.usage.prompt_tokens, response.usage.completion_tokens) == (10, 7)


def test_stream_text_deltas_and_keepalive_lines() -> None:
    assembler = StreamAssembler()
    events = []
    for line in [
        b": keep-alive\n",
        b"\n",
        sse(delta(content="<count>1")),
        sse(delta(content="</count>")),
    ]:
        events.extend(assembler.feed(line))
    assert events == [TextDelta(text="<count>1"), TextDelta(text="</count>")]
    assert assembler.response().message["content"] == "<count>1</count>"


def test_bad_stream_chunk_is_a_response_error() -> None:
    with pytest.raises(ModelResponseError, match="bad stream chunk"):
        StreamAssembler().feed(b"data: {not json\n")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            '{"object": "error", "message": "maximum context length", "code": 400}',
            "maximum context length",
        ),
        ('{"error": {"message": "Unauthorized"}}', "Unauthorized"),
        ('{"error": "Unauthorized"}', "Unauthorized"),
        ("<html>bad gateway</html>", "<html>bad gateway</html>"),
    ],
)
def test_error_bodies_are_read(body: str, message: str) -> None:
    error = _http_error(400, body, None)
    assert isinstance(error, ModelHTTPError)
    assert error.body == message
    assert _http_error(429, body, "2").retry_after == 2.0
    assert _http_error(429, body, "Wed, 21 Oct 2015 07:28:00 GMT").retry_after is None


@pytest.mark.parametrize("data", [{}, {"choices": []}, {"choices": [{"message": "x"}]}, []])
def test_not_a_completion(data: Any) -> None:
    with pytest.raises(ModelResponseError):
        _parse_completion(data)


def test_settings_fields_follow_the_guide() -> None:
    fields = ModelSettings().request_fields()
    assert fields == {
        "temperature": 0.5,
        "max_tokens": 2048,
        "stop": ["<|eot_id|>", "<|end_of_text|>", "<|end_header_id|>", "<|eom_id|>"],
        "seed": 42,
    }
    extra = ModelSettings(seed=None, extra_body={"repetition_penalty": 1.1}).request_fields()
    assert "seed" not in extra and extra["repetition_penalty"] == 1.1


def test_environment_defaults_and_secret_free_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FOXAGENT_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_BASE_URL", "http://10.0.0.5:8883/v1/")
    monkeypatch.setenv("FOXAGENT_API_KEY", "sk-very-secret")
    model = VLLMModel()
    assert model.base_url == "http://10.0.0.5:8883/v1"
    assert "sk-very-secret" not in repr(model)
    assert model._headers()["Authorization"] == "Bearer sk-very-secret"
