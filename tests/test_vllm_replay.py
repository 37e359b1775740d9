"""Tier 2 on every test run: foxagent against HTTP exchanges recorded from a real vLLM server.

``conformance/e2e/record.py`` (``make e2e-vllm``) ran each scenario of
``conformance/e2e/scenarios.py`` against vLLM on CPU (SmolLM2-135M, foxagent's chat template,
``--enable-auto-tool-choice --tool-call-parser llama3_json``) and stored the exchanges. Here:

* each scenario runs again against a server replaying them: foxagent must send the very same
  requests and end the same way (answer, calls, exit code, JSON output);
* the recorded answers pin what the real server did (ids, fields, finish reasons per
  ``tool_choice``), and `FakeVLLMServer`, given the text the real model wrote, must answer the
  same thing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from conformance.compare import differences, joined_tokens, normalise, sse_payloads
from conformance.e2e.replay import ReplayServer
from conformance.e2e.scenarios import (
    FIXTURES,
    SCENARIOS,
    Scenario,
    cli_command,
    cli_environment,
    cli_output,
    run_agent,
)
from foxagent import cli
from foxagent.testing import FakeVLLMServer, Reply

RECORDED = {s.name: json.loads(s.fixture.read_text(encoding="utf-8")) for s in SCENARIOS}
TOOL_ID = re.compile(r"chatcmpl-tool-[0-9a-f]{16}")


def _chat_exchanges(name: str) -> list[dict[str, Any]]:
    exchanges = RECORDED[name]["exchanges"]
    return [e for e in exchanges if e["path"] == "/v1/chat/completions"]


def _assembled(body: str) -> dict[str, Any]:
    """A streamed answer folded into one message (what a client builds)."""
    content, calls, finish, tokens = "", {}, None, ""
    for chunk in sse_payloads(body):
        if chunk == "[DONE]" or not chunk["choices"]:
            continue
        choice = chunk["choices"][0]
        finish = choice.get("finish_reason") or finish
        tokens += joined_tokens(choice.get("logprobs")) or ""
        delta = choice["delta"]
        content += delta.get("content") or ""
        for part in delta.get("tool_calls") or []:
            call = calls.setdefault(part["index"], {"name": "", "arguments": ""})
            function = part.get("function") or {}
            call["name"] += function.get("name") or ""
            call["arguments"] += function.get("arguments") or ""
    assembled = {"content": content, "calls": list(calls.values()), "finish_reason": finish}
    return assembled | {"generated": tokens.replace("<end>", "")}


def _message(exchange: dict[str, Any]) -> dict[str, Any]:
    """What the server answered, as content, calls and finish reason."""
    if exchange["request"].get("stream"):
        return _assembled(exchange["body"])
    choice = json.loads(exchange["body"])["choices"][0]
    calls = [c["function"] for c in choice["message"].get("tool_calls", [])]
    return {
        "content": choice["message"]["content"] or "",
        "calls": calls,
        "finish_reason": choice["finish_reason"],
    }


def test_every_scenario_was_recorded_against_a_real_vllm() -> None:
    for scenario in SCENARIOS:
        document = RECORDED[scenario.name]
        assert document["vllm_version"] == "0.32.0", scenario.name
        assert _chat_exchanges(scenario.name), f"{scenario.name}: no chat request recorded"
        assert scenario.fixture.parent == FIXTURES


# --- foxagent replays the same run ----------------------------------------------------------


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if not s.cli], ids=lambda s: s.name)
async def test_agent_scenario_replays_identically(scenario: Scenario) -> None:
    recorded = RECORDED[scenario.name]
    with ReplayServer(recorded["exchanges"]) as server:
        outcome = await run_agent(scenario, server.base_url)
        assert server.problems == []
        assert not server.expected, f"{len(server.expected)} recorded requests never sent"
    assert outcome == recorded["outcome"]


@pytest.mark.parametrize("scenario", [s for s in SCENARIOS if s.cli], ids=lambda s: s.name)
def test_cli_scenario_replays_identically(
    scenario: Scenario,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    recorded = RECORDED[scenario.name]
    monkeypatch.chdir(tmp_path)
    with ReplayServer(recorded["exchanges"]) as server:
        for name, value in cli_environment(server.base_url).items():
            if name.startswith("FOXAGENT_"):
                monkeypatch.setenv(name, value)
        for name in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "FOXAGENT_MODEL", "OPENAI_MODEL"):
            monkeypatch.delenv(name, raising=False)
        argv = cli_command(scenario)[3:]  # drop "python -m foxagent"
        code = cli.main(argv)
        assert server.problems == []
        assert not server.expected
    captured = capsys.readouterr()
    outcome = {"exit_code": code, "stdout": cli_output(captured.out, server.base_url)}
    assert outcome == recorded["outcome"], captured.err


def test_replay_server_refuses_a_request_that_was_not_recorded() -> None:
    exchange = RECORDED["agent-auto"]["exchanges"][-1]
    with ReplayServer([exchange]) as server:
        changed = dict(exchange["request"] or {}, temperature=1.5)
        response = httpx.post(server.base_url.removesuffix("/v1") + exchange["path"], json=changed)
    assert response.status_code == 599 and "body differs" in server.problems[0]


# --- what the real server did ---------------------------------------------------------------


def test_real_tool_call_ids_and_fields_are_vllm_0_32s() -> None:
    for scenario in SCENARIOS:
        for exchange in _chat_exchanges(scenario.name):
            assert exchange["status"] == 200, (scenario.name, exchange["body"][:200])
            if exchange["request"].get("stream"):
                chunks = sse_payloads(exchange["body"])
                assert chunks[-1] == "[DONE]"
                assert {"prompt_token_ids", "prompt_text"} <= set(chunks[0])
                ids = [
                    part["id"]
                    for chunk in chunks[1:-1]
                    for choice in chunk["choices"]
                    for part in choice["delta"].get("tool_calls") or []
                    if "id" in part
                ]
            else:
                message = json.loads(exchange["body"])["choices"][0]["message"]
                assert "reasoning" in message and "reasoning_content" not in message
                assert message.get("tool_calls") != []  # an empty list is left out
                ids = [call["id"] for call in message.get("tool_calls", [])]
            assert all(TOOL_ID.fullmatch(i) for i in ids), (scenario.name, ids)


@pytest.mark.parametrize("name", ["agent-required", "agent-required-stream"])
def test_real_required_choice_gives_a_call_with_finish_tool_calls(name: str) -> None:
    first = _message(_chat_exchanges(name)[0])
    assert first["calls"] and first["finish_reason"] == "tool_calls"
    assert first["calls"][0]["name"] in ("calculator", "get_weather")
    json.loads(first["calls"][0]["arguments"])  # constrained decoding: valid JSON


@pytest.mark.parametrize("name", ["agent-named", "agent-named-stream"])
def test_real_named_choice_gives_that_call_with_finish_stop(name: str) -> None:
    exchange = _chat_exchanges(name)[0]
    first = _message(exchange)
    wanted = exchange["request"]["tool_choice"]["function"]["name"]
    assert [call["name"] for call in first["calls"]] == [wanted]
    assert first["finish_reason"] == "stop"


def test_a_named_choice_cut_at_max_tokens_comes_back_as_text_and_is_refused() -> None:
    # Recorded 2026-12-02: SmolLM2 looped inside the forced call's Chinese argument until
    # max_tokens. vLLM 0.32 then returns the unfinished JSON as content, finish "length",
    # and no tool_calls; foxagent refuses it as cut rather than closing it into a call.
    exchange = _chat_exchanges("agent-named-zh")[0]
    first = _message(exchange)
    assert first["calls"] == [] and first["finish_reason"] == "length"
    assert first["content"].startswith('{"name": "get_weather"')
    calls = RECORDED["agent-named-zh"]["outcome"]["calls"]
    assert [c["status"] for c in calls] == ["rejected"]


def test_real_required_choice_without_strict_tools_constrains_only_the_envelope() -> None:
    # vLLM 0.32's structural tag fixes {"name": <a tool>, "parameters": <any object>}; SmolLM2
    # filled the parameters with the tool's own schema, and foxagent refused to run that.
    exchange = _chat_exchanges("agent-required-loose")[0]
    assert all("strict" not in t["function"] for t in exchange["request"]["tools"])
    (call,) = _message(exchange)["calls"]
    arguments = json.loads(call["arguments"])
    assert "location" not in arguments and {"type", "properties"} & set(arguments)
    outcome = RECORDED["agent-required-loose"]["outcome"]
    assert [c["status"] for c in outcome["calls"]] == ["rejected"]


def test_strict_tools_are_sent_strict_and_give_schema_valid_arguments() -> None:
    for name in ("agent-required", "agent-named"):
        exchange = _chat_exchanges(name)[0]
        assert all(t["function"]["strict"] is True for t in exchange["request"]["tools"])
        (call,) = _message(exchange)["calls"]
        required = next(
            t["function"]["parameters"]["required"]
            for t in exchange["request"]["tools"]
            if t["function"]["name"] == call["name"]
        )
        assert set(required) <= set(json.loads(call["arguments"])), (name, call)
    calls = RECORDED["agent-named"]["outcome"]["calls"]
    assert calls == [
        {
            "name": "calculator",
            "arguments": {"expression": "17 * 23"},
            "status": "ok",
            "result": "391",
        }
    ]


def test_forced_choice_is_sent_once_then_auto() -> None:
    for name in ("agent-required", "agent-named", "cli-required-stream", "cli-named"):
        choices = [e["request"]["tool_choice"] for e in _chat_exchanges(name)]
        assert choices[0] != "auto" and set(choices[1:]) <= {"auto"}, (name, choices)


# --- FakeVLLMServer answers what the real one did, for the text the model wrote -------------


def _model_text(message: dict[str, Any]) -> str | None:
    """The text the engine produced, where the answer shows it: content, or one llama call."""
    if not message["calls"]:
        return message["content"]
    if len(message["calls"]) == 1 and not message["content"]:
        call = message["calls"][0]
        # The structural tag makes the engine write exactly this prefix and a JSON object.
        return '{"name": "' + call["name"] + '", "parameters": ' + call["arguments"] + "}"
    return None


def _engine_finish(exchange: dict[str, Any], message: dict[str, Any]) -> str:
    if message["finish_reason"] in ("stop", "length"):
        return str(message["finish_reason"])
    return "stop"  # tool_calls is reported only after a natural stop in these scenarios


def _comparable() -> Iterator[tuple[str, int, dict[str, Any], str, str]]:
    for scenario in SCENARIOS:
        for n, exchange in enumerate(_chat_exchanges(scenario.name)):
            message = _message(exchange)
            text = _model_text(message)
            if text is not None:
                yield scenario.name, n, exchange, text, _engine_finish(exchange, message)


COMPARABLE = list(_comparable())


@pytest.mark.parametrize(
    ("name", "n", "exchange", "text", "finish"),
    COMPARABLE,
    ids=[f"{c[0]}-{c[1]}" for c in COMPARABLE],
)
def test_fake_server_answers_like_the_real_one(
    name: str, n: int, exchange: dict[str, Any], text: str, finish: str
) -> None:
    request = exchange["request"]
    with FakeVLLMServer([Reply(text=text, finish_reason=finish)], model=request["model"]) as fake:
        response = httpx.post(fake.base_url + "/chat/completions", json=request, timeout=10)
    if request.get("stream"):
        real, mine = _assembled(exchange["body"]), _assembled(response.text)
        assert mine == real
        real_keys = [sorted(c) for c in sse_payloads(exchange["body"]) if c != "[DONE]"][:1]
        assert [sorted(c) for c in sse_payloads(response.text) if c != "[DONE]"][:1] == real_keys
    else:
        problems = differences(normalise(json.loads(exchange["body"])), normalise(response.json()))
        assert not problems, "\n".join(problems)


def test_doctor_recognised_the_real_server_and_foxagents_template() -> None:
    report = RECORDED["cli-doctor"]["outcome"]["stdout"]
    assert "✓ auto tool choice (llama3_json parser): on" in report
    assert "✓ chat template: foxagent's Llama 3.1 template is in use" in report
    # The real /tokenize spells tokens in byte-level BPE (Ġ, Ċ), which doctor must undo.
    tokenized = json.loads(RECORDED["cli-doctor"]["exchanges"][-1]["body"])
    assert "Ċ" in "".join(tokenized["token_strs"])
