"""The recovery corpus: real reported Llama 3.x replies, as each vLLM parser generation hands them over.

Every case is checked in four views: the message from vLLM's prefix (G1), regex (G2) and
brace-scan (G3) parser generations (or the case's own server message when another server is
the source), and the raw text as content (what ``stream=true`` gives for FoxBrain's tagged
replies). A view passes when foxagent's calls, rejections and text match the case's expectation.
An *unsafe* result is any call in a view where nothing may run; there must be none.

The per-family table (foxagent's pass rate next to how often vLLM's own ``tool_calls`` alone were
already right) is printed at the end of the test session by ``tests/conftest.py``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import pytest

from foxagent import Recovery, recover_tool_calls
from foxagent._recovery import ToolIndex
from tests.corpus import load_cases, load_tools

GENERATIONS = ("prefix", "regex", "brace")
VIEWS = (*GENERATIONS, "stream")
TOOLS = ToolIndex(load_tools())
CASES = load_cases()

# family → view → [passed, total, unsafe, vllm_right]
RESULTS: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0, 0, 0]))


def _views(case: dict[str, Any]) -> dict[str, tuple[dict[str, Any], str | None]]:
    views: dict[str, tuple[dict[str, Any], str | None]] = {}
    override = case.get("server_override")
    for generation in GENERATIONS:
        served = override or case["server"][generation]
        views[generation] = (served["message"], served["finish_reason"])
    stream_message = {"role": "assistant", "content": case["model_text"], "tool_calls": []}
    views["stream"] = (stream_message, case["engine_finish_reason"])
    return views


def _expected(case: dict[str, Any], view: str) -> dict[str, Any]:
    return {**case["expect"], **(case.get("expect_by_generation") or {}).get(view, {})}


def _problems(recovery: Recovery, expected: dict[str, Any], content: Any) -> list[str]:
    problems = []
    got_calls = [{"name": c.name, "arguments": c.arguments} for c in recovery.calls]
    if got_calls != expected.get("calls", []):
        problems.append(f"calls {got_calls} != expected {expected.get('calls', [])}")
    got_rejected = sorted((r.kind, r.name or "") for r in recovery.rejected)
    want_rejected = sorted((r["kind"], r.get("name") or "") for r in expected.get("rejected", []))
    if got_rejected != want_rejected:
        problems.append(f"rejected {got_rejected} != expected {want_rejected}")
    if content:
        for needle in expected.get("text_contains", []):
            if needle not in recovery.text:
                problems.append(f"text lacks {needle!r}: {recovery.text!r}")
        for needle in expected.get("text_excludes", []):
            if needle in recovery.text:
                problems.append(f"text keeps {needle!r}: {recovery.text!r}")
    return problems


def _vllm_alone_right(message: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Whether the server's own tool_calls, decoded naively, already were the expected calls."""
    served = []
    for call in message.get("tool_calls") or []:
        try:
            served.append(
                {
                    "name": call["function"]["name"],
                    "arguments": json.loads(call["function"]["arguments"]),
                }
            )
        except (ValueError, TypeError, KeyError):
            return False
    return served == expected.get("calls", [])


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case(case: dict[str, Any]) -> None:
    failures = []
    for view, (message, finish_reason) in _views(case).items():
        expected = _expected(case, view)
        recovery = recover_tool_calls(message, TOOLS, finish_reason=finish_reason)
        problems = _problems(recovery, expected, message.get("content"))
        unsafe = bool(recovery.calls) and not expected.get("calls")
        tally = RESULTS[case["family"]][view]
        tally[0] += not problems
        tally[1] += 1
        tally[2] += unsafe
        tally[3] += view != "stream" and _vllm_alone_right(message, expected)
        if problems:
            failures.append(f"[{view}] " + "; ".join(problems))
    assert not failures, f"{case['id']} ({case['source']}):\n" + "\n".join(failures)


def test_nothing_unsafe_in_cases_that_must_not_run() -> None:
    for case in CASES:
        if not case["must_not_run"]:
            continue
        for view, (message, finish_reason) in _views(case).items():
            if view in (case.get("expect_by_generation") or {}):
                continue  # the server itself decided (e.g. G3 took an example for a call)
            recovery = recover_tool_calls(message, TOOLS, finish_reason=finish_reason)
            assert recovery.calls == (), f"{case['id']} [{view}] would run {recovery.calls}"


def summary_lines() -> list[str]:
    """The per-family table printed at the end of the session."""
    if not RESULTS:
        return []
    lines = [
        "recovery corpus: foxagent pass rate per family and view (vLLM's own tool_calls right)",
        f"{'family':<16}{'cases':>6}" + "".join(f"{v:>17}" for v in VIEWS) + f"{'unsafe':>8}",
    ]
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for family in sorted(RESULTS):
        row = RESULTS[family]
        cells = []
        for view in VIEWS:
            passed, total, unsafe, vllm = row[view]
            for i, value in enumerate((passed, total, unsafe, vllm)):
                totals[view][i] += value
            vllm_text = f"({100 * vllm / total:3.0f}%)" if view != "stream" and total else "      "
            cells.append(f"{100 * passed / max(total, 1):5.0f}% {vllm_text:>8}  ")
        unsafe_total = sum(row[v][2] for v in VIEWS)
        lines.append(
            f"{family:<16}{row['stream'][1]:>6}"
            + "".join(f"{c:>17}" for c in cells)
            + f"{unsafe_total:>8}"
        )
    cells = []
    for view in VIEWS:
        passed, total, _, vllm = totals[view]
        vllm_text = f"({100 * vllm / total:3.0f}%)" if view != "stream" and total else "      "
        cells.append(f"{100 * passed / max(total, 1):5.0f}% {vllm_text:>8}  ")
    unsafe_all = sum(totals[v][2] for v in VIEWS)
    lines.append(
        f"{'all':<16}{totals['stream'][1]:>6}"
        + "".join(f"{c:>17}" for c in cells)
        + f"{unsafe_all:>8}"
    )
    return lines
