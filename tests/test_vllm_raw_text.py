"""What a real vLLM 0.32 (CPU, SmolLM2-135M, foxagent's template, llama3_json parser) showed
about dropped text, recorded by ``python -m conformance.e2e.raw_text`` and checked here: the
same request with ``logprobs`` (the generated tokens) and again with ``tool_choice: "none"``
(the re-ask) give the same text, and foxagent decides from it, not from the parser's pick."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from foxagent import ModelResponse, ModelSettings, Usage, recover_tool_calls
from foxagent._reask import settle
from foxagent._recovery import ToolIndex
from foxagent.models._generated import generated_text

RECORDED = json.loads(
    (Path(__file__).parent / "fixtures" / "vllm_e2e" / "raw-text.json").read_text("utf-8")
)
PAIRS = RECORDED["pairs"]


def _response(exchange: dict[str, Any]) -> ModelResponse:
    choice = exchange["response"]["choices"][0]
    return ModelResponse(
        message=choice["message"],
        finish_reason=choice["finish_reason"],
        usage=Usage.from_wire(exchange["response"]["usage"]),
        generated_text=generated_text(choice.get("logprobs")),
    )


@pytest.mark.parametrize("pair", PAIRS, ids=[str(i) for i in range(len(PAIRS))])
def test_the_generated_tokens_are_the_text_the_reask_gets(pair: dict[str, Any]) -> None:
    auto, none = _response(pair["auto"]), _response(pair["none"])
    assert pair["auto"]["request"]["seed"] == pair["none"]["request"]["seed"]
    assert auto.generated_text is not None
    assert auto.generated_text == none.message["content"]
    assert auto.usage.completion_tokens == none.usage.completion_tokens


def test_the_parser_dropped_prose_and_reported_a_call_cut_at_max_tokens_as_tool_calls() -> None:
    auto = _response(PAIRS[0]["auto"])
    calls = auto.message["tool_calls"]
    assert auto.finish_reason == "tool_calls" and len(calls) == 1
    assert auto.usage.completion_tokens == PAIRS[0]["auto"]["request"]["max_tokens"]
    assert not auto.message["content"]  # the prose before the JSON is gone from the message
    assert auto.generated_text is not None
    assert auto.generated_text.lstrip().startswith("The JSON for the function call is:")


@pytest.mark.parametrize("pair", PAIRS, ids=[str(i) for i in range(len(PAIRS))])
def test_foxagent_decides_from_the_whole_text_and_runs_nothing_here(pair: dict[str, Any]) -> None:
    request = pair["auto"]["request"]
    index = ToolIndex(request["tools"])
    settings = ModelSettings(max_tokens=request["max_tokens"], seed=request["seed"])
    auto = _response(pair["auto"])

    async def reask(reason: str) -> ModelResponse:
        raise AssertionError(f"the generated tokens were enough; asked again: {reason}")

    settled = asyncio.run(settle(auto, settings, index, reask, tools=True))
    assert settled.response.message["content"] == _response(pair["none"]).message["content"]
    recovery = recover_tool_calls(
        settled.response.message,
        index,
        finish_reason=settled.response.finish_reason,
        completion_tokens=auto.usage.completion_tokens,
        max_tokens=settings.max_tokens,
    )
    # SmolLM2 never wrote a usable call here: prose, schema copies, or a call cut at max_tokens.
    assert recovery.calls == ()
