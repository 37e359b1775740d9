"""Model-server faults a service can live with (issue 14, finding 6), against real HTTP servers.

* A 200 whose body broke on the way (cut short, not JSON) is retried like a 5xx, with and
  without streaming; a well-formed JSON that is not a chat completion is not (the same request
  would get the same answer).
* A stalled server costs a read timeout (streams) or the attempt's timeout, retried within a
  total retry budget, instead of 300 s x 4 attempts.
* Replies are capped: a body, a stream and one stream line each have a size limit, and passing
  it is a ``ModelResponseError`` naming the limit, at once and without a retry.
* ``foxagent run --request-timeout`` reaches the model.

``FakeVLLMServer`` injects what it can (status, delay, raw body); the faults it cannot (a stream
that goes quiet after its headers or its first chunk, a body without a Content-Length) come from
small ``aiohttp.web`` apps in this file.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from foxagent import Agent, ModelHTTPError, ModelResponseError, ModelTimeoutError, UserError
from foxagent.cli import _main
from foxagent.cli._backend import Backend
from foxagent.cli._config import RunConfig
from foxagent.cli._console import LiveView
from foxagent.cli._exit import ExitCode
from foxagent.cli._run import _build_agent, run_command
from foxagent.events import ModelRetry, RunEvent, TextDelta
from foxagent.models.vllm import VLLMModel
from foxagent.testing import FakeVLLMServer, Reply

ANSWER = "<answer>ok</answer>"
MODES = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])

# A chat completion cut mid-string, and a stream whose first line is cut the same way: what a
# proxy or a dying worker leaves when it closes the connection cleanly mid-answer.
CUT_COMPLETION = (
    '{"id":"chatcmpl-cut","object":"chat.completion","created":1,"model":"foxbrain",'
    '"choices":[{"index":0,"message":{"role":"assistant","content":"<answer>12'
)
CUT_STREAM = (
    'data: {"id":"chatcmpl-cut","object":"chat.completion.chunk","created":1,'
    '"model":"foxbrain","choices":[{"index":0,"delta":{"role":"assistant","cont\n\n'
)
HTML = "<html><body><h1>502 Bad Gateway</h1></body></html>"


@pytest.fixture(autouse=True, params=["lean", "aiohttp"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every fault through both clients: the lean one and aiohttp (which carries streams, and
    served every request before); the promises are the backend's, whichever carries them."""
    if request.param == "aiohttp":
        monkeypatch.setattr("foxagent.models.vllm._lean_origin", lambda url: None)
    return str(request.param)


def model_for(base_url: str, **options: Any) -> VLLMModel:
    return VLLMModel(base_url, model_name="foxbrain", **{"backoff": 0.01, **options})


async def ask(model: VLLMModel, *, stream: bool, events: list[RunEvent] | None = None) -> str:
    async with Agent(model=model, system_prompt=None, stream=stream) as agent:
        result = await agent.arun("?", on_event=None if events is None else events.append)
    return result.answer


def retries(events: list[RunEvent]) -> list[ModelRetry]:
    return [event for event in events if isinstance(event, ModelRetry)]


# --- replies that broke on the way are retried ----------------------------------------------


@MODES
async def test_a_200_with_a_cut_json_body_is_retried(stream: bool) -> None:
    # Without streaming this used to fail the run at once (ModelResponseError, no retry).
    cut = CUT_STREAM if stream else CUT_COMPLETION
    events: list[RunEvent] = []
    with FakeVLLMServer([Reply(body=cut), ANSWER]) as server:
        assert await ask(model_for(server.base_url), stream=stream, events=events) == "ok"
        server.assert_complete()
    [retry] = retries(events)
    assert "non-JSON" in retry.reason or "bad stream chunk" in retry.reason


@MODES
async def test_a_200_that_is_not_json_twice_then_a_good_reply_answers(stream: bool) -> None:
    garbage = f"data: {HTML}\n\n" if stream else HTML
    events: list[RunEvent] = []
    with FakeVLLMServer([Reply(body=garbage), Reply(body=garbage), ANSWER]) as server:
        assert await ask(model_for(server.base_url), stream=stream, events=events) == "ok"
        server.assert_complete()
    assert [retry.attempt for retry in retries(events)] == [1, 2]


@MODES
async def test_json_that_is_not_a_chat_completion_is_not_retried(stream: bool) -> None:
    # The garbage before it is retried; the well-formed JSON that the server meant is final:
    # asking again would get it again.
    garbage = f"data: {HTML}\n\n" if stream else HTML
    meant = 'data: ["not", "a", "chunk"]\n\n' if stream else '{"object": "list", "data": []}'
    script: list[Reply | str] = [Reply(body=garbage), Reply(body=meant), ANSWER]
    with FakeVLLMServer(script) as server:
        with pytest.raises(ModelResponseError, match="not a chat completion"):
            await ask(model_for(server.base_url), stream=stream)
        assert len(server.requests) == 2


async def test_garbage_keeps_its_retry_limit() -> None:
    with FakeVLLMServer(lambda body: Reply(body=HTML)) as server:
        with pytest.raises(ModelResponseError, match="non-JSON"):
            await ask(model_for(server.base_url, max_retries=2), stream=False)
        assert len(server.requests) == 3


# --- stalls: read timeouts and the retry budget ---------------------------------------------


@asynccontextmanager
async def serve(
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
) -> AsyncIterator[tuple[str, list[int]]]:
    """An app answering every chat completion with ``handler``, in this event loop: its /v1
    URL and the count of requests it got (a one-item list)."""
    seen = [0]

    async def chat(request: web.Request) -> web.StreamResponse:
        seen[0] += 1
        await request.read()
        return await handler(request)

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()


def sse(delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "foxbrain",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(chunk).encode() + b"\n\n"


async def stream_of(request: web.Request, pieces: list[str], gap: float) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    await response.write(sse({"role": "assistant", "content": ""}))
    for piece in pieces:
        await asyncio.sleep(gap)
        await response.write(sse({"content": piece}))
    await response.write(sse({}, finish="stop") + b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def test_a_stream_that_stalls_before_its_first_chunk_is_retried() -> None:
    # Headers at once, then silence: only a read timeout (not the attempt's) can tell.
    async def handler(request: web.Request) -> web.StreamResponse:
        if seen[0] == 1:
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await asyncio.sleep(30)
            return response
        return await stream_of(request, ["<answer>ok</answer>"], 0)

    async with serve(handler) as (url, seen):
        model = model_for(url, read_timeout=0.3, timeout=30)
        began = time.monotonic()
        events: list[RunEvent] = []
        assert await ask(model, stream=True, events=events) == "ok"
        assert time.monotonic() - began < 3
    assert seen[0] == 2
    assert "did not finish streaming in time" in retries(events)[0].reason


async def test_the_read_timeout_is_between_bytes_not_for_the_whole_stream() -> None:
    # 8 pieces 0.1 s apart: 0.8 s in all, each gap well inside the 0.3 s read timeout.
    async def handler(request: web.Request) -> web.StreamResponse:
        return await stream_of(request, ["<answer>", *"slow ok", "</answer>"], 0.1)

    async with serve(handler) as (url, seen):
        events: list[RunEvent] = []
        model = model_for(url, read_timeout=0.3, max_retries=0)
        assert await ask(model, stream=True, events=events) == "slow ok"
    assert seen[0] == 1 and not retries(events)


async def test_a_stream_that_stalls_after_its_first_text_is_asked_again_by_the_agent() -> None:
    # The text was passed on already, so the backend does not retry it; the agent asks for the
    # whole reply again (twice at most), telling listeners to drop what they were shown.
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(sse({"role": "assistant", "content": "<answer>half"}))
        await asyncio.sleep(30)
        return response

    async with serve(handler) as (url, seen):
        events: list[RunEvent] = []
        began = time.monotonic()
        with pytest.raises(ModelTimeoutError) as caught:
            await ask(model_for(url, read_timeout=0.3, timeout=30), stream=True, events=events)
        assert time.monotonic() - began < 5
    assert caught.value.mid_stream
    assert seen[0] == 3  # the first attempt and the agent's two restarts
    restarts = retries(events)
    assert [r.attempt for r in restarts] == [1, 2]
    assert all("asked again from the start (drop its text)" in r.reason for r in restarts)
    assert sum(isinstance(event, TextDelta) for event in events) == 3


@MODES
async def test_a_server_that_always_stalls_fails_within_the_retry_budget(stream: bool) -> None:
    # Each attempt stops at its (read) timeout, 0.3 s; retries go on until the 1 s budget is
    # spent, the last one cut at the budget, although max_retries would allow 10 (3.3 s).
    limits = {"read_timeout": 0.3} if stream else {"timeout": 0.3}
    events: list[RunEvent] = []
    with FakeVLLMServer(lambda body: Reply(text=ANSWER, delay=30)) as server:
        model = model_for(server.base_url, retry_budget=1.0, max_retries=10, **limits)
        began = time.monotonic()
        with pytest.raises(ModelTimeoutError):
            await ask(model, stream=stream, events=events)
        took = time.monotonic() - began
        requests = len(server.requests)
    assert took < 1.0 + 0.5, took  # slack for a busy machine; 3.3 s without the budget
    # At least three attempts (the server may not have read the last, cut one yet).
    assert len(retries(events)) >= 2 and requests >= 2


async def test_a_wait_that_would_end_past_the_budget_is_not_taken() -> None:
    def script(body: dict[str, Any]) -> Reply:
        return Reply(status=503, text="overloaded")

    with FakeVLLMServer(script) as server:
        model = model_for(server.base_url, retry_budget=0.5, backoff=2.0, max_retries=5)
        began = time.monotonic()
        with pytest.raises(ModelHTTPError, match="HTTP 503"):
            await ask(model, stream=False)
        # backoff 2 s (1-3 s with jitter) cannot end inside 0.5 s: no wait, no retry.
        assert time.monotonic() - began < 0.9  # the shortest wait would be 1 s
        assert len(server.requests) == 1


def test_the_defaults_bound_a_stall() -> None:
    model = VLLMModel("http://127.0.0.1:1/v1")
    assert (model._timeout.total, model._timeout.connect) == (300.0, 5.0)
    session_timeout = model._timeout.aiohttp()  # aiohttp's (streams, https://)
    assert (session_timeout.total, session_timeout.sock_connect) == (300.0, 5.0)
    assert session_timeout.connect is None  # waiting for a pooled connection is not a failure
    assert model._stream_timeout.aiohttp().sock_read == 60.0
    assert model.retry_budget == 300.0
    assert (model.max_response_bytes, model.max_stream_line_bytes) == (16 << 20, 1 << 20)
    with pytest.raises(UserError, match="retry_budget"):
        VLLMModel("http://127.0.0.1:1/v1", retry_budget=0)


# --- size caps --------------------------------------------------------------------------------

CAP = 64 * 1024


async def test_a_body_over_the_cap_fails_at_once_without_a_retry() -> None:
    huge = '{"choices": [{"message": {"role": "assistant", "content": "' + "x" * 50 * CAP
    events: list[RunEvent] = []
    with FakeVLLMServer(lambda body: Reply(body=huge + '"}}]}')) as server:
        with pytest.raises(ModelResponseError, match=r"max_response_bytes \(65,536 bytes\)"):
            await ask(
                model_for(server.base_url, max_response_bytes=CAP), stream=False, events=events
            )
        assert len(server.requests) == 1 and not retries(events)


async def test_a_body_without_a_length_is_cut_at_the_cap_too() -> None:
    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for _ in range(50):  # 3.2 MB in all, never announced
            await response.write(b" " * CAP)
        await response.write_eof()
        return response

    async with serve(handler) as (url, seen):
        with pytest.raises(ModelResponseError, match="max_response_bytes"):
            await ask(model_for(url, max_response_bytes=CAP), stream=False)
    assert seen[0] == 1


async def test_a_stream_over_the_cap_fails() -> None:
    events: list[RunEvent] = []
    with FakeVLLMServer(["x " * 2000]) as server:  # ~440 KB of SSE
        model = model_for(server.base_url, max_response_bytes=CAP)
        with pytest.raises(ModelResponseError, match="max_response_bytes"):
            await ask(model, stream=True, events=events)
        assert len(server.requests) == 1 and not retries(events)


async def test_the_caps_count_lines_not_writes() -> None:
    # The longest line (with its CR) exactly max_stream_line_bytes long, the whole stream
    # exactly max_response_bytes, CRLF endings, sent in pieces that cut lines (and CRLFs)
    # anywhere, the last line without its newline: the reply is whole and allowed (one byte
    # less of either cap fails it).
    text = "<answer>" + "長" * 300 + "</answer>"
    lines = [sse({"role": "assistant", "content": ""}), sse({"content": text})]
    lines += [sse({}, finish="stop"), b"data: [DONE]"]
    body = b"\r\n".join(line.rstrip(b"\n") for line in lines)
    longest = max(len(line.rstrip(b"\n")) for line in lines)

    async def handler(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for start in range(0, len(body), 97):
            await response.write(body[start : start + 97])
            await asyncio.sleep(0)
        await response.write_eof()
        return response

    async with serve(handler) as (url, seen):
        model = model_for(url, max_stream_line_bytes=longest + 1, max_response_bytes=len(body))
        assert await ask(model, stream=True) == text[8:-9]
    assert seen[0] == 1


async def test_a_stream_line_over_the_cap_fails_at_once_without_a_retry() -> None:
    line = "data: " + json.dumps({"choices": [{"delta": {"content": "x" * 5 * CAP}}]}) + "\n\n"
    events: list[RunEvent] = []
    with FakeVLLMServer(lambda body: Reply(body=line)) as server:
        model = model_for(server.base_url, max_stream_line_bytes=CAP)
        with pytest.raises(ModelResponseError, match=r"max_stream_line_bytes \(65,536 bytes\)"):
            await ask(model, stream=True, events=events)
        assert len(server.requests) == 1 and not retries(events)


# --- foxagent run --request-timeout -----------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in (
        "FOXAGENT_BASE_URL",
        "OPENAI_BASE_URL",
        "FOXAGENT_MODEL",
        "OPENAI_MODEL",
        "FOXAGENT_API_KEY",
        "OPENAI_API_KEY",
        "FOXAGENT_REQUEST_TIMEOUT",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray pyproject.toml from the repo
    return tmp_path


def flags(*argv: str) -> dict[str, Any]:
    return vars(_main._parser().parse_args(["run", "?", *argv]))


def test_request_timeout_from_flag_env_or_file(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert flags("--request-timeout", "12.5")["request_timeout"] == 12.5
    assert RunConfig.resolve(flags()).request_timeout is None
    (clean_env / "foxagent.toml").write_text("request_timeout = 20\n")
    assert RunConfig.resolve(flags()).request_timeout == 20
    monkeypatch.setenv("FOXAGENT_REQUEST_TIMEOUT", "7")
    assert RunConfig.resolve(flags()).request_timeout == 7.0
    assert RunConfig.resolve(flags("--request-timeout", "3")).request_timeout == 3.0
    monkeypatch.setenv("FOXAGENT_REQUEST_TIMEOUT", "soon")
    with pytest.raises(UserError, match="FOXAGENT_REQUEST_TIMEOUT"):
        RunConfig.resolve(flags())


def test_build_agent_gives_the_model_the_request_timeout(clean_env: Path) -> None:
    config = RunConfig.resolve(
        flags("--base-url", "http://127.0.0.1:1/v1", "--request-timeout", "9")
    )
    backend = Backend(url="http://127.0.0.1:1/v1", line="")
    view = LiveView(io.StringIO())
    model = _build_agent(config, backend, view, io.StringIO()).model
    assert isinstance(model, VLLMModel)
    assert model._timeout.total == model._stream_timeout.total == 9.0
    assert model.retry_budget == 9.0
    config.request_timeout = 0
    with pytest.raises(UserError, match="--request-timeout"):
        _build_agent(config, backend, view, io.StringIO())


def test_run_request_timeout_stops_a_stalled_server(clean_env: Path) -> None:
    with FakeVLLMServer(lambda body: Reply(text=ANSWER, delay=30)) as server:
        out, err = io.StringIO(), io.StringIO()
        began = time.monotonic()
        code = run_command(
            flags("--base-url", server.base_url, "--model", "foxbrain", "--request-timeout", "0.5"),
            out=out,
            err=err,
        )
        took = time.monotonic() - began
    assert code == ExitCode.UNREACHABLE, err.getvalue()
    assert "did not answer in time" in err.getvalue()
    assert took < 5.0, took  # the 0.5 s stall plus starting up; 300 s without the flag


@pytest.mark.parametrize(
    "chunk",
    [
        '{"choices": [{"delta": {"content": 7}, "finish_reason": "stop"}]}',
        '{"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"arguments": [1]}}]}}]}',
    ],
)
def test_a_chunk_with_a_wrongly_typed_field_is_a_typed_error_in_the_cli(chunk: str) -> None:
    # Before: `foxagent run --stream` printed a TypeError traceback (an int written as text).
    with FakeVLLMServer([Reply(body=f"data: {chunk}\n\n")] * 4) as server:
        argv = ["run", "--stream", "--base-url", server.base_url, "--model", "foxbrain", "hi"]
        out, err = io.StringIO(), io.StringIO()
        code = run_command(vars(_main._parser().parse_args(argv)), out=out, err=err)
    assert code == ExitCode.MODEL
    assert "not a chat completion chunk" in err.getvalue()
