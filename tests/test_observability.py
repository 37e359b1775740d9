"""OpenTelemetry spans (GenAI semantic conventions), JSONL traces, and secrets never leaking
into spans, traces, errors or reprs. Over real HTTP to FakeVLLMServer."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from foxagent import ModelHTTPError
from foxagent.events import JsonlTrace
from foxagent.testing import FakeVLLMServer
from tests.conftest import AgentFactory, get_weather

SECRET = "sk-VERY-SECRET-KEY-0451"
ANSWER = "<answer>台北 23°C</answer>"
CALL = json.dumps({"name": "get_weather", "parameters": {"location": "台北"}}, ensure_ascii=False)
EXPORTER = InMemorySpanExporter()


@pytest.fixture(scope="module", autouse=True)
def _provider() -> None:
    # The global provider can be set once per process; foxagent's proxy tracer follows it.
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
    trace.set_tracer_provider(provider)


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    EXPORTER.clear()
    yield EXPORTER


@pytest.fixture
def fake_server_options() -> dict[str, Any]:
    return {"api_key": SECRET}


@pytest.fixture
def model_options() -> dict[str, Any]:
    return {"api_key": SECRET, "backoff": 0.01, "max_retries": 0}


@pytest.fixture
def agent_options() -> dict[str, Any]:
    return {"tools": [get_weather], "system_prompt": None}


def by_name(finished: tuple[ReadableSpan, ...]) -> dict[str, list[ReadableSpan]]:
    named: dict[str, list[ReadableSpan]] = {}
    for span in finished:
        named.setdefault(span.name, []).append(span)
    return named


async def test_a_run_is_one_agent_span_with_chat_and_tool_spans(
    spans: InMemorySpanExporter, fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    fake_server.add(CALL, ANSWER)
    port = int(fake_server.base_url.split(":")[2].split("/")[0])
    async with make_agent() as agent:
        result = await agent.arun("台北幾度？")
    named = by_name(spans.get_finished_spans())
    assert sorted(named) == ["chat foxbrain", "execute_tool get_weather", "invoke_agent foxagent"]
    (run,) = named["invoke_agent foxagent"]
    chats = named["chat foxbrain"]
    (tool_span,) = named["execute_tool get_weather"]
    assert run.attributes is not None and run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert run.attributes["foxagent.steps"] == 2
    assert run.kind == trace.SpanKind.INTERNAL and run.parent is None
    assert all(s.parent is not None and s.parent.span_id == run.context.span_id for s in chats)
    first = chats[0].attributes
    assert first is not None and chats[0].kind == trace.SpanKind.CLIENT
    assert first["gen_ai.operation.name"] == "chat" and first["gen_ai.provider.name"] == "vllm"
    assert first["gen_ai.request.model"] == "foxbrain"
    assert first["gen_ai.request.temperature"] == 0.5 and first["gen_ai.request.max_tokens"] == 2048
    assert first["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert first["gen_ai.usage.input_tokens"] == result.usage[0].prompt_tokens > 0
    assert first["server.address"] == "127.0.0.1" and first["server.port"] == port
    attributes = tool_span.attributes
    assert attributes is not None and attributes["gen_ai.tool.name"] == "get_weather"
    assert attributes["gen_ai.tool.call.id"] == result.tool_calls[0].id
    assert tool_span.status.status_code == trace.StatusCode.UNSET


async def test_failures_mark_their_spans(
    spans: InMemorySpanExporter, fake_server: FakeVLLMServer, make_agent: AgentFactory
) -> None:
    atlantis = json.dumps({"name": "get_weather", "parameters": {"location": "Atlantis"}})
    fake_server.add(atlantis)  # the 2nd request: 500
    async with make_agent() as agent:
        with pytest.raises(ModelHTTPError):
            await agent.arun("Atlantis?")
    named = by_name(spans.get_finished_spans())
    (tool_span,) = named["execute_tool get_weather"]
    assert tool_span.attributes is not None and tool_span.attributes["error.type"] == "error"
    (run,) = named["invoke_agent foxagent"]
    assert run.status.status_code == trace.StatusCode.ERROR
    assert run.attributes is not None and run.attributes["error.type"] == "ModelHTTPError"


async def test_the_api_key_never_shows_anywhere(
    spans: InMemorySpanExporter,
    tmp_path: Path,
    fake_server: FakeVLLMServer,
    make_agent: AgentFactory,
) -> None:
    trace_file = tmp_path / "run.jsonl"
    fake_server.add(CALL, ANSWER)
    agent = make_agent()
    with JsonlTrace(trace_file) as jsonl:
        async with agent:
            await agent.arun("台北幾度？", on_event=jsonl)
    wrong = make_agent(model_options={"api_key": SECRET + "-WRONG"})
    async with wrong:
        with pytest.raises(ModelHTTPError) as caught:
            await wrong.arun("again")
    shown = [repr(agent), repr(agent.model), str(caught.value), repr(caught.value)]
    shown.append(json.dumps(caught.value.messages, ensure_ascii=False))
    for span in spans.get_finished_spans():
        shown.append(json.dumps(dict(span.attributes or {}), default=str))
        shown.append(span.name + str(span.status.description))
    shown.append(trace_file.read_text(encoding="utf-8"))
    text = "\n".join(shown)
    assert "401" in str(caught.value) and len(spans.get_finished_spans()) >= 5
    assert SECRET not in text and "Bearer" not in text and "authorization" not in text.lower()


def test_credentials_in_the_url_stay_out_of_spans() -> None:
    from foxagent._tracing import server_attributes

    attributes = server_attributes(f"http://admin:{SECRET}@10.0.0.7:8883/v1?key={SECRET}")
    assert attributes == {"server.address": "10.0.0.7", "server.port": 8883}


async def test_jsonl_trace_has_one_line_per_event(tmp_path: Path, make_agent: AgentFactory) -> None:
    path = tmp_path / "trace.jsonl"
    with FakeVLLMServer([CALL, ANSWER]) as server:  # needs no key (the agent sends one)
        async with make_agent(server=server) as agent:
            with JsonlTrace(path, run="r1") as jsonl:
                await agent.arun("台北幾度？", on_event=jsonl)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    assert [line["kind"] for line in lines] == [
        "step",
        "tool_call_detected",
        "tool_started",
        "tool_finished",
        "step",
        "text",
        "final_answer",
    ]
    assert {line["run"] for line in lines} == {"r1"}
    assert lines[3]["record"]["result"] == {
        "location": "台北",
        "temperature": 23,
        "unit": "celsius",
    }
    assert lines[-1]["answer"] == "台北 23°C" and lines[0]["time"] <= lines[-1]["time"]


def test_cli_trace_option(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from foxagent.cli import _main
    from foxagent.cli._run import run_command

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FOXAGENT_API_KEY", SECRET)
    path = tmp_path / "cli.jsonl"
    with FakeVLLMServer(
        ['{"name": "calculator", "parameters": {"expression": "6*7"}}', ANSWER], api_key=SECRET
    ) as server:
        argv = [
            "run",
            "6*7?",
            "--base-url",
            server.base_url,
            "--tools",
            "calculator",
            "--trace",
            str(path),
        ]
        code = run_command(
            vars(_main._parser().parse_args(argv)), out=io.StringIO(), err=io.StringIO()
        )
    text = path.read_text(encoding="utf-8")
    assert code == 0 and SECRET not in text
    kinds = [json.loads(line)["kind"] for line in text.splitlines()]
    assert kinds[0] == "step" and kinds[-1] == "final_answer" and "tool_finished" in kinds


def test_without_opentelemetry_tracing_is_a_no_op() -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "sys.modules['opentelemetry'] = None  # as if it were not installed\n"
        "from foxagent import _tracing\n"
        "assert not _tracing.enabled\n"
        "with _tracing.run_span('r', None) as span:\n"
        "    span.set({'a': 1}); span.fail('x'); span.rename('y')\n"
        "with _tracing.tool_span('t', 'id'):\n"
        "    pass\n"
        "print('no-op')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "no-op"
