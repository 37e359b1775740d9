"""The corpus through the agent's whole-response decision, under every server generation
(issue 15, done-when): usage as vLLM reports it (the completion tokens of the whole generation,
``max_tokens`` for a cut one), then `foxagent._reask.settle` (the agent's own step) and recovery.
Nothing the corpus says must not run may run.

Two ways a server tells what was generated, each a mode here:

- ``tokens``: the server lists the generated tokens (``logprobs``, what the vLLM backend asks
  for by default): the decision is made from the model's whole text.
- ``usage``: only token counts (a server that ignores ``logprobs``, or ``generated_tokens``
  off): a re-ask with the parser off when the counts show dropped text.

Per generation and mode the summary prints: the cases the decision gets exactly right, the
re-asks it makes (the cost: extra requests per 100 replies), and the unsafe runs.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from foxagent import ModelResponse, ModelSettings, Recovery, Usage, recover_tool_calls
from foxagent._reask import settle
from foxagent._recovery import ToolIndex
from foxagent._tokens import estimate_tokens
from foxagent.testing._vllm_llama3_json import server_message
from tests.corpus import GENERATIONS, load_cases, load_tools

CASES = load_cases()
TOOL_SCHEMAS = load_tools()
TOOLS = ToolIndex(TOOL_SCHEMAS)
MAX_TOKENS = 512  # what the corpus's cut replies were cut at (their usage says so)
SETTINGS = ModelSettings(max_tokens=MAX_TOKENS)
ALL_GENERATIONS = (*GENERATIONS, "next")
MODES = ("tokens", "usage")
TALLY: dict[tuple[str, str], Counter[str]] = {}


def _served(case: dict[str, Any], generation: str) -> dict[str, Any]:
    if case.get("server_override"):
        return dict(case["server_override"])
    if generation != "next":
        return dict(case["server"][generation])
    message, finish = server_message(
        case["model_text"],
        generation="next",
        engine_finish_reason=case["engine_finish_reason"] or "stop",
        tools=TOOL_SCHEMAS,
    )
    return {"message": message, "finish_reason": finish}


def decide(case: dict[str, Any], generation: str, mode: str) -> tuple[Recovery, bool]:
    """What the agent runs for this case under this generation and mode, and whether it
    re-asked."""
    served = _served(case, generation)
    cut = case["engine_finish_reason"] == "length"
    generated = MAX_TOKENS if cut else estimate_tokens(case["model_text"])
    response = ModelResponse(
        message=served["message"],
        finish_reason=served["finish_reason"],
        usage=Usage(completion_tokens=generated),
        generated_text=case["model_text"] if mode == "tokens" else None,
    )
    reasks: list[str] = []

    async def reask(reason: str) -> ModelResponse:  # tool_choice "none": the raw text back
        reasks.append(reason)
        return ModelResponse(
            message={"role": "assistant", "content": case["model_text"]},
            finish_reason=case["engine_finish_reason"] or "stop",
            usage=Usage(completion_tokens=generated),
        )

    settled = asyncio.run(settle(response, SETTINGS, TOOLS, reask, tools=True))
    recovery = recover_tool_calls(
        settled.response.message,
        TOOLS,
        finish_reason=settled.response.finish_reason,
        completion_tokens=generated,
        max_tokens=MAX_TOKENS,
    )
    return settled.label(recovery), bool(reasks)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("generation", ALL_GENERATIONS)
def test_no_call_runs_that_must_not_under_any_generation(generation: str, mode: str) -> None:
    unsafe = []
    tally = TALLY.setdefault((generation, mode), Counter())
    for case in CASES:
        recovery, reasked = decide(case, generation, mode)
        expected = case["expect"]["calls"]
        got = [{"name": c.name, "arguments": c.arguments} for c in recovery.calls]
        tally["cases"] += 1
        tally["reasked"] += reasked
        tally["right"] += got == expected
        if case["must_not_run"] and got:
            unsafe.append(f"{case['id']}: ran {got}")
    print(
        f"\n{generation} ({mode}): {tally['right']}/{tally['cases']} exactly as the raw text "
        f"says; {tally['reasked']} re-asks ({100 * tally['reasked'] / tally['cases']:.1f} per "
        f"100); {len(unsafe)} unsafe"
    )
    assert unsafe == [] or set(unsafe) <= KNOWN_UNSAFE.get((generation, mode), set()), unsafe
    if mode == "tokens":  # the model's whole text decides: the raw-text ladder's result
        assert tally["right"] == tally["cases"]
        assert tally["reasked"] == 0


# The gap left with counts only, named so that it cannot grow unseen. vLLM's regex and brace
# parsers keep only the JSON of these replies, and what they drop is a few tokens of prose (an
# example cue like "工具的參數格式如下：" or a wrapper call), below what token counting can tell
# from the estimator's noise on the returned call. The generated tokens close it (mode
# "tokens"), and so does the next parser, which returns the prose.
_SHORT_DROPS = {
    "plain_text-011: ran [{'name': 'send_email', 'arguments': {'to': '收件人', 'subject': '主旨', 'body': '內容'}}]",
    "plain_text-012: ran [{'name': 'calculator', 'arguments': {'expression': '2+2'}}]",
    "reports_2026-014: ran [{'name': 'calculator', 'arguments': {'expression': '2**10'}}]",
}
# vLLM's next parser cuts arguments back at a lexical error and closes them into valid JSON
# (malformed-015, truncation-005: no trace of the cut in the message or the count), and it
# sends a wrapper call's payload as a call (reports_2026-014). The generated tokens close these.
_NEXT_CUTS = {
    "malformed-015: ran [{'name': 'calculator', 'arguments': {'expression': '3'}}]",
    "truncation-005: ran [{'name': 'search_web', 'arguments': {'query': 'best hiking trails near'}}]",
    "reports_2026-014: ran [{'name': 'calculator', 'arguments': {'expression': '2**10'}}]",
}
KNOWN_UNSAFE: dict[tuple[str, str], set[str]] = {
    ("regex", "usage"): _SHORT_DROPS,
    ("brace", "usage"): _SHORT_DROPS,
    ("next", "usage"): _NEXT_CUTS,
}
