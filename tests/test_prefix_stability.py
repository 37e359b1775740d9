"""Every step of a run re-sends the whole prompt, and vLLM's prefix cache is what keeps that
cheap: the prompt of step N must be a byte prefix of step N+1's, as the chat template renders
them (issue 19, section 4). Measured on the real vLLM 0.32 CPU server with
``python -m conformance.e2e.prefix_cache``: 95 % of the prompt tokens of steps >= 2 came from
the cache (block size 32), the rest being the last, partly filled block."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest

from foxagent import Agent, tool
from foxagent._templates import render_chat
from foxagent.testing import FakeVLLMServer, Reply

DATE = "02 Dec 2026"


@tool
def get_weather(location: str) -> dict[str, Any]:
    """Current weather.

    Args:
        location: City name, e.g. "台北".
    """
    return {"location": location, "temperature_c": 23, "condition": "多雲"}


@tool
def calculator(expression: str) -> str:
    """Evaluate arithmetic.

    Args:
        expression: e.g. "17 * 23".
    """
    return "391"


def _call(name: str, **arguments: Any) -> str:
    return json.dumps({"name": name, "parameters": arguments}, ensure_ascii=False)


SCRIPT = [
    "<step>先查天氣。</step>\n" + _call("get_weather", location="台北"),
    _call("calculator", expression="23 * 9 / 5 + 32"),
    "<count>1</count><step>換算完成。</step><answer>台北 23°C，約 73.4°F。</answer>",
]


def _prompts(requests: list[dict[str, Any]]) -> list[str]:
    return [render_chat(r["messages"], r.get("tools"), date_string=DATE) for r in requests]


@pytest.mark.parametrize("stream", [False, True])
async def test_each_steps_prompt_is_a_byte_prefix_of_the_next(stream: bool) -> None:
    with FakeVLLMServer([Reply(text=t) for t in SCRIPT]) as server:
        agent = Agent(tools=[get_weather, calculator], base_url=server.base_url, stream=stream)
        async with agent:
            result = await agent.arun("台北現在幾度？華氏呢？")
        requests = server.requests
    assert result.steps == 3 and len(requests) == 3
    prompts = _prompts(requests)
    for earlier, later in itertools.pairwise(prompts):
        # The generation prompt ends step N's; step N+1 goes on from the same bytes.
        assert later.startswith(earlier), "a step changed bytes an earlier step already sent"
    # The tool schemas and the settings are the same bytes on every request.
    fixed = [json.dumps(r["tools"], ensure_ascii=False, sort_keys=False) for r in requests]
    assert len(set(fixed)) == 1
    assert len({r["seed"] for r in requests}) == 1


async def test_two_runs_of_one_agent_share_the_system_prompt_and_tools_bytes() -> None:
    with FakeVLLMServer([SCRIPT[2], SCRIPT[2]]) as server:
        async with Agent(tools=[get_weather, calculator], base_url=server.base_url) as agent:
            await agent.arun("第一個問題")
            await agent.arun("第二個問題")
        first, second = _prompts(server.requests)
    shared = first[: first.index("第一個問題")]
    assert second.startswith(shared) and len(shared) > 1000  # system prompt + tools
