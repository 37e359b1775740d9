"""One everyday question of the local suite through foxagent's loop, with the stock tools.

The suite and its judge live in ``foxagent.eval._local_suite`` (imported only when this suite
runs, so the rest of ``foxagent.eval`` works without it). A case names the stock tools it
offers by short names (``calculator``, ``weather``); the tool-choice score asks whether the
run called the expected tool (or none when none is expected), the answer score is the judge's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from foxagent._toolset import Toolset
from foxagent.eval._bfcl_run import AgentOptions
from foxagent.eval._capture import repair_families, run_captured

if TYPE_CHECKING:  # the module is another engineer's and may not exist yet
    from foxagent.eval._local_suite import LocalCase

__all__ = ["STOCK_NAMES", "load_local_cases", "run_local_case"]

#: The suite's short tool names → the stock tools' names.
STOCK_NAMES = {"calculator": "calculator", "weather": "get_weather"}
_SHORT = {stock: short for short, stock in STOCK_NAMES.items()}


def load_local_cases() -> list[LocalCase]:
    """The local suite's cases."""
    from foxagent.eval._local_suite import load_local_suite

    return load_local_suite()


async def run_local_case(case: LocalCase, options: AgentOptions) -> dict[str, Any]:
    """Run ``case`` once and return its report record."""
    from foxagent.eval import _local_suite as suite

    # The suite may bring its own tools (a weather tool answering fixed readings, so the
    # expected answers hold and no network is used) and its own tool-choice rule; the stock
    # tools and "the expected tool was called" otherwise.
    make_tools = getattr(suite, "suite_tools", None)
    if callable(make_tools):
        tools = Toolset(make_tools(list(case.tools)))
    else:
        tools = Toolset.load([STOCK_NAMES.get(name, name) for name in case.tools])
    capture = await run_captured(options.agent(tools), case.question, [])
    ran = [r for r in capture.records if r.status not in ("rejected", "denied")]
    called = [_SHORT.get(record.name, record.name) for record in ran]
    answer = capture.result.answer if capture.result is not None else ""
    choice_rule = getattr(suite, "tool_choice_right", None)
    if callable(choice_rule):
        tool_ok = bool(choice_rule(case, called)[0])
    elif case.expect_tool is None:
        tool_ok = not called
    else:
        tool_ok = case.expect_tool in called
    failed = (False, f"the run failed: {capture.error}")
    right, why = suite.judge(case, called, answer) if capture.error is None else failed
    record: dict[str, Any] = {
        "id": case.id,
        "category": case.category,
        "lang": case.lang,
        "question": case.question,
        "expect_tool": case.expect_tool,
        "called": called,
        "answer": answer,
        "right": bool(right),
        "why": why,
        "tool_ok": tool_ok,
        "repairs": repair_families([r.repairs for r in capture.records]),
        "steps": capture.result.steps if capture.result is not None else None,
        "replied": bool(capture.responses),
        **capture.timings_ms(),
        **capture.tokens(),
    }
    if capture.error is not None:
        record["error"] = capture.error
    return record
