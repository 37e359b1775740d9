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
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from conformance.cases import conformance_cases, request_body
from foxagent.testing import FakeVLLMServer, Reply

CASES = conformance_cases()
TOOL_ID_PREFIX = "chatcmpl-tool-"
TOOL_ID = re.compile(r"chatcmpl-tool-[0-9a-f]+")


def _reply(body: dict[str, Any]) -> Reply:
    case_id = json.loads(body["messages"][-1]["content"])["case"]
    case = next(c for c in CASES if c["id"] == case_id)
    return Reply(text=case["text"], finish_reason=case["steps"][-1][1])


@pytest.fixture(scope="module")
def fake() -> Iterator[httpx.Client]:
    with FakeVLLMServer(_reply) as server, httpx.Client(base_url=server.base_url) as client:
        yield client


def normalise(value: Any) -> Any:
    """Drop what is random or tokenizer-dependent; keep everything else.

    Response ids and ``created`` go; a tool-call id keeps its shape (``chatcmpl-tool-`` and as
    many ``h`` as it has hex digits); ``usage`` keeps its keys.
    """
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key == "created" or (key == "id" and not TOOL_ID.fullmatch(str(item))):
                continue
            out[key] = (
                sorted(item) if key == "usage" and isinstance(item, dict) else normalise(item)
            )
        return out
    if isinstance(value, list):
        return [normalise(item) for item in value]
    if isinstance(value, str) and TOOL_ID.fullmatch(value):
        return TOOL_ID_PREFIX + "h" * (len(value) - len(TOOL_ID_PREFIX))
    return value


def differences(real: Any, fake: Any, path: str = "$") -> list[str]:
    """Every path where the two JSON values differ, with both values."""
    if isinstance(real, dict) and isinstance(fake, dict):
        found = []
        for key in real.keys() | fake.keys():
            if key not in fake:
                found.append(f"{path}.{key}: real {real[key]!r}, fake has no such key")
            elif key not in real:
                found.append(f"{path}.{key}: fake {fake[key]!r}, real has no such key")
            else:
                found.extend(differences(real[key], fake[key], f"{path}.{key}"))
        return sorted(found)
    if isinstance(real, list) and isinstance(fake, list) and len(real) == len(fake):
        pairs = enumerate(zip(real, fake, strict=True))
        return [found for i, (r, f) in pairs for found in differences(r, f, f"{path}[{i}]")]
    return [] if real == fake else [f"{path}: real {real!r}, fake {fake!r}"]


def _sse(text: str) -> list[Any]:
    events = [block[len("data: ") :] for block in text.split("\n\n") if block.startswith("data: ")]
    return [event if event == "[DONE]" else json.loads(event) for event in events]


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
    real, mine = real_vllm[case["id"]]["chunks"], _sse(response.text)
    problems = differences(normalise(real), normalise(mine))
    if len(real) != len(mine):
        problems.insert(0, f"{len(real)} real chunks, {len(mine)} fake chunks")
    assert not problems, f"{case['id']}: " + "\n".join(problems)
