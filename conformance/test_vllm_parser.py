"""Tier 1: `FakeVLLMServer` hands the client exactly what the real vLLM server does.

For every case in `conformance.cases` the real vLLM's serving code and llama3_json parser
(``conformance/vllm_oracle.py``, run in the vLLM venv) and `FakeVLLMServer` (over HTTP on
127.0.0.1) answer the same model text, non-streaming and streamed with the same engine steps.
The bodies and SSE chunks must be equal field by field, except what is random or counted by
another tokenizer: response ids, ``created``, tool-call id values (their format is compared) and
token counts (the usage keys are compared).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conformance.cases import conformance_cases, request_body
from conformance.compare import differences, normalise, sse_payloads
from foxagent.testing import FakeVLLMServer, Reply
from foxagent.testing._vllm_llama3_json import server_message
from tests.corpus import load_cases

CASES = conformance_cases()


def _reply(body: dict[str, Any]) -> Reply:
    case_id = json.loads(body["messages"][-1]["content"])["case"]
    case = next(c for c in CASES if c["id"] == case_id)
    return Reply(text=case["text"], finish_reason=case["steps"][-1][1])


@pytest.fixture(scope="module")
def fake() -> Iterator[httpx.Client]:
    with FakeVLLMServer(_reply) as server, httpx.Client(base_url=server.base_url) as client:
        yield client


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_non_streaming_body_matches_real_vllm(
    case: dict[str, Any], real_vllm: dict[str, dict[str, Any]], fake: httpx.Client
) -> None:
    response = fake.post("/chat/completions", json=request_body(case, stream=False))
    real = normalise(real_vllm[case["id"]]["full"])
    problems = differences(real, normalise(response.json()))
    assert not problems, f"{case['id']}: " + "\n".join(problems)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_stream_matches_real_vllm(
    case: dict[str, Any], real_vllm: dict[str, dict[str, Any]], fake: httpx.Client
) -> None:
    response = fake.post("/chat/completions", json=request_body(case, stream=True))
    real, mine = real_vllm[case["id"]]["chunks"], sse_payloads(response.text)
    problems = differences(normalise(real), normalise(mine))
    if len(real) != len(mine):
        problems.insert(0, f"{len(real)} real chunks, {len(mine)} fake chunks")
    assert not problems, f"{case['id']}: " + "\n".join(problems)


# --- how the older parser generations differ from the real current one -----------------------

GENERATION_REPORT: dict[str, dict[str, list[int]]] = {}


def _calls_and_content(message: dict[str, Any]) -> tuple[Any, Any]:
    calls = [
        (c["function"]["name"], json.loads(c["function"]["arguments"]))
        for c in message.get("tool_calls") or []
    ]
    return calls, message.get("content")


def test_older_generations_differ_from_the_real_parser_on_the_corpus(
    real_vllm: dict[str, dict[str, Any]],
) -> None:
    """Per family, how many corpus texts G1 (prefix) and G2 (regex) answer differently from
    vLLM 0.32.0 (calls, arguments and content of the non-streaming message); printed at the end
    of the run."""
    for case in load_cases():
        real = real_vllm[case["id"]]["full"]["choices"][0]["message"]
        row = GENERATION_REPORT.setdefault(
            case["family"], {"cases": [0], "prefix": [0], "regex": [0]}
        )
        row["cases"][0] += 1
        for generation in ("prefix", "regex"):
            old, _ = server_message(
                case["model_text"],
                generation=generation,
                engine_finish_reason=case["engine_finish_reason"],
            )
            if _calls_and_content(old) != _calls_and_content(real):
                row[generation][0] += 1
    differing = {g: sum(r[g][0] for r in GENERATION_REPORT.values()) for g in ("prefix", "regex")}
    assert sum(r["cases"][0] for r in GENERATION_REPORT.values()) == len(load_cases())
    # The generations were emulated from different code; identical answers would mean the
    # emulation collapsed them into one.
    assert differing["prefix"] > 0 and differing["regex"] > 0


def report_lines(version: str) -> list[str]:
    """The table printed by conftest: corpus texts where older generations differ from vLLM."""
    if not GENERATION_REPORT:
        return []
    lines = [
        f"corpus texts answered differently from the real vLLM {version} (non-streaming):",
        f"{'family':<16}{'cases':>6}{'G1 prefix':>11}{'G2 regex':>10}",
    ]
    totals = [0, 0, 0]
    for family, row in GENERATION_REPORT.items():
        values = [row["cases"][0], row["prefix"][0], row["regex"][0]]
        totals = [t + v for t, v in zip(totals, values, strict=True)]
        lines.append(f"{family:<16}{values[0]:>6}{values[1]:>11}{values[2]:>10}")
    lines.append(f"{'all':<16}{totals[0]:>6}{totals[1]:>11}{totals[2]:>10}")
    return lines
