"""Traces stay small whatever the tools return, and a result whose ``__str__`` raises ends
neither the run nor its trace (issue 14, findings 9 and 5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from foxagent import Agent, tool
from foxagent.events import JsonlTrace
from foxagent.testing import ScriptedModel

BIG = "台" * 10_000_000  # 10 M characters, about 30 MB of UTF-8


@tool
def dump() -> str:
    """A huge report."""
    return BIG


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text for you")


@tool
def odd() -> Any:
    """Returns an object that cannot be printed."""
    return {"value": Unprintable()}


def call(name: str) -> str:
    return json.dumps({"name": name, "parameters": {}})


async def test_a_10_mb_result_is_cut_in_the_trace_but_whole_in_the_records(
    tmp_path: Path,
) -> None:
    path = tmp_path / "trace.jsonl"
    model = ScriptedModel([call("dump"), "<answer>好</answer>"])
    with JsonlTrace(path) as trace:
        result = await Agent(tools=[dump], model=model).arun("dump it", on_event=trace)
    assert result.tool_calls[0].result == BIG  # the run's own record keeps it whole
    assert path.stat().st_size < 100_000  # before: about 60 MB (the result twice)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    finished = next(line for line in lines if line["kind"] == "tool_finished")
    assert finished["record"]["result"].endswith("… [cut: 10000000 characters in all]")
    final = next(line for line in lines if line["kind"] == "final_answer")
    assert final["calls"][0]["result"].startswith("台" * 4000 + "…")


async def test_long_lists_keep_their_first_items(tmp_path: Path) -> None:
    @tool
    def many() -> list[int]:
        """Many numbers."""
        return list(range(10_000))

    path = tmp_path / "trace.jsonl"
    model = ScriptedModel([call("many"), "done"])
    with JsonlTrace(path, max_items=5) as trace:
        await Agent(tools=[many], model=model).arun("count", on_event=trace)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    finished = next(line for line in lines if line["kind"] == "tool_finished")
    assert finished["record"]["result"] == [0, 1, 2, 3, 4, "… [cut: 10000 items in all]"]


async def test_a_result_whose_str_raises_reaches_the_model_and_the_trace(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    model = ScriptedModel([call("odd"), "<answer>好</answer>"])
    with JsonlTrace(path) as trace:
        result = await Agent(tools=[odd], model=model).arun("go", on_event=trace)
    assert result.answer == "好"
    sent = model.requests[1].messages[-1]["content"]
    assert sent == (
        '{"value": "<Unprintable object; str() failed: RuntimeError: no text for you>"}'
    )
    assert "str() failed" in path.read_text(encoding="utf-8")
