"""Microseconds per `recover_tool_calls` on typical replies, against `json.loads` of the payload.

Run from the repo root::

    python -m benchmarks.bench_recovery

Each case is timed in rounds that interleave foxagent and the baseline (so a noisy neighbour hits
both alike); the printed numbers are medians over the rounds. The baseline is ``json.loads`` of the
payload the recovery must decode: the server's arguments string, or the whole reply text for the
content cases (``json.loads`` of a prose reply fails fast; we time the attempt).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from typing import Any

from foxagent import Toolset, recover_tool_calls, tool


@tool
def get_weather(location: str, unit: str = "celsius") -> str:
    """Weather now.

    Args:
        location: City.
        unit: celsius or fahrenheit.
    """
    return location


@tool
def calculator(expression: str) -> str:
    """Arithmetic."""
    return expression


TOOLS = Toolset([get_weather, calculator])
ARGUMENTS = '{"location": "台北", "unit": "celsius"}'
SERVER_CALL: dict[str, Any] = {
    "role": "assistant",
    "content": None,
    "tool_calls": [
        {
            "id": "chatcmpl-tool-0123456789abcdef0123456789abcdef",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ARGUMENTS},
        }
    ],
}
CONTENT_CALL = (
    "<count>2</count>\n<step>使用者想知道台北的天氣，我需要呼叫天氣工具。</step>\n"
    '<step>{"name": "get_weather", "parameters": {"location": "台北", "unit": "celsius"}}</step>'
)
_STEP = (
    "<count>{n}</count>\n"
    "<step>比較 a 與 b：若 a < b，集合 {{1,2}} 與 \\frac{{1}}{{2}} 皆成立。</step>\n"
)
LONG_REPLY = (
    "".join(_STEP.format(n=n) for n in range(9, 0, -1))
    + "<reflection>步驟完整。</reflection>\n<reward>0.8</reward>\n<answer>"
    + "兩列火車相對速度為 200 公里/小時，所以需要 2.5 小時。" * 20
    + "</answer>\n<reflection>計算正確。</reflection>\n<reward>0.9</reward>"
)

# Issue 18's case: a 4 KB tagged answer (UTF-8) whose steps hold parentheses, sets and LaTeX,
# so the pythonic and JSON finders have something to look at and still find no call.
TAGGED_4KB = (
    LONG_REPLY + "<step>另外 (a+b)^2 = a^2 + 2ab + b^2，f(x) 在 x=1 時為 {x: 1}。</step>\n" * 24
)
assert len(TAGGED_4KB.encode()) >= 4096


def _json_attempt(text: str) -> None:
    try:
        json.loads(text)
    except ValueError:
        pass


CASES: list[tuple[str, Callable[[], object], Callable[[], object]]] = [
    (
        "clean server call",
        lambda: recover_tool_calls(SERVER_CALL, TOOLS, finish_reason="tool_calls"),
        lambda: json.loads(ARGUMENTS),
    ),
    (
        "call in FoxBrain content",
        lambda: recover_tool_calls({"content": CONTENT_CALL, "tool_calls": []}, TOOLS),
        lambda: _json_attempt(CONTENT_CALL),
    ),
    (
        f"4 KB tagged answer ({len(TAGGED_4KB.encode()):,} B)",
        lambda: recover_tool_calls({"content": TAGGED_4KB, "tool_calls": []}, TOOLS),
        lambda: _json_attempt(TAGGED_4KB),
    ),
    (
        f"long reply, no call ({len(LONG_REPLY)} chars)",
        lambda: recover_tool_calls({"content": LONG_REPLY, "tool_calls": []}, TOOLS),
        lambda: _json_attempt(LONG_REPLY),
    ),
]


def _per_call_us(function: Callable[[], object], calls: int) -> float:
    start = time.perf_counter()
    for _ in range(calls):
        function()
    return (time.perf_counter() - start) / calls * 1e6


def measure(rounds: int = 15, calls: int = 400) -> list[tuple[str, float, float]]:
    """``(case, median µs foxagent, median µs baseline)`` for every case."""
    results = []
    for name, subject, baseline in CASES:
        subject(), baseline()  # warm caches and imports
        ours, theirs = [], []
        for _ in range(rounds):
            ours.append(_per_call_us(subject, calls))
            theirs.append(_per_call_us(baseline, calls))
        results.append((name, statistics.median(ours), statistics.median(theirs)))
    return results


def main() -> None:
    print(f"{'case':<34}{'recover µs':>12}{'json.loads µs':>15}{'ratio':>8}")
    for name, ours, theirs in measure():
        print(f"{name:<34}{ours:>12.1f}{theirs:>15.2f}{ours / theirs:>8.1f}")


if __name__ == "__main__":
    main()
