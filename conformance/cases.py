"""The texts the conformance suite sends through both the real vLLM and `FakeVLLMServer`.

Every model text of the recovery corpus (``tests/corpus``) with ``tool_choice`` auto, split into
the engine steps `FakeVLLMServer` streams
(`foxagent.testing._vllm_llama3_stream.engine_steps`), plus the other request modes the fake
answers: no tools, ``tool_choice`` none, required and named.
"""

from __future__ import annotations

import json
from typing import Any

from foxagent.testing._vllm_llama3_stream import engine_steps
from tests.corpus import load_cases, load_tools

CALL = '{"name": "get_weather", "parameters": {"location": "台北", "unit": "celsius"}}'
SECOND_CALL = '{"name": "calculator", "parameters": {"expression": "6 * 7"}}'
FOXBRAIN_ANSWER = "<count>2</count><step>查詢天氣</step><answer>台北 23°C</answer>"
NAMED = {"type": "function", "function": {"name": "get_weather"}}

# (id, text, engine finish_reason, tool_choice or None to leave it out, tools offered).
# vLLM 0.32.0 constrains required and named choices with xgrammar's "llama" structural tag, so
# the engine writes `{"name": ..., "parameters": ...}` objects; the older constrained formats
# (a JSON list, bare arguments) are kept too, to pin what the parser makes of other text.
_MODES: tuple[tuple[str, str, str, Any, bool], ...] = (
    ("mode-no-tools", FOXBRAIN_ANSWER, "stop", None, False),
    ("mode-no-tools-call-text", CALL, "stop", None, False),
    ("mode-none", CALL, "stop", "none", True),
    ("mode-null", CALL, "stop", "null", True),
    ("mode-required-one", CALL, "stop", "required", True),
    ("mode-required-two", CALL + SECOND_CALL, "stop", "required", True),
    ("mode-required-two-spaced", CALL + "\n" + SECOND_CALL, "stop", "required", True),
    ("mode-required-cut", CALL[:40], "length", "required", True),
    ("mode-required-old-list", f"[{CALL}, {SECOND_CALL}]", "stop", "required", True),
    ("mode-named", CALL, "stop", NAMED, True),
    ("mode-named-cut", CALL[:50], "length", NAMED, True),
    ("mode-named-old-arguments", '{"location": "台北"}', "stop", NAMED, True),
    ("mode-auto-empty", "", "stop", "auto", True),
    ("mode-auto-blank", " \n", "stop", "auto", True),
    ("mode-required-blank", " \n", "stop", "required", True),
)


def _case(
    case_id: str,
    text: str,
    finish: str,
    tool_choice: Any,
    tools: bool,
    stream_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    case: dict[str, Any] = {
        "id": case_id,
        "text": text,
        "steps": [list(step) for step in engine_steps(text, finish)],
        "tools": load_tools() if tools else None,
        "stream_options": stream_options,
    }
    if tool_choice is not None:
        # "null" sends an explicit JSON null, which vLLM treats apart from a missing field.
        case["tool_choice"] = None if tool_choice == "null" else tool_choice
    return case


def conformance_cases() -> list[dict[str, Any]]:
    """Every case, JSON-ready for ``conformance/vllm_oracle.py``."""
    # Corpus texts stream with a usage chunk, the mode cases without (vLLM puts the system
    # fingerprint on the last chunk either way, a different one).
    usage = {"include_usage": True}
    cases = [
        _case(c["id"], c["model_text"], c["engine_finish_reason"], "auto", True, usage)
        for c in load_cases()
    ]
    cases.extend(_case(*mode) for mode in _MODES)
    return cases


def request_body(case: dict[str, Any], *, stream: bool) -> dict[str, Any]:
    """The chat-completion request the suite sends `FakeVLLMServer` for ``case``."""
    body: dict[str, Any] = {
        "model": "foxbrain",
        "messages": [{"role": "user", "content": json.dumps({"case": case["id"]})}],
        "stream": stream,
    }
    if case["tools"]:
        body["tools"] = case["tools"]
    if "tool_choice" in case:
        body["tool_choice"] = case["tool_choice"]
    if stream and case["stream_options"] is not None:
        body["stream_options"] = case["stream_options"]
    return body
