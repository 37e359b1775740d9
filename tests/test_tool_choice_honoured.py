"""``tool_choice`` means what the caller said, on every backend (issue 16, item 1): with
``"none"`` nothing runs whatever comes back (the server returns a call as plain text then, and
recovery must not turn it back into one); ``"required"`` and a named function are honoured by
the embedded model's reply schema too."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from foxagent import Agent, ModelSettings, RunResult, UserError, tool
from foxagent.cli import _main
from foxagent.cli._run import run_command
from foxagent.models.local import LocalGGUFModel
from foxagent.testing import FakeVLLMServer
from foxagent_tools.calculator import calculator

RAN: list[str] = []
CALL = json.dumps({"name": "get_weather", "parameters": {"location": "台北"}}, ensure_ascii=False)
NONE = ModelSettings(tool_choice="none")


@tool
def get_weather(location: str) -> str:
    """Weather now.

    Args:
        location: City.
    """
    RAN.append(location)
    return f"{location} 23°C"


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("generation", ["prefix", "brace", "next"])
async def test_none_runs_nothing_even_when_the_reply_is_a_call(
    generation: str, stream: bool
) -> None:
    RAN.clear()
    with FakeVLLMServer([CALL], generation=generation) as server:
        agent = Agent(tools=[get_weather], base_url=server.base_url, settings=NONE, stream=stream)
        async with agent:
            result = await agent.arun("台北天氣？")
        sent = server.requests
    assert RAN == [] and result.tool_calls == []
    assert len(sent) == 1 and sent[0]["tool_choice"] == "none" and "logprobs" not in sent[0]
    assert result.steps == 1 and "get_weather" in result.answer  # the text, as it came


def test_the_cli_with_tool_choice_none_runs_no_tool(tmp_path: Path) -> None:
    call = json.dumps({"name": "calculator", "parameters": {"expression": "17*23"}})
    out, err = io.StringIO(), io.StringIO()
    with FakeVLLMServer([call]) as server:
        argv = ["run", "17*23?", "--base-url", server.base_url, "--tools", "calculator"]
        flags = vars(_main._parser().parse_args([*argv, "--tool-choice", "none"]))
        code = run_command(flags, out=out, err=err)
    assert code == 0
    assert "calculator(" not in err.getvalue() and "391" not in out.getvalue()


# --- the embedded model: tool_choice in its reply schema (no server needed) -----------------


def _schema(choice: Any, *, after_result: bool = False) -> dict[str, Any]:
    model = LocalGGUFModel()  # nothing starts before a request
    settings = model._settings(
        ModelSettings(tool_choice=choice),
        [calculator.openai_schema(), get_weather.openai_schema()],
        answer_only=after_result,
    )
    schema: dict[str, Any] = settings.extra_body["response_format"]["json_schema"]["schema"]
    return schema


def _kinds(schema: dict[str, Any]) -> list[str]:
    branches = schema.get("anyOf", [schema])
    return [
        b["properties"]["name"]["const"] if "name" in b["properties"] else "answer"
        for b in branches
    ]


def test_the_embedded_model_honours_every_tool_choice() -> None:
    assert _kinds(_schema("auto")) == ["calculator", "get_weather", "answer"]
    assert _kinds(_schema("auto", after_result=True)) == ["answer"]
    assert _kinds(_schema("none")) == ["answer"]
    assert _kinds(_schema("required")) == ["calculator", "get_weather"]
    named = {"type": "function", "function": {"name": "get_weather"}}
    assert _kinds(_schema(named)) == ["get_weather"]
    with pytest.raises(UserError, match="'nope'"):
        _schema({"type": "function", "function": {"name": "nope"}})


def test_the_embedded_model_with_none_answers_without_a_call() -> None:
    # The real SmolLM2 calls the calculator for nearly anything under "auto" (test_local_model).
    agent = Agent(
        tools=[calculator],
        model=LocalGGUFModel(),
        settings=ModelSettings(temperature=0, seed=42, max_tokens=128, tool_choice="none"),
    )
    result: RunResult = agent.run("What is 17 * 23? Use the calculator.")
    assert result.tool_calls == [] and result.steps == 1
    assert result.answer.strip()
