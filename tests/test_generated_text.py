"""Deciding from the generated tokens (issue 15, section 1): the vLLM backend asks for
``logprobs`` when the server's tool parser may drop text, and the agent decides from every
token the model wrote instead of the parser's pick. A short example cue ("例如：") dropped by
the parser, which token counts cannot see, is seen; nothing extra is requested."""

from __future__ import annotations

import json
from typing import Any

import pytest

from foxagent import Agent, ModelResponse, ModelSettings, RecoveredCall, Recovery, tool
from foxagent._reask import Settled
from foxagent.events import RunWarning
from foxagent.models._generated import generated_text
from foxagent.testing import FakeVLLMServer, Reply
from foxagent.testing._fake_logprobs import logprobs_content

RAN: list[str] = []
CALL = json.dumps({"name": "get_weather", "parameters": {"location": "台北"}}, ensure_ascii=False)
# Three words of prose before a JSON example: vLLM's regex and brace parsers keep the JSON and
# drop the words, and the count of what came back is within the estimator's noise.
SHORT_DROP = "例如：" + CALL
ANSWER = "<answer>台北 23°C，晴。</answer>"


@tool
def get_weather(location: str) -> str:
    """Weather now.

    Args:
        location: City.
    """
    RAN.append(location)
    return f"{location} 23°C"


def test_the_tokens_are_joined_without_the_end_of_turn_and_unreadable_ones_are_no_text() -> None:
    tokens = [{"token": t} for t in ("例如", "：{", '"a"', "}", "<|eot_id|>")]
    assert generated_text({"content": tokens}) == '例如：{"a"}'
    assert generated_text(None) is None
    assert generated_text({"content": None}) is None
    # vLLM --return-tokens-as-token-ids: ids, not text.
    assert generated_text({"content": [{"token": "token_id:1234"}]}) is None
    assert generated_text({"content": [{"token": 3}]}) is None


def test_the_fake_server_lists_as_many_tokens_as_it_reports_with_split_characters() -> None:
    entries = logprobs_content("台北 sunny", 6, stopped=True)
    assert len(entries) == 6 and entries[-1]["token"] == "<|eot_id|>"
    assert "".join(e["token"] for e in entries) == "台北 sunny<|eot_id|>"
    split = logprobs_content("台北", 4, stopped=False, split_characters=True)
    assert [e["token"] for e in split] == ["\ufffd"] * 4
    assert bytes(split[0]["bytes"]).decode() == "\ufffd"


@pytest.mark.parametrize("generation", ["regex", "brace", "next"])
@pytest.mark.parametrize("stream", [False, True])
async def test_an_example_behind_a_short_cue_never_runs_and_costs_no_request(
    generation: str, stream: bool
) -> None:
    RAN.clear()
    events: list[Any] = []
    with FakeVLLMServer([SHORT_DROP], generation=generation) as server:
        agent = Agent(tools=[get_weather], base_url=server.base_url, stream=stream)
        async with agent:
            result = await agent.arun("怎麼查天氣？", on_event=events.append)
        requests = server.requests
    assert RAN == []
    assert len(requests) == 1 and requests[0]["logprobs"] is True
    assert not [e for e in events if isinstance(e, RunWarning)]
    assert result.tool_calls == [] and "例如" in result.answer


@pytest.mark.parametrize("generation", ["regex", "brace", "next"])
async def test_a_clean_call_runs_once_with_its_exact_values_and_no_label(generation: str) -> None:
    RAN.clear()
    with FakeVLLMServer([CALL, ANSWER], generation=generation) as server:
        async with Agent(tools=[get_weather], base_url=server.base_url) as agent:
            result = await agent.arun("台北天氣？")
        assert len(server.requests) == 2
    assert RAN == ["台北"] and result.answer == "台北 23°C，晴。"
    assert "generated_text" not in result.tool_calls[0].repairs


async def test_split_characters_keep_the_servers_values_when_the_text_means_the_same_calls() -> (
    None
):
    RAN.clear()
    with FakeVLLMServer([CALL, ANSWER], split_characters=True) as server:
        async with Agent(tools=[get_weather], base_url=server.base_url) as agent:
            result = await agent.arun("台北天氣？")
        choices = [r.get("tool_choice") for r in server.requests]
    assert RAN == ["台北"]  # the server's exact value, not the tokens' U+FFFD
    assert choices == ["auto", "auto"] and result.answer == "台北 23°C，晴。"


async def test_split_characters_and_a_dropped_cue_ask_again_with_the_parser_off() -> None:
    RAN.clear()
    events: list[Any] = []
    with FakeVLLMServer([SHORT_DROP, SHORT_DROP], split_characters=True) as server:
        async with Agent(tools=[get_weather], base_url=server.base_url) as agent:
            result = await agent.arun("怎麼查天氣？", on_event=events.append)
        choices = [r.get("tool_choice") for r in server.requests]
    assert RAN == [] and choices == ["auto", "none"]
    warnings = [e.message for e in events if isinstance(e, RunWarning)]
    assert warnings and "names other calls than the server's parse" in warnings[0]
    assert "例如" in result.answer


@pytest.mark.parametrize(
    ("settings", "asks"),
    [
        (ModelSettings(), True),
        (ModelSettings(generated_tokens=False), False),
        (ModelSettings(tool_choice="required"), False),
        (ModelSettings(tool_choice="none"), False),
    ],
)
async def test_the_tokens_are_asked_for_only_where_a_parser_may_drop_text(
    settings: ModelSettings, asks: bool
) -> None:
    reply = CALL if settings.tool_choice == "required" else ANSWER
    with FakeVLLMServer([Reply(text=reply), ANSWER]) as server:
        async with Agent(tools=[get_weather], base_url=server.base_url, settings=settings) as a:
            await a.arun("台北天氣？")
        first = server.requests[0]
    assert ("logprobs" in first) is asks


def test_a_call_decided_from_the_text_is_labelled_only_when_the_server_named_others() -> None:
    served = {"role": "assistant", "tool_calls": [{"function": {"name": "calculator"}}]}
    response = ModelResponse(message={"role": "assistant", "content": CALL})
    call = RecoveredCall(id="c", name="get_weather", arguments={}, source="content")
    recovery = Recovery(calls=(call,))
    labelled = Settled(response, "generated_text", served).label(recovery)
    assert labelled.calls[0].repairs == ("generated_text",)
    same = {"role": "assistant", "tool_calls": [{"function": {"name": "get_weather"}}]}
    assert Settled(response, "generated_text", same).label(recovery) == recovery
    assert Settled(response).label(recovery) == recovery
