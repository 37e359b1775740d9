"""One BFCL case through foxagent's loop, scored three ways on one generation.

- **raw**: the first reply's ``tool_calls`` with their arguments parsed by ``json.loads``: what a
  plain openai client would run.
- **foxagent**: the calls the agent decided to run at step 1, from that same reply (recovered,
  or decided from the generated tokens, see ``foxagent._reask``), as its events report them.
- **run**: every call the whole run executed. Each BFCL tool returns a neutral stand-in result,
  so the model may go on: call again after a refusal ("unknown argument years2"), or do a
  parallel request as calls in turn. Identical calls count once (a repeat is not a new action).

All three are judged by BFCL's own checker (`foxagent.eval._checker`), under BFCL's names.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from foxagent._agent import Agent
from foxagent._messages import ModelSettings
from foxagent._toolset import Toolset
from foxagent.eval._bfcl_data import BFCLCase
from foxagent.eval._bfcl_tools import NameMap, StandInTool, openai_tools
from foxagent.eval._capture import Capture, RecordingModel, repair_families, run_captured
from foxagent.eval._checker import Call, Checker, score

__all__ = ["AgentOptions", "run_bfcl_case"]


@dataclass(frozen=True, kw_only=True)
class AgentOptions:
    """How every case's agent is built (one shared model, the run's settings).

    Attributes:
        model: the shared backend, wrapped to record replies.
        settings: sampling settings (seed, temperature, max_tokens, tool_choice).
        system_prompt: sent unless the case brings its own system message.
        max_steps: model requests per case.
    """

    model: RecordingModel
    settings: ModelSettings
    system_prompt: str | None
    max_steps: int

    def agent(self, tools: Toolset) -> Agent:
        """An agent for one case's tools (cheap: the model and its connections are shared)."""
        return Agent(
            tools=tools,
            model=self.model,
            system_prompt=self.system_prompt,
            max_steps=self.max_steps,
            settings=self.settings,
        )


async def run_bfcl_case(
    case: BFCLCase, options: AgentOptions, checker: tuple[Checker, Any]
) -> dict[str, Any]:
    """Run ``case`` once and return its report record (see the module docstring)."""
    names = NameMap(function["name"] for function in case.functions)
    tools = Toolset(StandInTool(schema) for schema in openai_tools(case.functions, names))
    history = list(case.messages[:-1])
    capture = await run_captured(options.agent(tools), case.question, history)

    raw_calls = _raw_calls(capture, names)
    raw_parsed = (
        None
        if raw_calls is None or any("unparsed" in call for call in raw_calls)
        else [{"name": c["name"], "arguments": c["arguments"]} for c in raw_calls]
    )
    first = [event for event in capture.detected if event.step == 1]
    foxagent_calls: list[Call] = [
        {"name": names.bfcl(event.name), "arguments": event.arguments} for event in first
    ]
    run_calls = _run_calls(capture, names)
    replied = bool(capture.responses)
    raw_why = score(checker, case, raw_parsed) if replied else "no reply"
    foxagent_why = score(checker, case, foxagent_calls) if replied else "no reply"
    run_why = score(checker, case, run_calls) if replied else "no reply"
    refused = [
        {"name": names.bfcl(record.name), "reason": record.error}
        for record in capture.records
        if record.step == 1 and record.status == "rejected"
    ]
    record: dict[str, Any] = {
        "id": case.id,
        "category": case.category,
        "raw_calls": raw_calls,
        "foxagent_calls": foxagent_calls,
        "raw_ok": raw_why is None,
        "foxagent_ok": foxagent_why is None,
        "raw_why": raw_why,
        "foxagent_why": foxagent_why,
        "refused": refused,
        "repairs": repair_families([event.repairs for event in first]),
        "run_calls": run_calls,
        "run_ok": run_why is None,
        "run_why": run_why,
        "run_repairs": repair_families([r.repairs for r in capture.records]),
        "steps": capture.result.steps if capture.result is not None else None,
        "replied": replied,
        **capture.timings_ms(),
        **capture.tokens(),
    }
    if capture.error is not None:
        record["error"] = capture.error
    return record


def _raw_calls(capture: Capture, names: NameMap) -> list[dict[str, Any]] | None:
    """The first reply's ``tool_calls`` as a plain client reads them (``None``: no reply).

    A call whose arguments ``json.loads`` rejects (or that are not an object) keeps its text
    under ``unparsed``: a plain client would fail on it, so the raw score counts it wrong.
    """
    if not capture.responses:
        return None
    calls: list[dict[str, Any]] = []
    for call in capture.responses[0].message.get("tool_calls") or ():
        function = call.get("function") if isinstance(call, Mapping) else None
        if not isinstance(function, Mapping):
            calls.append({"name": "", "arguments": None, "unparsed": str(call)})
            continue
        name = names.bfcl(str(function.get("name") or ""))
        text = function.get("arguments")
        try:
            arguments = json.loads(text) if isinstance(text, str) else text
        except ValueError:
            arguments = None
        if isinstance(arguments, dict):
            calls.append({"name": name, "arguments": arguments})
        else:
            calls.append({"name": name, "arguments": None, "unparsed": str(text)})
    return calls


def _run_calls(capture: Capture, names: NameMap) -> list[Call]:
    """Every call the run executed, once per distinct (name, arguments), in order."""
    seen: set[str] = set()
    calls: list[Call] = []
    for record in capture.records:
        if record.status != "ok":
            continue
        key = record.name + "\x00" + json.dumps(record.arguments, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            calls.append({"name": names.bfcl(record.name), "arguments": record.arguments})
    return calls
